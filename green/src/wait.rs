//! `wait`: park a green task until a `Future` completes.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use may::coroutine::Coroutine;

use crate::error::GreenError;

/// Wakes a parked coroutine from any thread or executor.
struct CoroutineWaker {
    co: Coroutine,
    notified: AtomicBool,
}

impl Wake for CoroutineWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notified.store(true, Ordering::Release);
        self.co.unpark();
    }
}

/// Parks the current green task until `future` completes and returns its output.
///
/// The future is polled on the calling coroutine; its waker unparks the
/// coroutine, from any thread (for example a future completed by another OS
/// thread, or a [`Submitted`](crate::Submitted) of another pool). Only the
/// coroutine parks: its scheduler thread keeps running other tasks.
///
/// # Errors
///
/// Off a coroutine it returns [`GreenError::WrongContext`] (text contains
/// `acquire in main greenlet`) without polling the future.
pub fn wait<F: Future>(future: F) -> Result<F::Output, GreenError> {
    if !may::coroutine::is_coroutine() {
        return Err(GreenError::WrongContext("green::wait"));
    }
    let signal = Arc::new(CoroutineWaker {
        co: may::coroutine::current(),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        while !signal.notified.swap(false, Ordering::AcqRel) {
            may::coroutine::park();
        }
    }
}
