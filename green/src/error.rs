//! The error type of the green runtime.

/// Why the green runtime refused or lost a piece of work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GreenError {
    /// The pool was shut down; no new task is accepted.
    #[error("cannot schedule new tasks after shutdown")]
    Closed,
    /// The task panicked; carries the panic message.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// A green-only operation was called from a plain OS thread.
    #[error("acquire in main greenlet: {0} must run on a green worker (submit it to a GreenPool)")]
    WrongContext(&'static str),
    /// A pool or runtime setting is out of range; names the setting.
    #[error("invalid green configuration: {0}")]
    InvalidConfig(String),
    /// The runtime was configured after it had already started.
    #[error("the green runtime is already running; configure it before the first task")]
    RuntimeStarted,
    /// A worker coroutine could not be started (for example its stack could not be mapped).
    #[error("cannot start a green worker: {0}")]
    Spawn(String),
    /// The task overflowed its worker's coroutine stack; the worker was lost.
    #[error("task overflowed its coroutine stack; give the pool a larger stack_size")]
    StackOverflow,
    /// The result of a `Submitted` was already taken (polled after completion).
    #[error("the task's result was already taken")]
    ResultTaken,
    /// Every worker was busy and the queue already held `max_queued` tasks
    /// (see [`GreenPoolBuilder::max_queued`](crate::GreenPoolBuilder::max_queued));
    /// the task was not accepted. A server sheds load on it (for example
    /// with HTTP 503) instead of letting waiting work grow without bound.
    #[error("the green pool's queue is full ({max_queued} tasks waiting)")]
    QueueFull {
        /// The pool's queue bound.
        max_queued: usize,
    },
}

impl GreenError {
    /// Whether the pool refused the task because its queue was full
    /// ([`GreenError::QueueFull`]): retry later or shed the work.
    pub fn is_queue_full(&self) -> bool {
        matches!(self, GreenError::QueueFull { .. })
    }
}
