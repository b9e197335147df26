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
}
