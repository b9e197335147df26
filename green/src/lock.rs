//! `GreenLock`: a mutual-exclusion lock for green tasks (pulsar's `GreenLock`).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use may::coroutine::Coroutine;
use parking_lot::Mutex;

use crate::error::GreenError;

/// A lock that may be held across parking points (socket I/O, `wait`,
/// `join`) by green tasks.
///
/// Only coroutines may acquire it. A waiter parks its coroutine (the OS
/// thread keeps running other tasks) and waiters are served first-come,
/// first-served: on release the lock passes directly to the oldest waiter.
/// The guard releases the lock when dropped. `GreenLock` is `Send + Sync`;
/// share it with an `Arc`.
pub struct GreenLock {
    state: Mutex<LockState>,
}

struct LockState {
    locked: bool,
    waiters: VecDeque<Arc<LockWaiter>>,
}

/// A coroutine queued for the lock.
struct LockWaiter {
    co: Coroutine,
    /// Set (under the state lock) when ownership is handed to this waiter.
    granted: AtomicBool,
}

/// Proof of holding a [`GreenLock`]; releases it on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct GreenLockGuard<'a> {
    lock: &'a GreenLock,
}

impl GreenLock {
    /// An unlocked lock.
    pub fn new() -> GreenLock {
        GreenLock {
            state: Mutex::new(LockState {
                locked: false,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// Takes the lock, parking the calling coroutine while another task holds it.
    ///
    /// # Errors
    ///
    /// Off a coroutine (a plain OS thread) it returns
    /// [`GreenError::WrongContext`], whose text contains
    /// `acquire in main greenlet`, without blocking; the lock is untouched.
    pub fn acquire(&self) -> Result<GreenLockGuard<'_>, GreenError> {
        if !may::coroutine::is_coroutine() {
            return Err(GreenError::WrongContext("GreenLock::acquire"));
        }
        let waiter = {
            let mut state = self.state.lock();
            if !state.locked {
                state.locked = true;
                return Ok(GreenLockGuard { lock: self });
            }
            let waiter = Arc::new(LockWaiter {
                co: may::coroutine::current(),
                granted: AtomicBool::new(false),
            });
            state.waiters.push_back(Arc::clone(&waiter));
            waiter
        };
        let mut queued = QueuedWaiter {
            lock: self,
            waiter,
            served: false,
        };
        while !queued.waiter.granted.load(Ordering::Acquire) {
            may::coroutine::park();
        }
        queued.served = true;
        Ok(GreenLockGuard { lock: self })
    }

    /// Whether some task holds the lock.
    pub fn locked(&self) -> bool {
        self.state.lock().locked
    }

    /// Coroutines parked waiting for the lock (introspection; a snapshot).
    pub fn waiters(&self) -> usize {
        self.state.lock().waiters.len()
    }

    /// Passes the lock to the oldest waiter, or unlocks it.
    fn release(&self) {
        let next = {
            let mut state = self.state.lock();
            match state.waiters.pop_front() {
                Some(next) => {
                    next.granted.store(true, Ordering::Release);
                    next
                }
                None => {
                    state.locked = false;
                    return;
                }
            }
        };
        next.co.unpark();
    }
}

/// Leaves the queue cleanly if a parked waiter unwinds (a cancelled
/// coroutine): gives the lock on if it was already handed over.
struct QueuedWaiter<'a> {
    lock: &'a GreenLock,
    waiter: Arc<LockWaiter>,
    /// The lock was received normally; nothing to clean up.
    served: bool,
}

impl Drop for QueuedWaiter<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        let granted = {
            let mut state = self.lock.state.lock();
            state
                .waiters
                .retain(|queued| !Arc::ptr_eq(queued, &self.waiter));
            self.waiter.granted.load(Ordering::Acquire)
        };
        if granted {
            self.lock.release();
        }
    }
}

impl Default for GreenLock {
    fn default() -> GreenLock {
        GreenLock::new()
    }
}

impl Drop for GreenLockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release();
    }
}

impl fmt::Debug for GreenLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("GreenLock")
            .field("locked", &state.locked)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

impl fmt::Debug for GreenLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenLockGuard").finish_non_exhaustive()
    }
}
