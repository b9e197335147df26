//! [`Query`]: a typed query over one model, run in a session. It is built
//! from the pure parts of [`crate::query`] ([`Expr`] filters, [`Order`]
//! terms, SQL text from [`sql`]) and runs its statement as an ORM read
//! or write of the session.
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

use std::marker::PhantomData;

use super::report::Report;
use super::Session;

mod polymorphic;
mod stream;

use crate::error::{Error, Result};
use crate::model::{Model, Table};
use crate::query::expr::Field;
use crate::query::lock::{LockStrength, Wait};
use crate::query::projection::{Append, AppendOptional, Contains, Projection};
use crate::query::{sql, Assignment, Expr, Order, QueryParts, Statement};
use green_postgres::{Client, Param, ReadOnly, Row};
pub use polymorphic::{Kind, Polymorphic};
pub use stream::{QueryIter, DEFAULT_FETCH_SIZE};

#[cfg(doc)]
use crate::error::{MapperError, QueryError};

mod locked;
mod with_related;

pub use locked::Locked;
pub use with_related::WithRelated;

/// A query over model `M` in a session; build it with [`Session::query`],
/// refine it, then run it with one of [`all`](Query::all),
/// [`first`](Query::first), [`one`](Query::one), [`count`](Query::count),
/// [`exists`](Query::exists), [`update`](Query::update),
/// [`delete`](Query::delete). [`for_update`](Query::for_update) and its
/// siblings make it a locking read ([`Locked`]);
/// [`with_related`](Query::with_related) loads each owner's children in one
/// more query ([`WithRelated`]).
pub struct Query<'s, M> {
    pub(super) session: &'s mut Session,
    pub(super) parts: QueryParts,
    _model: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for Query<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("parts", &self.parts).finish()
    }
}

impl<'s, M: Model> Query<'s, M> {
    pub(super) fn new(session: &'s mut Session) -> Self {
        Query {
            session,
            parts: QueryParts::default(),
            _model: PhantomData,
        }
    }

    /// Keeps the rows matching `expr` (`AND`-ed with earlier filters).
    pub fn filter(mut self, expr: Expr) -> Self {
        self.parts.add_filter(expr);
        self
    }

    /// Orders by a column (`Task::CREATED.desc()`); later calls add
    /// tie-breakers.
    pub fn order_by(mut self, order: Order) -> Self {
        self.parts.order.push(order);
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: i64) -> Self {
        self.parts.limit = Some(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: i64) -> Self {
        self.parts.offset = Some(n);
        self
    }

    /// The SQL this query runs as `all()`, for inspection.
    pub fn to_sql(&self) -> String {
        sql::select(M::table(), &self.parts).sql.into_owned()
    }

    fn rows(
        &mut self,
        statement_of: for<'p> fn(&'static Table, &'p QueryParts) -> Statement<'p>,
    ) -> Result<Vec<Row>> {
        let table = M::table();
        let statement = statement_of(table, &self.parts);
        self.session.read(table, |client| {
            client.query(&statement.sql, &statement.params)
        })
    }

    /// Every matching row. Each model is built as its row arrives, so the
    /// rows are never all held beside the models (see
    /// [`Client::for_each_row`](green_postgres::Client::for_each_row)).
    ///
    /// # Errors
    ///
    /// The server's error; a decoding error naming the column.
    pub fn all(self) -> Result<Vec<M>> {
        let table = M::table();
        let statement = sql::select(table, &self.parts);
        self.session.read(table, |client| {
            decode_each(client, &statement.sql, &statement.params, M::from_row)
        })?
    }

    /// The first matching row, if any.
    ///
    /// # Errors
    ///
    /// As [`Query::all`].
    pub fn first(mut self) -> Result<Option<M>> {
        self.parts.limit = Some(1);
        Ok(self.all()?.pop())
    }

    /// The only matching row.
    ///
    /// # Errors
    ///
    /// [`Error::RowCount`] when no row or several rows match; as
    /// [`Query::all`].
    pub fn one(mut self) -> Result<M> {
        let rows = self.rows(sql::select)?;
        match rows.as_slice() {
            [row] => M::from_row(row),
            rows => Err(Error::RowCount(rows.len())),
        }
    }

    /// How many rows match.
    ///
    /// # Errors
    ///
    /// The server's error.
    pub fn count(mut self) -> Result<u64> {
        let rows = self.rows(sql::count)?;
        let n: i64 = rows.first().ok_or(Error::RowCount(0))?.try_get(0usize)?;
        Ok(n.max(0) as u64)
    }

    /// Whether any row matches.
    ///
    /// # Errors
    ///
    /// The server's error.
    pub fn exists(mut self) -> Result<bool> {
        let rows = self.rows(sql::exists)?;
        Ok(rows.first().ok_or(Error::RowCount(0))?.try_get(0usize)?)
    }

    /// Sets columns on every matching row (`[Task::DONE.set(true)]`); limit,
    /// offset and order are ignored. Returns the number of rows updated.
    ///
    /// # Errors
    ///
    /// [`MapperError::NothingToUpdate`] for no assignments,
    /// [`MapperError::ForeignColumn`] for a column of another model;
    /// the server's error.
    pub fn update<I>(self, assignments: I) -> Result<u64>
    where
        I: IntoIterator<Item = Assignment>,
    {
        let table = M::table();
        let assignments: Vec<Assignment> = assignments.into_iter().collect();
        let statement = sql::update(table, &self.parts, &assignments)?;
        run_bulk(self.session, table, &statement)
    }

    /// Deletes every matching row (for a child model, with its ancestors'
    /// rows); limit, offset and order are ignored. Returns the number of rows
    /// deleted.
    ///
    /// # Errors
    ///
    /// The server's error.
    pub fn delete(self) -> Result<u64> {
        let table = M::table();
        let statement = sql::delete(table, &self.parts);
        run_bulk(self.session, table, &statement)
    }
}

/// Loading more than the rows: each owner's children (`query/with_related.rs`),
/// each row as its most specific kind (`query/polymorphic.rs`), rows
/// streamed from a cursor (`query/stream.rs`).
impl<'s, M: Model> Query<'s, M> {
    /// Also loads the rows of `C` whose foreign key points at each owner:
    /// one query for the owners and one for all their `C`s, instead of one
    /// [`Session::related`] per owner (the N+1 pattern).
    pub fn with_related<C: Model>(self) -> WithRelated<'s, M, C> {
        WithRelated::new(self)
    }

