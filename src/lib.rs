//! odm: a blocking-facade object data mapper for PostgreSQL on stackful
//! coroutines.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod error;
pub mod pg;
pub mod testing;

pub use error::{BoxError, DbError, Error, Result, WRONG_CONTEXT};

mod engine;
pub mod pool;

pub use engine::Engine;
pub use pool::{Pool, PoolStats, PooledConnection};
