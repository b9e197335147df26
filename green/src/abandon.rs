//! Clean-up for a task abandoned without unwinding ([`on_abandon`]).
//!
//! A task that overflows its coroutine stack is dropped by may without
//! unwinding: none of its destructors run, so whatever it held — a pooled
//! database connection, a transaction open on the server with its locks —
//! would stay held for good. A holder registers a hook with
//! [`on_abandon`]; the hooks live in the coroutine's local storage, which
//! may drops also when it abandons the coroutine, and that drop runs every
//! hook still registered. A task that ends normally unregisters its hooks
//! by dropping their [`AbandonGuard`]s, and the worker forgets any left
//! over (their guards were moved to another task, or leaked) before its
//! next task, without running them.

use std::cell::RefCell;
use std::fmt;

type Hook = Box<dyn FnOnce() + Send>;

may::coroutine_local!(static HOOKS: RefCell<Hooks> = RefCell::new(Hooks::default()));

/// The hooks of the task running on a coroutine.
#[derive(Default)]
struct Hooks {
    next_id: u64,
    registered: Vec<(u64, Hook)>,
}

impl Drop for Hooks {
    /// The coroutine ended with hooks registered: its task was abandoned
    /// (a stack overflow), so they run now, on whatever thread drops the
    /// coroutine. They must not park.
    fn drop(&mut self) {
        for (_, hook) in self.registered.drain(..) {
            hook();
        }
    }
}

/// Unregisters its hook when dropped (see [`on_abandon`]).
#[must_use = "dropping the guard unregisters the hook at once"]
pub struct AbandonGuard {
    /// `None` when registered off a coroutine (nothing to unregister).
    id: Option<u64>,
}

impl fmt::Debug for AbandonGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbandonGuard")
            .field("registered", &self.id.is_some())
            .finish()
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            HOOKS.with(|hooks| {
                let mut hooks = hooks.borrow_mut();
                if let Some(i) = hooks.registered.iter().position(|(h, _)| *h == id) {
                    drop(hooks.registered.swap_remove(i));
                }
            });
        }
    }
}

/// Runs `hook` if the calling task is abandoned without unwinding (it
/// overflows its coroutine stack, [`GreenError::StackOverflow`](crate::GreenError::StackOverflow))
/// while the returned guard lives; dropping the guard — on the same
/// task — unregisters it. For what a task holds outside itself and must
/// give back even then: `green_postgres`'s pool uses it to close a
/// checked-out connection (so the server rolls back its transaction and
/// releases its locks) and free its slot.
///
/// The hook runs on whatever thread drops the dead coroutine, outside any
/// task: it must not park or block (close a socket, update a counter, wake
/// a waiter). Called off a coroutine it registers nothing. A guard moved to
/// another task no longer protects anything: the hook is forgotten, unrun,
/// when the task that registered it ends.
///
/// ```
/// let pool = green::GreenPool::new();
/// let ran = pool
///     .run(|| {
///         let _guard = green::on_abandon(|| eprintln!("abandoned: giving the slot back"));
///         // ... hold the resource; the guard unregisters when dropped.
///         7
///     })
///     .unwrap();
/// assert_eq!(ran, 7);
/// ```
pub fn on_abandon(hook: impl FnOnce() + Send + 'static) -> AbandonGuard {
    if !may::coroutine::is_coroutine() {
        return AbandonGuard { id: None };
    }
    let id = HOOKS.with(|hooks| {
        let mut hooks = hooks.borrow_mut();
        hooks.next_id += 1;
        let id = hooks.next_id;
        hooks.registered.push((id, Box::new(hook)));
        id
    });
    AbandonGuard { id: Some(id) }
}

/// Forgets, without running them, the hooks a finished task left behind:
/// called by a worker between tasks, so that a hook never outlives the
/// task that registered it.
pub(crate) fn forget_hooks() {
    HOOKS.with(|hooks| {
        let left = std::mem::take(&mut hooks.borrow_mut().registered);
        drop(left);
    });
}
