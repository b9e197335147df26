//! odm: a blocking-facade object data mapper for PostgreSQL on stackful
//! coroutines.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

extern crate self as odm;

mod error;
pub mod pg;
pub mod testing;

pub use error::{BoxError, DbError, Error, Result, WRONG_CONTEXT};

pub mod ddl;
pub mod mapper;
pub mod model;
pub mod query;
pub mod session;
pub mod types;

pub use mapper::Mapper;
pub use model::{ColumnDef, ForeignKey, Model, Record, Table};
pub use odm_derive::{Choice, Model};
pub use query::{Assignment, Expr, Field, Order, Query};
pub use session::Session;
pub use types::Choice;

#[doc(hidden)]
/// Items the derives expand to; not a public API.
pub mod __private {
    pub use bytes::BytesMut;
    pub use postgres_types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
}

mod engine;
pub mod pool;

pub use engine::Engine;
pub use pool::{Pool, PoolStats, PooledConnection};
