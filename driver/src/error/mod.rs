//! The lowest layer: the driver's error types ([`Error`], [`DbError`],
//! [`TlsFailure`]), the named SQLSTATE codes, and the on-a-coroutine check
//! whose refusal is [`Error::WrongContext`]. Every other layer may use them;
//! they use nothing of the driver.

pub(crate) mod context;
mod db_error;
#[allow(clippy::module_inception)]
mod error;
pub mod sqlstate;
mod tls_failure;

pub use db_error::DbError;
pub use error::{BoxError, Error, Result, WRONG_CONTEXT};
pub use tls_failure::TlsFailure;
