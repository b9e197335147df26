//! green: run plain synchronous code on `may` coroutines.
//!
//! The runtime under odm, and the Rust form of pulsar's greenio: a
//! [`GreenPool`] runs closures on reusable stackful coroutines, so code
//! that "blocks" on a socket, a [`GreenLock`], [`wait`] or
//! [`Submitted::join`] only parks its coroutine while a couple of OS
//! threads keep running thousands of others. It knows nothing of databases.
//!
//! ```
//! use green::{GreenLock, GreenPool};
//! use std::sync::Arc;
//!
//! let pool = GreenPool::with_max_workers(4);
//! let lock = Arc::new(GreenLock::new());
//!
//! // a task is a plain closure; join() blocks this (plain) thread
//! let task_lock = Arc::clone(&lock);
//! let answer = pool.submit(move || {
//!     let _guard = task_lock.acquire()?;          // parks if another task holds it
//!     may::coroutine::sleep(std::time::Duration::from_millis(1)); // parks, never blocks the thread
//!     Ok::<_, green::GreenError>(6 * 7)
//! })?.join()??;
//! assert_eq!(answer, 42);
//!
//! // green-only operations refuse plain threads with a typed error
//! let refused = lock.acquire().unwrap_err();
//! assert!(refused.to_string().contains("acquire in main greenlet"));
//! assert!(!lock.locked());
//!
//! pool.shutdown();
//! assert!(pool.submit(|| ()).is_err());
//! # Ok::<(), green::GreenError>(())
//! ```
//!
//! # Behavior
//!
//! **What blocks and what parks.** A wait parks when the caller is a may
//! coroutine ([`in_green_worker()`] is true) and blocks the OS thread
//! otherwise:
//! - [`Submitted::join`] blocks a plain thread and parks a coroutine;
//!   `Submitted` is also a `Future` for async callers.
//! - [`GreenLock::acquire`] and [`wait`] only ever park; on a plain thread
//!   they return [`GreenError::WrongContext`] ("acquire in main greenlet ...")
//!   at once, without touching the lock or polling the future.
//! - [`GreenPool::shutdown`] blocks a plain thread and parks a coroutine.
//! - [`GreenPool::submit`] never waits: the task goes to an idle worker
//!   (reused, most recent first), else to a new worker while fewer than
//!   `max_workers` exist, else to the back of a FIFO queue. Called from one
//!   of the pool's own workers it runs the closure inline instead.
//! - A panic in a task is caught and returned as [`GreenError::Panicked`]
//!   with its message; the worker and the pool keep going.
//!
//! **Runtime.** Workers run on may's scheduler: by default one scheduler
//! thread per core, configured once, lazily, before green starts its first
//! coroutine (see [`RuntimeConfig`] to change it beforehand). Never keep
//! per-task state in a `thread_local!` across a point that may park: the
//! coroutine may resume on another thread.
//!
//! **Stack size.** Each worker has its own fixed stack, by default
//! [`runtime::DEFAULT_STACK_SIZE`] (256 KiB of address space, of which only
//! the touched pages become resident: a worker parked on a lock costs about
//! 8 KiB of RSS in release builds, 12 KiB in debug builds). The default was
//! chosen by measuring: the deepest path known, a panic with
//! `RUST_BACKTRACE=1` inside a task, uses about 22 KiB; see the
//! `stack_probe` example and [`GreenPoolBuilder::report_stack_usage`] to
//! re-measure a workload. Choose another size per pool with
//! [`GreenPoolBuilder::stack_size`] or for the process with
//! [`RuntimeConfig::stack_size`]. **Overflowing a coroutine stack is
//! fatal** to the task and its worker: the segmentation fault on the guard
//! page is taken by may, which prints "coroutine has overflowed its stack"
//! and drops the worker without unwinding it (no destructor of the task
//! runs, its memory leaks); the task fails with [`GreenError::StackOverflow`]
//! and a new worker takes over the queue. In some cases may exits the whole
//! process instead. Size stacks with the probe, never by trial. What the
//! task held outside itself can still be given back: hooks registered with
//! [`on_abandon`] run when it is abandoned (the database pool closes a
//! checked-out connection that way, so its transaction is rolled back).
//!
//! **Shutdown.** [`GreenPool::shutdown`] closes the pool (later `submit`s,
//! inline ones included, fail with [`GreenError::Closed`]), lets queued and
//! running tasks finish, and returns once every worker has exited; called
//! from one of the pool's own workers it closes and returns without waiting.
//! Dropping the last `GreenPool` handle closes the pool without waiting.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod abandon;
mod builder;
mod error;
mod lock;
mod pool;
pub mod runtime;
mod submitted;
mod wait;
mod waiter;

pub use abandon::{on_abandon, AbandonGuard};
pub use builder::GreenPoolBuilder;
pub use error::GreenError;
pub use lock::{GreenLock, GreenLockGuard};
pub use pool::{GreenPool, DEFAULT_MAX_WORKERS};
pub use runtime::RuntimeConfig;
pub use submitted::Submitted;
pub use wait::wait;

/// Whether the caller runs on a may coroutine, i.e. anywhere green waits
/// park instead of blocking (any pool's worker, or a coroutine spawned with may).
///
/// [`GreenPool::in_green_worker`] asks the narrower question "one of *this*
/// pool's workers?".
pub fn in_green_worker() -> bool {
    may::coroutine::is_coroutine()
}
