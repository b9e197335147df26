//! The typed query builder: [`Field`] constants build [`Expr`] filters and
//! [`Order`] terms; [`sql`] turns them into parameterised SQL.

mod expr;
pub mod sql;

pub use expr::{Assignment, ColumnRef, Expr, Field, Order};
pub use sql::{quote_ident, QueryParts, Statement};
