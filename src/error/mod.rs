//! The lowest layer of the ORM: its error type, [`Error`], and the errors
//! of its parts that `Error` carries ([`MapperError`], [`QueryError`],
//! [`MigrationError`]). Every other module may use them; they use nothing
//! of the ORM.

#[allow(clippy::module_inception)]
mod error;
mod from_driver;
mod mapper_error;
mod migration_error;
mod query_error;

pub use error::{BoxError, Error, Result, WRONG_CONTEXT};
pub use mapper_error::MapperError;
pub use migration_error::MigrationError;
pub use query_error::QueryError;
