//! [`Query::iter`]: a query's rows streamed through a server-side cursor in
//! the session's transaction, [`fetch_size`](QueryIter::fetch_size) rows a
//! round trip, so memory stays bounded whatever the result's size.
//!
//! ```no_run
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Task { #[odm(primary_key)] id: Option<i32>, done: bool }
//! # fn demo(s: &mut odm::Session) -> odm::Result<()> {
//! for task in s.query::<Task>().filter(Task::DONE.eq(false)).iter()?.fetch_size(500) {
//!     let task = task?;
//!     // ...
//! }
//! # Ok(()) }
//! ```

use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use super::Query;
use crate::error::Result;
use crate::model::{Model, Table};
use crate::query::sql;
use crate::session::Session;
use green_postgres::Row;

/// How many rows [`Query::iter`] fetches a round trip unless told
/// otherwise with [`QueryIter::fetch_size`].
pub const DEFAULT_FETCH_SIZE: usize = 1000;

/// The cursor's name for a query's SQL text. The iterator borrows the
/// session, so a session has at most one cursor open at a time (it is
/// closed when the iterator ends or is dropped); the name still differs by
/// query, because the connection's statement cache keeps `FETCH ... FROM
/// <name>` with the column types of the query it was first prepared for.
fn cursor_name(select_sql: &str) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    select_sql.hash(&mut hasher);
    format!("odm_cursor_{:016x}", hasher.finish())
}

/// [`Query::iter`]: declares the cursor in the session's transaction.
pub(super) fn open<'s, M: Model>(query: Query<'s, M>) -> Result<QueryIter<'s, M>> {
    let table = M::table();
    let statement = sql::select(table, &query.parts);
    let cursor = cursor_name(&statement.sql);
    let declare = format!("DECLARE {cursor} NO SCROLL CURSOR FOR {}", statement.sql);
    query
        .session
        .write(table, |client| client.execute(&declare, &statement.params))?;
    Ok(QueryIter {
        session: query.session,
        table,
        cursor,
        fetch_size: DEFAULT_FETCH_SIZE,
        batch: Vec::new().into_iter(),
        open: true,
        _model: PhantomData,
    })
}

/// The rows of a [`Query`] streamed from a server-side cursor: made by
/// [`Query::iter`], yields `Result<M>`.
pub struct QueryIter<'s, M> {
    session: &'s mut Session,
    table: &'static Table,
    cursor: String,
    fetch_size: usize,
    batch: std::vec::IntoIter<Row>,
    /// Whether the cursor is still open on the server.
    open: bool,
    _model: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for QueryIter<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryIter")
            .field("model", &self.table.model)
            .field("fetch_size", &self.fetch_size)
            .field("buffered", &self.batch.len())
            .field("open", &self.open)
            .finish()
    }
}

impl<M> QueryIter<'_, M> {
    /// Fetches `n` rows a round trip from now on (at least 1): larger
    /// batches mean fewer round trips and more memory.
    pub fn fetch_size(mut self, n: usize) -> Self {
        self.fetch_size = n.max(1);
        self
    }

    /// Fetches the next batch; closes the cursor after the last one.
    fn fetch(&mut self) -> Result<()> {
        let sql = format!("FETCH FORWARD {} FROM {}", self.fetch_size, self.cursor);
        let rows = match self
            .session
            .write(self.table, |client| client.query(&sql, &[]))
        {
            Ok(rows) => rows,
            Err(e) => {
                self.open = false; // the transaction is aborted with it
                return Err(e);
            }
        };
        if rows.len() < self.fetch_size {
            self.close()?;
        }
        self.batch = rows.into_iter();
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.open = false;
        let sql = format!("CLOSE {}", self.cursor);
        self.session
            .write(self.table, |client| client.batch_execute(&sql))
    }
}

impl<M: Model> Iterator for QueryIter<'_, M> {
    type Item = Result<M>;

    fn next(&mut self) -> Option<Result<M>> {
        if self.batch.len() == 0 && self.open {
            if let Err(e) = self.fetch() {
                return Some(Err(e));
            }
        }
        self.batch.next().map(|row| M::from_row(&row))
    }
}

impl<M> Drop for QueryIter<'_, M> {
    fn drop(&mut self) {
        if !self.open || std::thread::panicking() {
            return;
        }
        if let Err(e) = self.close() {
            log::warn!("closing the cursor of a dropped query iterator failed: {e}");
        }
    }
}
