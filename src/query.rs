//! The pure parts of typed queries: [`Field`] constants build [`Expr`]
//! filters, [`Order`] terms and [`Assignment`]s; [`sql`] turns them into
//! parameterised SQL (identifiers quoted, values bound). Nothing here
//! talks to the database: [`Query`](crate::Query), made by
//! [`Session::query`](crate::Session::query), runs them. [`lock`] holds the
//! locking clauses (`FOR UPDATE ... SKIP LOCKED`), [`ValueArray`] binds many
//! values as one array parameter (batched eager loading).

mod expr;
pub mod lock;
pub mod sql;
mod value_array;

pub use expr::{Assignment, ColumnRef, Expr, Field, Order};
pub use lock::{LockStrength, NoWait, SkipLocked, Wait, WaitPolicy};
pub use sql::{QueryParts, Statement};
pub use value_array::ValueArray;
