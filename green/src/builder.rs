//! `GreenPoolBuilder`: the configuration of a `GreenPool`.

use crate::error::GreenError;
use crate::pool::{GreenPool, DEFAULT_MAX_WORKERS};
use crate::runtime::check_stack_size;

/// Configures a [`GreenPool`]: `GreenPool::builder().max_workers(n).stack_size(bytes).max_queued(m).build()`.
#[derive(Debug, Clone)]
pub struct GreenPoolBuilder {
    max_workers: usize,
    stack_size: Option<usize>,
    report_stack_usage: bool,
    max_queued: Option<usize>,
}

impl GreenPoolBuilder {
    pub(crate) fn new() -> GreenPoolBuilder {
        GreenPoolBuilder {
            max_workers: DEFAULT_MAX_WORKERS,
            stack_size: None,
            report_stack_usage: false,
            max_queued: None,
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

    /// The most tasks that may wait for a free worker (default: no bound).
    ///
    /// With a bound, [`GreenPool::submit`] refuses a task with
    /// [`GreenError::QueueFull`] (see [`GreenError::is_queue_full`]) when
    /// every one of the `max_workers` workers is busy and `max_queued`
    /// tasks already wait, instead of queueing it; a server answers such a
    /// request "busy" (HTTP 503) and stays responsive under overload. `0`
    /// means no waiting at all: a task runs at once or is refused. Tasks a
    /// worker submits to its own pool run inline and are never refused.
    ///
    /// The default stays unbounded so that a batch job that submits many
    /// tasks at once and joins them later keeps working as before; choose
    /// a bound for anything that takes work from the network.
    pub fn max_queued(mut self, max_queued: usize) -> GreenPoolBuilder {
        self.max_queued = Some(max_queued);
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
            self.max_queued,
            None,
        ))
    }
}
