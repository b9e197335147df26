//! Which green task is asking: a per-coroutine identity for nested-acquire
//! detection.
//!
//! A `thread_local!` would be wrong here: one OS thread runs many coroutines,
//! and a coroutine may resume on another thread after it parks. `may` keeps
//! coroutine-local storage in the coroutine itself, so a number drawn once per
//! coroutine and stored there names the task for as long as it lives.

use std::sync::atomic::{AtomicU64, Ordering};

/// Source of task numbers; 0 is never handed out.
static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

may::coroutine_local!(static TASK: u64 = NEXT_TASK.fetch_add(1, Ordering::Relaxed));

/// A number naming the calling coroutine, stable while it runs and never
/// shared with another coroutine of this process.
///
/// Only meaningful on a coroutine: the pool checks the context first.
pub(crate) fn current_task() -> u64 {
    TASK.with(|task| *task)
}
