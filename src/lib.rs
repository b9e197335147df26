//! odm: a blocking-facade object data mapper for PostgreSQL on stackful
//! coroutines.
//!
//! You write plain synchronous model code — no `async`, no `.await` — and
//! submit it to a [`green::GreenPool`]. Every database socket wait parks the
//! coroutine, so thousands of such tasks share a couple of OS threads. It is
//! the Rust form of Python's pulsar-odm (SQLAlchemy + greenlet + psycopg2's
//! wait callbacks + pulsar's `GreenPool`).
//!
//! ```
//! use green::GreenPool;
//! use odm::Mapper;
//!
//! #[derive(odm::Model, Debug, Clone, Default)]
//! struct Task {
//!     #[odm(primary_key)]
//!     id: Option<i32>,
//!     #[odm(max_length = 250)]
//!     subject: String,
//!     #[odm(default = "false")]
//!     done: bool,
//!     #[odm(default = "now()")]
//!     created: Option<chrono::NaiveDateTime>,
//! }
//!
//! fn add_task(mp: &Mapper) -> odm::Result<Task> {
//!     mp.table_create()?;
//!     mp.begin(|s| {
//!         let mut task = Task { subject: "my task".into(), ..Default::default() };
//!         s.add(&mut task)?; // id and created are read back from the server
//!         Ok(task)
//!     })
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // DATABASE_URL when set, else a throwaway PostgreSQL for this process
//! let db = odm::testing::test_database()?;
//! let mp = Mapper::new(&db.url())?; // no I/O yet
//! mp.register::<Task>()?;
//!
//! let pool = GreenPool::new();
//! let on_pool = mp.clone();
//! let task = pool.submit(move || add_task(&on_pool))?.join()??;
//! assert!(task.id.is_some() && task.created.is_some());
//!
//! // The same code called off the pool is refused at once.
//! let err = add_task(&mp).unwrap_err();
//! assert!(err.to_string().contains("acquire in main greenlet"));
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! - **What parks.** Every socket wait of the driver ([`pg`]), every wait for
//!   a pool slot ([`Pool::acquire`]) and every [`green::GreenLock`] wait
//!   parks the calling coroutine; the scheduler thread runs other tasks
//!   meanwhile. Nothing in odm blocks an OS thread on I/O.
//! - **What blocks.** [`green::Submitted::join`] blocks a plain thread (and
//!   parks a coroutine). Database work on a plain thread never blocks: it is
//!   refused at once with [`Error::WrongContext`], whose text starts with
//!   `acquire in main greenlet`, before anything is sent.
//! - **Transactions.** [`Mapper::begin`] commits when the closure returns
//!   `Ok`, rolls back on `Err` or panic (the panic then continues). A
//!   [`Session`] dropped without `commit` rolls back; a pooled connection
//!   handed back inside a transaction is rolled back or discarded, never
//!   reused dirty.
//! - **Pool.** `pool_size` (default 10) is enforced; waiters are served first
//!   come, first served and time out after `pool_timeout` (default 30 s) with
//!   [`Error::PoolTimeout`]; asking for a second connection while holding one
//!   is [`Error::NestedAcquire`], not a deadlock.
//! - **Stack size.** Green workers run on fixed-size coroutine stacks
//!   ([`green::runtime::DEFAULT_STACK_SIZE`], 256 KiB of address space, of which only
//!   the touched pages cost memory). A stack overflow in a coroutine fails
//!   that task with [`green::GreenError::StackOverflow`] (its destructors do
//!   not run and its memory leaks; may exits the process when the overflow
//!   overwrote the stack's last words), so code with deep recursion or large
//!   stack arrays needs a pool built with a bigger `stack_size`.
//!
//! # Cargo features
//!
//! On by default:
//!
//! - `tls`: TLS to the server (`sslmode=require` and stricter) with rustls;
//!   without it those settings give [`Error::TlsUnsupported`].
//! - `chrono`: chrono's date and time types as columns.
//! - `uuid`: `uuid::Uuid` as a column.
//! - `json`: `serde_json::Value` as a column (`JSONB`, or `JSON` with
//!   `#[odm(json)]`).
//!
//! Off by default:
//!
//! - `testing`: `odm::testing`, throwaway PostgreSQL servers, test databases
//!   and network faults (the `green-odm-testing` crate), for tests: turn it
//!   on in `[dev-dependencies]`,
//!   `green-odm = { version = "0.1", features = ["testing"] }`.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

