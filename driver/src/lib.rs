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

// The layers, lowest first; each may use only itself and those above it
// in this list (checked by `.ci/layers`).
mod client;
mod config;
mod connection;
mod error;
mod net;
pub mod pool;
mod request;
pub mod seam;
mod startup;
mod wire;

pub use client::cancel_token::CancelToken;
pub use client::client::Client;
pub use client::copy::{CopyInWriter, CopyOutReader};
pub use client::notifications::Notifications;
pub use client::observe::{
    clear_statement_hook, observe_statement, operation_name, set_statement_hook, StatementEvent,
};
pub use client::read_only::ReadOnly;
pub use client::transaction::Transaction;
pub use config::{
    AuthMethod, ChannelBindingMode, Config, ConfigBuilder, Environment, Host, LoadBalanceHosts,
    RequireAuth, SslMode, SslNegotiation, TargetSessionAttrs, DEFAULT_MAX_MESSAGE_BYTES,
    MIN_MAX_MESSAGE_BYTES,
};
pub use error::{sqlstate, BoxError, DbError, Error, Result, TlsFailure, WRONG_CONTEXT};
pub use pool::{Pool, PoolStats, PooledConnection};
pub use postgres_types::{FromSql, IsNull, ToSql, Type};
pub use request::atomic_batch::BatchAnswer;
pub use request::statement_log::SQL_LOG_TARGET;
pub use wire::bind_execute::Param;
pub use wire::notification::Notification;
pub use wire::row::{Row, RowIndex};
pub use wire::statement::{Column, Statement};
pub use wire::transaction_status::TransactionStatus;
