//! Who to wake when something a caller waits for becomes ready.
//!
//! A plain OS thread waits with `std::thread::park`, a coroutine with
//! `may::coroutine::park` (which hands its OS thread back to the scheduler),
//! and async code with its `Waker`. Every wait in this crate loops on its own
//! condition, so a stale or spurious wake-up is harmless.

use std::task::Waker;
use std::thread::Thread;

use may::coroutine::Coroutine;

/// A handle that can wake one waiting party.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    /// A plain OS thread blocked in `std::thread::park`.
    Thread(Thread),
    /// A may coroutine parked in `may::coroutine::park`.
    Coroutine(Coroutine),
    /// An async task polled by some executor.
    Waker(Waker),
}

impl Waiter {
    /// The waiter for the calling context: the current coroutine when on one,
    /// otherwise the current OS thread.
    pub(crate) fn current() -> Waiter {
        if may::coroutine::is_coroutine() {
            Waiter::Coroutine(may::coroutine::current())
        } else {
            Waiter::Thread(std::thread::current())
        }
    }

    /// Wakes the waiting party (a no-op if it is no longer waiting).
    pub(crate) fn wake(self) {
        match self {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Coroutine(co) => co.unpark(),
            Waiter::Waker(waker) => waker.wake(),
        }
    }
}

/// Suspends the caller until some waiter handle for it is woken (or
/// spuriously): parks the coroutine when on one, else blocks the OS thread.
/// Callers must re-check their condition in a loop.
pub(crate) fn park_current() {
    if may::coroutine::is_coroutine() {
        may::coroutine::park();
    } else {
        std::thread::park();
    }
}
