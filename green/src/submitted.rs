//! The handle to a submitted task and the one allocation behind it.
//!
//! A task is a single `Arc<Task<F, T>>`: the closure and the slot its result
//! lands in live in the same heap block. The pool sees it as an
//! `Arc<dyn Run>`, the caller as a [`Submitted<T>`] (an `Arc<dyn Outcome<T>>`).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;

use crate::error::GreenError;
use crate::waiter::{park_current, Waiter};

/// Where a task's result waits for whoever joins it.
pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

enum SlotState<T> {
    /// Not finished; the party to wake when it is.
    Pending(Option<Waiter>),
    /// Finished; the result is waiting to be taken.
    Done(Result<T, GreenError>),
    /// The result was handed out.
    Taken,
}

impl<T> Slot<T> {
    pub(crate) fn pending() -> Slot<T> {
        Slot {
            state: Mutex::new(SlotState::Pending(None)),
        }
    }

    fn done(result: Result<T, GreenError>) -> Slot<T> {
        Slot {
            state: Mutex::new(SlotState::Done(result)),
        }
    }

    /// Stores the result and wakes the waiting party, if any.
    pub(crate) fn complete(&self, result: Result<T, GreenError>) {
        let previous = std::mem::replace(&mut *self.state.lock(), SlotState::Done(result));
        if let SlotState::Pending(Some(waiter)) = previous {
            waiter.wake();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        !matches!(*self.state.lock(), SlotState::Pending(_))
    }

    /// Takes the result if it is there, else registers `waiter` (built only
    /// when needed) and returns `None`.
    fn take_or_register(
        &self,
        waiter: impl FnOnce(&Option<Waiter>) -> Option<Waiter>,
    ) -> Option<Result<T, GreenError>> {
        let mut state = self.state.lock();
        match &mut *state {
            SlotState::Pending(current) => {
                if let Some(new) = waiter(current) {
                    *current = Some(new);
                }
                None
            }
            SlotState::Done(_) => match std::mem::replace(&mut *state, SlotState::Taken) {
                SlotState::Done(result) => Some(result),
                _ => None,
            },
            SlotState::Taken => Some(Err(GreenError::ResultTaken)),
        }
    }
}

/// Runs a queued task on a worker.
pub(crate) trait Run: Send + Sync {
    /// Runs the closure (once), calls `before_complete`, then completes the
    /// slot (waking the joiner); never unwinds.
    fn run(&self, before_complete: &mut dyn FnMut());
    /// Fails the task with `error` unless it already completed.
    fn abandon(&self, error: GreenError);
}

/// Gives a `Submitted<T>` access to its result slot.
pub(crate) trait Outcome<T>: Send + Sync {
    fn slot(&self) -> &Slot<T>;
}

/// A closure and its result slot, in one allocation.
pub(crate) struct Task<F, T> {
    func: Mutex<Option<F>>,
    slot: Slot<T>,
}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(func: F) -> Task<F, T> {
        Task {
            func: Mutex::new(Some(func)),
            slot: Slot::pending(),
        }
    }
}

impl<F, T> Run for Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(&self, before_complete: &mut dyn FnMut()) {
        let func = self.func.lock().take();
        let result = func.map(run_catching);
        before_complete();
        if let Some(result) = result {
            self.slot.complete(result);
        }
    }

    fn abandon(&self, error: GreenError) {
        if !self.slot.is_done() {
            self.slot.complete(Err(error));
        }
    }
}

impl<F, T> Outcome<T> for Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn slot(&self) -> &Slot<T> {
        &self.slot
    }
}

impl<T: Send> Outcome<T> for Slot<T> {
    fn slot(&self) -> &Slot<T> {
        self
    }
}

/// Calls `func`, turning a panic into [`GreenError::Panicked`].
pub(crate) fn run_catching<T>(func: impl FnOnce() -> T) -> Result<T, GreenError> {
    catch_unwind(AssertUnwindSafe(func))
        .map_err(|payload| GreenError::Panicked(panic_message(payload)))
}

/// The text of a panic payload (`panic!("..")` gives a `&str` or a `String`).
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "panic payload is not a string".to_owned(),
        },
    }
}

/// The pending result of a task given to [`GreenPool::submit`](crate::GreenPool::submit).
///
/// Get the value with [`join`](Submitted::join) (blocks a plain thread,
/// parks a coroutine) or `.await` it from async code on any executor: it is a
/// `Future<Output = Result<T, GreenError>>` with a proper waker. Dropping it
/// detaches the task, which still runs.
pub struct Submitted<T> {
    outcome: Arc<dyn Outcome<T>>,
}

impl<T: Send + 'static> Submitted<T> {
    pub(crate) fn from_task<F>(task: Arc<Task<F, T>>) -> Submitted<T>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        Submitted { outcome: task }
    }

    /// A handle whose task already ran (inline submission).
    pub(crate) fn ready(result: Result<T, GreenError>) -> Submitted<T> {
        Submitted {
            outcome: Arc::new(Slot::done(result)),
        }
    }

    /// Waits for the task and returns its value.
    ///
    /// On a plain OS thread this blocks the thread; on a coroutine it parks
    /// the coroutine, so the scheduler thread keeps running other tasks.
    ///
    /// # Errors
    ///
    /// [`GreenError::Panicked`] with the panic message if the task panicked;
    /// [`GreenError::ResultTaken`] if the result was already taken by polling.
    pub fn join(self) -> Result<T, GreenError> {
        let slot = self.outcome.slot();
        let mut me: Option<Waiter> = None;
        loop {
            let taken = slot.take_or_register(|current| {
                if current.is_some() && me.is_some() {
                    None
                } else {
                    let waiter = Waiter::current();
                    me = Some(waiter.clone());
                    Some(waiter)
                }
            });
            if let Some(result) = taken {
                return result;
            }
            park_current();
        }
    }

    /// Whether the task has finished (its result may be taken without waiting).
    pub fn is_finished(&self) -> bool {
        self.outcome.slot().is_done()
    }
}

impl<T: Send + 'static> Future for Submitted<T> {
    type Output = Result<T, GreenError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let taken = self
            .outcome
            .slot()
            .take_or_register(|current| match current {
                Some(Waiter::Waker(waker)) if waker.will_wake(cx.waker()) => None,
                _ => Some(Waiter::Waker(cx.waker().clone())),
            });
        match taken {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for Submitted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let finished = !matches!(*self.outcome.slot().state.lock(), SlotState::Pending(_));
        f.debug_struct("Submitted")
            .field("finished", &finished)
            .finish()
    }
}