extern crate self as odm;

/// The coroutine runtime odm runs on: [`green::GreenPool`], `Submitted`,
/// `GreenLock`, `wait`.
pub use green;

// The README's code blocks, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod error;
/// The coroutine PostgreSQL driver and its pool (the `green-postgres`
/// crate): [`pg::Client`], [`pg::Config`], [`pg::Transaction`], COPY,
/// LISTEN/NOTIFY, cancel; [`pg::Error`] converts into [`Error`] variant for
/// variant.
pub use green_postgres as pg;
pub use green_postgres::sqlstate;
/// Test servers: throwaway PostgreSQL clusters, fresh test databases and
/// network faults (the `green-odm-testing` crate; cargo feature `testing`,
/// off by default: turn it on in `[dev-dependencies]`). Its errors convert into [`Error::Testing`], so `?` works in a
/// function returning [`Result`].
#[cfg(feature = "testing")]
pub use odm_testing as testing;

pub use error::{BoxError, Error, MapperError, Result, WRONG_CONTEXT};
pub use pg::{DbError, TlsFailure};

mod database_admin;
/// The DDL text and its order: an implementation detail of
/// [`Mapper::table_create`], public (and hidden) only for the DDL-text
/// tests of `tests/models.rs`.
#[doc(hidden)]
pub mod ddl;
pub mod mapper;
pub mod migrate;
pub mod model;
pub mod query;
pub mod replicas;
pub mod session;
#[cfg(feature = "testing")]
pub mod test_runner;
pub mod types;

pub use mapper::Mapper;
pub use migrate::{Migration, Migrations};
pub use model::{ColumnDef, ForeignKey, Model, Record, Relation, Table};
/// A test run on a green worker with a fresh database, given to the body as
/// its parameter asks (`Mapper`, `Engine`, `Pool`, `pg::Config`, the URL as
/// a `String`, or nothing): `#[odm::test]`,
/// `#[odm::test(migrations = "migrations")]` (applied first; the folder
/// relative to the package root), `#[odm::test(keep_on_failure)]`. The body
/// may return `()` or a `Result`. Cargo feature `testing` (turn it on in
/// `[dev-dependencies]`); see [`test_runner`] for the details.
#[cfg(feature = "testing")]
pub use odm_derive::test;
pub use odm_derive::{Choice, Model};
pub use query::{Assignment, Expr, Field, Order};
pub use replicas::ReadRoute;
pub use session::{
    AsOdmError, AtomicBatch, Isolation, LoadPolicy, Polymorphic, Query, QueryIter, Report, Session,
};
pub use types::Choice;

/// What the code generated by `derive(Model)`, `derive(Choice)` and
/// `embed_migrations!` names beyond odm's public API: the encoding traits
/// of `postgres-types`, the const helpers and SQL cache of a derived
/// `Table` static, the checks and decoding of a `Choice` column, and the
/// proc macro behind the folder form of `embed_migrations!`. It is public
/// only because that code is compiled in the user's crate; it is not a
/// public API and may change in any release. Everything else internal is
/// crate-private.
#[doc(hidden)]
pub mod __private {
    pub use bytes::BytesMut;
    pub use odm_derive::embed_dir;
    pub use postgres_types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

    pub use crate::model::derived_table::{column_default, key_identity, SqlCache};
    pub use crate::types::choice::{check_choice_code, decode_choice, ChoiceCode};
}

mod engine;
/// The connection pool: exclusive checkouts and the shared (pipelined)
/// mode ([`pg::pool`]).
pub use green_postgres::pool;

pub use engine::Engine;
pub use pool::{Pool, PoolStats, PooledConnection};
