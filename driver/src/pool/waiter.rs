//! A caller parked in the pool's queue, and what it is handed when served.
//!
//! Each waiter owns a `may` blocker: parking it suspends the coroutine (the
//! worker thread runs other tasks meanwhile), and the task that frees a
//! connection puts a [`Grant`] in the waiter's mailbox *under the pool lock*,
//! then unparks it *after* releasing the lock. No waiter ever spins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use may::sync::Blocker;
use parking_lot::Mutex;

/// What a parked caller is given when the pool serves it.
#[derive(Debug)]
pub(crate) enum Grant<T> {
    /// The thing it asked for: a connection, or a shared lease on one.
    Ready(T),
    /// Permission to open a new connection itself (outside every lock); the
    /// pool has already counted it, so the size can never overshoot.
    Create,
    /// The pool was closed while it waited.
    Closed,
}

/// One parked caller.
pub(crate) struct Waiter<T> {
    /// The task that waits (for nested-acquire bookkeeping).
    pub(crate) task: u64,
    /// When it started waiting.
    pub(crate) since: Instant,
    mailbox: Mutex<Option<Grant<T>>>,
    blocker: Blocker,
}

impl<T> std::fmt::Debug for Waiter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("task", &self.task)
            .field("since", &self.since)
            .field("served", &self.mailbox.lock().is_some())
            .finish()
    }
}

impl<T> Waiter<T> {
    /// A waiter for the calling coroutine.
    pub(crate) fn new(task: u64) -> Arc<Waiter<T>> {
        Arc::new(Waiter {
            task,
            since: Instant::now(),
            mailbox: Mutex::new(None),
            // `false`: a cancelled coroutine unwinds out of `park`; the
            // caller's guard then hands back whatever it was granted.
            blocker: Blocker::new(false),
        })
    }

    /// Serves the waiter (called under the pool lock; wake it afterwards).
    pub(crate) fn give(&self, grant: Grant<T>) {
        *self.mailbox.lock() = Some(grant);
    }

    /// Takes the grant, if the waiter has been served.
    pub(crate) fn take(&self) -> Option<Grant<T>> {
        self.mailbox.lock().take()
    }

    /// Wakes the parked coroutine (call outside the pool lock).
    pub(crate) fn wake(&self) {
        self.blocker.unpark();
    }

    /// Parks until served or until `deadline`; returns the grant if served.
    ///
    /// A timeout returns `None` with the waiter still queued: the caller must
    /// then take the pool lock, check the mailbox once more (a grant may have
    /// raced the timer) and otherwise leave the queue.
    pub(crate) fn park_until(&self, deadline: Instant) -> Option<Grant<T>> {
        loop {
            if let Some(grant) = self.take() {
                return Some(grant);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Err(Timeout) just loops to the deadline check; a spurious
            // return loops to the mailbox check.
            let _ = self.blocker.park(Some(park_duration(deadline - now)));
        }
    }
}

/// How long a caller may take in all: set once when it asks the pool, and
/// shared by its wait in the queue, its liveness checks, its backoff and
/// its connect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcquireDeadline {
    /// When the caller asked.
    pub(crate) started: Instant,
    /// When it must have an answer.
    pub(crate) at: Instant,
}

impl AcquireDeadline {
    /// A deadline `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> AcquireDeadline {
        let started = Instant::now();
        AcquireDeadline {
            started,
            at: started + timeout,
        }
    }

    /// What is left at `now` (zero once passed).
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now)
    }
}

/// `remaining` rounded *up* to whole milliseconds, at least one.
///
/// may keeps park timeouts in whole milliseconds and treats zero as "no
/// timeout": parking for 0.4 ms would park forever, and 1.9 ms would wake
/// early and then re-park for the sub-millisecond rest, forever.
pub(crate) fn park_duration(remaining: Duration) -> Duration {
    let millis = remaining.as_nanos().div_ceil(1_000_000).max(1);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}
