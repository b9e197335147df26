//! A PostgreSQL driver and connection pool on `may` coroutines: blocking
//! calls that park the calling coroutine instead of its OS thread.
//!
//! All socket I/O goes through `may`, so every wait parks the calling
//! coroutine and the scheduler runs other tasks. A [`Client`] may be shared
//! by many green tasks; their requests are pipelined on the one connection.
//! Values are encoded with `postgres-types`' [`ToSql`] and rows decoded
//! lazily with [`FromSql`].
//!
//! ```no_run
//! use green_postgres::{Client, Config};
//!
//! let config = Config::parse("postgresql+green://odm:odmtest@127.0.0.1:5432/odmtests")?;
//! let pool = green::GreenPool::new();
//! let answer = pool
//!     .submit(move || -> Result<i32, green_postgres::Error> {
//!         let client = Client::connect(&config)?;          // parks, never blocks the thread
//!         let row = client.query_one("SELECT $1::int4 + 1", &[&41i32])?;
//!         Ok(row.get(0))
//!     })?
//!     .join()??;
//! assert_eq!(answer, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Run database work on a [`green::GreenPool`], not on coroutines spawned
//! with a bare `may::go!`: `may` has a livelock where a coroutine that ends
//! while it is being woken inside its park registration spins its
//! scheduler thread forever; green's workers (and every coroutine odm
//! spawns itself) yield before they end, which avoids it.
//!
//! Off a coroutine every call that would touch the server returns
//! [`Error::WrongContext`] at once.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod abort;
mod atomic_batch;
mod auth_policy;
mod bind_execute;
mod cancel_token;
mod client;
mod config;
mod connect;
mod connection;
mod context;
mod copy;
mod db_error;
mod error;
mod host_choice;
mod notification;
mod off_scheduler;
mod placement;
pub mod pool;
mod reader;
mod request;
mod response;
mod row;
pub mod seam;
mod server_error;
mod socket;
pub mod sqlstate;
mod statement;
mod statement_cache;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_end_point;
mod tls_failure;
#[cfg(feature = "tls")]
mod tls_halves;
mod transaction;
mod unnamed;

pub use atomic_batch::BatchAnswer;
pub use cancel_token::CancelToken;
pub use client::Client;
pub(crate) use config::parse_seconds;
pub use config::{
    AuthMethod, ChannelBindingMode, Config, ConfigBuilder, Host, LoadBalanceHosts, RequireAuth,
    SslMode, SslNegotiation, TargetSessionAttrs,
};
pub use copy::{CopyInWriter, CopyOutReader};
pub use db_error::DbError;
pub use error::{BoxError, Error, Result, WRONG_CONTEXT};
pub use notification::{Notification, Notifications};
pub use pool::{Pool, PoolStats, PooledConnection};
pub use postgres_types::{FromSql, IsNull, ToSql, Type};
pub use request::SQL_LOG_TARGET;
pub use row::{Row, RowIndex};
pub use statement::{Column, Statement};
pub use tls_failure::TlsFailure;
pub use transaction::{Transaction, TransactionStatus};

/// A query parameter: any value that can be encoded for PostgreSQL.
pub type Param<'a> = &'a (dyn ToSql + Sync);
