//! `GreenPoolBuilder`: the configuration of a `GreenPool`.

use crate::error::GreenError;
use crate::pool::{GreenPool, DEFAULT_MAX_WORKERS};
use crate::runtime::check_stack_size;

/// Configures a [`GreenPool`]: `GreenPool::builder().max_workers(n).stack_size(bytes).build()`.
#[derive(Debug, Clone)]
pub struct GreenPoolBuilder {
    max_workers: usize,
    stack_size: Option<usize>,
    report_stack_usage: bool,
}

impl GreenPoolBuilder {
    pub(crate) fn new() -> GreenPoolBuilder {
        GreenPoolBuilder {
            max_workers: DEFAULT_MAX_WORKERS,
            stack_size: None,
            report_stack_usage: false,
        }
    }

    /// The most workers running at once (default 100); at least 1.
    pub fn max_workers(mut self, max_workers: usize) -> GreenPoolBuilder {
        self.max_workers = max_workers;
        self
    }

    /// The stack size of each worker coroutine in bytes (default
    /// [`DEFAULT_STACK_SIZE`](crate::runtime::DEFAULT_STACK_SIZE), or the
    /// runtime's configured default). Overflowing it fails the task with
    /// [`GreenError::StackOverflow`] without running its destructors.
    pub fn stack_size(mut self, bytes: usize) -> GreenPoolBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Measurement aid: when on, may fills each worker stack with a pattern
    /// at creation (making the whole stack resident) and, when the worker
    /// exits (at shutdown), prints `coroutine name = .., stack size = S,
    /// used size = U` (in machine words) to stdout. Off by default.
    pub fn report_stack_usage(mut self, on: bool) -> GreenPoolBuilder {
        self.report_stack_usage = on;
        self
    }

    /// Builds the pool; no worker starts before the first task.
    ///
    /// # Errors
    ///
    /// [`GreenError::InvalidConfig`] naming the setting when `max_workers`
    /// is 0 or `stack_size` is outside
    /// [`MIN_STACK_SIZE`](crate::runtime::MIN_STACK_SIZE)..=[`MAX_STACK_SIZE`](crate::runtime::MAX_STACK_SIZE).
    pub fn build(self) -> Result<GreenPool, GreenError> {
        if self.max_workers == 0 {
            return Err(GreenError::InvalidConfig(
                "max_workers must be at least 1".into(),
            ));
        }
        if let Some(bytes) = self.stack_size {
            check_stack_size(bytes)?;
        }
        Ok(GreenPool::from_parts(
            self.max_workers,
            self.stack_size,
            self.report_stack_usage,
            None,
        ))
    }
}
