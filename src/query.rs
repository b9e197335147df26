//! The pure parts of typed queries: [`Field`] constants build [`Expr`]
//! filters, [`Order`] terms and [`Assignment`]s; [`sql`] turns them into
//! parameterised SQL (identifiers quoted, values bound). Nothing here
//! talks to the database: [`Query`](crate::Query), made by
//! [`Session::query`](crate::Session::query), runs them.

mod expr;
pub mod sql;

pub use expr::{Assignment, ColumnRef, Expr, Field, Order};
pub use sql::{QueryParts, Statement};
