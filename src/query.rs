//! The pure parts of typed queries: [`Field`] constants build [`Expr`]
//! filters, [`Order`] terms and [`Assignment`]s; the crate turns them into
//! parameterised SQL (identifiers quoted, values bound); joins, projections
//! into tuples and aggregates are a [`Report`](crate::Report). Nothing here
//! talks to the database: [`Query`](crate::Query), made by
//! [`Session::query`](crate::Session::query), runs them. [`lock`] holds the
//! locking clauses (`FOR UPDATE ... SKIP LOCKED`).
//!
//! ```no_run
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Task {
//! #     #[odm(primary_key)] id: Option<i32>,
//! #     subject: String,
//! #     #[odm(default = "false")] done: bool,
//! #     #[odm(default = "now()")] created: Option<chrono::NaiveDateTime>,
//! # }
//! # fn demo(s: &mut odm::Session) -> odm::Result<()> {
//! let open: Vec<Task> = s
//!     .query::<Task>()
//!     .filter(Task::DONE.eq(false) & Task::SUBJECT.like("%urgent%"))
//!     .order_by(Task::CREATED.desc())
//!     .limit(10)
//!     .all()?;
//! let finished = s.query::<Task>().filter(Task::DONE.eq(true)).count()?;
//! s.query::<Task>().filter(Task::ID.in_([1, 2, 3])).update([Task::DONE.set(true)])?;
//! # Ok(()) }
//! ```

pub(crate) mod aggregate;
pub(crate) mod expr;
pub(crate) mod join;
pub mod lock;
pub(crate) mod projection;
/// SQL text generation: an implementation detail, public (and hidden)
/// only for the SQL-text tests of `tests/models.rs` and
/// `tests/column_types.rs` (another crate); not a public API.
#[doc(hidden)]
pub mod sql;
mod value_array;

pub use crate::error::QueryError;
pub use aggregate::{
    avg, count, count_distinct, count_of, max, min, sum, Aggregate, AggregateExpr, Anywhere,
    Averageable, Count, CountOf, Summable,
};
pub use expr::{Assignment, ColumnRef, Expr, Field, Order};
pub use lock::{LockStrength, NoWait, SkipLocked, Wait, WaitPolicy};
pub use projection::{
    Append, AppendOptional, Contains, Here, HereOptional, InnerSide, JoinSide, Optional, OuterSide,
    Projection, ReportOrder, Selectable, There,
};
pub(crate) use sql::{QueryParts, Statement};
pub(crate) use value_array::ValueArray;