    /// The matching rows, each as its most specific kind of `P` (the
    /// first listed kind whose table has its key), else as the base
    /// variant, in the query's order.
    ///
    /// # Errors
    ///
    /// [`MapperError::NotAKind`] when a kind does not inherit from `M`;
    /// the server's error; a decoding error naming the column.
    pub fn polymorphic<P: Polymorphic<Base = M>>(self) -> Result<Vec<P>> {
        polymorphic::load(self)
    }

    /// The matching rows one at a time, fetched in batches of
    /// [`DEFAULT_FETCH_SIZE`] (see [`QueryIter::fetch_size`]) from a
    /// server-side cursor (`DECLARE ... NO SCROLL CURSOR`), so only one
    /// batch is in memory at a time. The cursor lives in the session's
    /// transaction, which this starts on the model's bind (as a write
    /// would), and the session's connection stays with it until commit or
    /// rollback. Dropping the iterator early closes the cursor; the session
    /// goes on as usual.
    ///
    /// # Errors
    ///
    /// The server's error for the `DECLARE`; each item carries the error of
    /// its `FETCH` or of decoding its row (naming the column).
    pub fn iter(self) -> Result<QueryIter<'s, M>> {
        stream::open(self)
    }
}

/// Locking reads (`query/locked.rs`).
impl<'s, M: Model> Query<'s, M> {
    /// Locks the rows read (`FOR UPDATE`) until the session's transaction
    /// ends, which this query starts; the rows will be updated or deleted.
    pub fn for_update(self) -> Locked<'s, M, Wait> {
        Locked::new(self, LockStrength::Update)
    }

    /// Locks the rows read with `FOR NO KEY UPDATE`: they will be updated,
    /// but not their keys, so foreign key checks of other transactions do
    /// not wait.
    pub fn for_no_key_update(self) -> Locked<'s, M, Wait> {
        Locked::new(self, LockStrength::NoKeyUpdate)
    }

    /// Locks the rows read with `FOR SHARE`: no other transaction may change
    /// them until this one ends ("read, check, write" rules).
    pub fn for_share(self) -> Locked<'s, M, Wait> {
        Locked::new(self, LockStrength::Share)
    }

    /// Locks the rows read with `FOR KEY SHARE`: their keys must not change.
    pub fn for_key_share(self) -> Locked<'s, M, Wait> {
        Locked::new(self, LockStrength::KeyShare)
    }
}

