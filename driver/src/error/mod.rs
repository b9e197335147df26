//! The lowest layer: the driver's error types ([`Error`](error::Error),
//! [`DbError`](db_error::DbError), [`TlsFailure`](tls_failure::TlsFailure)),
//! the named SQLSTATE codes, and the on-a-coroutine check whose refusal is
//! [`Error::WrongContext`](error::Error::WrongContext). Every other layer
//! may use them; they use nothing of the driver.

pub(crate) mod context;
pub(crate) mod db_error;
#[allow(clippy::module_inception)]
pub(crate) mod error;
pub mod sqlstate;
pub(crate) mod tls_failure;