/// Joins, projections and aggregates: the query becomes a [`Report`]
/// (`session/report.rs`).
impl<'s, M: Model> Query<'s, M> {
    /// Joins model `C` along the one declared foreign key between `C`'s
    /// table and the query's (either direction). None or several such keys
    /// is a [`QueryError`] naming the tables, returned when the query runs.
    pub fn join<C: Model>(self) -> Report<'s, <C::Lineage as Append<M::Lineage>>::Output, ()>
    where
        C::Lineage: Append<M::Lineage>,
    {
        Report::from_query(self).join::<C>()
    }

    /// `LEFT JOIN`s model `C`; see [`Report::left_join`].
    pub fn left_join<C: Model>(
        self,
    ) -> Report<'s, <C::Lineage as AppendOptional<M::Lineage>>::Output, ()>
    where
        C::Lineage: AppendOptional<M::Lineage>,
    {
        Report::from_query(self).left_join::<C>()
    }

    /// Selects columns and aggregates instead of whole models:
    /// `.select((Task::ID, Task::SUBJECT))` reads `Vec<(Uuid, String)>`.
    pub fn select<P, I>(self, projection: P) -> Report<'s, M::Lineage, P>
    where
        P: Projection<M::Lineage, I>,
    {
        Report::from_query(self).select(projection)
    }

    /// Groups the rows by a column, for aggregates per group.
    pub fn group_by<N, T, D, I>(self, column: Field<N, T, D>) -> Report<'s, M::Lineage, ()>
    where
        M::Lineage: Contains<N, I>,
    {
        Report::from_query(self).group_by(column)
    }

    /// `SELECT DISTINCT`: equal result rows once.
    pub fn distinct(self) -> Report<'s, M::Lineage, ()> {
        Report::from_query(self).distinct()
    }
}

/// Where [`decode_each`] runs its query: a session's client (a write's
/// path, a locking read) or its read-only methods (a plain read).
pub(super) trait RowSource {
    /// [`Client::for_each_row`].
    fn for_each_row(
        &self,
        sql: &str,
        params: &[Param<'_>],
        on_row: &mut dyn FnMut(Row) -> green_postgres::Result<()>,
    ) -> green_postgres::Result<u64>;
}

impl RowSource for &Client {
    fn for_each_row(
        &self,
        sql: &str,
        params: &[Param<'_>],
        on_row: &mut dyn FnMut(Row) -> green_postgres::Result<()>,
    ) -> green_postgres::Result<u64> {
        Client::for_each_row(self, sql, params, on_row)
    }
}

impl RowSource for ReadOnly<'_> {
    fn for_each_row(
        &self,
        sql: &str,
        params: &[Param<'_>],
        on_row: &mut dyn FnMut(Row) -> green_postgres::Result<()>,
    ) -> green_postgres::Result<u64> {
        ReadOnly::for_each_row(self, sql, params, on_row)
    }
}

/// Runs a query on `source` and builds a value from each row with
/// `decode` as the row arrives (the row is dropped right after), so a large
/// result is held once, as values. The outer result is the driver's answer;
/// the inner one the first decoding error (the rows after it are read and
/// dropped undecoded).
pub(super) fn decode_each<T>(
    source: impl RowSource,
    sql: &str,
    params: &[Param<'_>],
    mut decode: impl FnMut(&Row) -> Result<T>,
) -> green_postgres::Result<Result<Vec<T>>> {
    let mut values = Vec::new();
    let mut failed = None;
    source.for_each_row(sql, params, &mut |row| {
        if failed.is_none() {
            match decode(&row) {
                Ok(value) => values.push(value),
                Err(e) => failed = Some(e),
            }
        }
        Ok(())
    })?;
    Ok(match failed {
        Some(e) => Err(e),
        None => Ok(values),
    })
}

/// Runs a bulk `UPDATE`/`DELETE` in the session's transaction and returns
/// how many rows it touched; a child model's statement (a CTE over its
/// ancestors' tables) returns that count as its one row.
fn run_bulk(
    session: &mut Session,
    table: &'static Table,
    statement: &Statement<'_>,
) -> Result<u64> {
    session.write_ending(
        table,
        |client| {
            if table.parent.is_some() {
                let row = client.query_one(&statement.sql, &statement.params)?;
                let n: i64 = row.try_get(0usize)?;
                Ok(n.max(0) as u64)
            } else {
                client.execute(&statement.sql, &statement.params)
            }
        },
        true,
    )
}
