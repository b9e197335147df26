//! [`Locked`]: a query whose rows are locked until the session's transaction
//! ends — `FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`, `FOR KEY SHARE`,
//! with [`skip_locked`](Locked::skip_locked) or
//! [`nowait`](Locked::nowait).
//!
//! A locking read **starts the session's transaction** on the model's bind
//! (like a write: it never runs on the shared autocommit path of plain ORM
//! reads, where its lock would end with the statement) and the locks are
//! held until [`Session::commit`](crate::Session::commit) or rollback.
//!
//! ```no_run
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Job { #[odm(primary_key)] id: Option<i32>, #[odm(default = "false")] done: bool }
//! # fn demo(mp: &odm::Mapper) -> odm::Result<()> {
//! // one job for this worker; other workers skip the rows it holds
//! mp.begin(|s| {
//!     let job = s
//!         .query::<Job>()
//!         .filter(Job::DONE.eq(false))
//!         .order_by(Job::ID.asc())
//!         .for_update()
//!         .skip_locked()
//!         .first()?;
//!     if let Some(mut job) = job {
//!         job.done = true;
//!         s.add(&mut job)?;
//!     }
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Combinations without meaning do not compile: `skip_locked()`/`nowait()`
//! exist only on a [`Locked`] query whose policy is still [`Wait`], there is
//! no second lock mode, and `count`/`exists`/`update`/`delete` (which
//! PostgreSQL refuses to lock, or which lock anyway) are not offered.
//!
//! ```compile_fail
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Job { #[odm(primary_key)] id: Option<i32> }
//! # fn demo(s: &mut odm::Session) -> odm::Result<()> {
//! s.query::<Job>().skip_locked().first()?; // no lock mode: does not compile
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Job { #[odm(primary_key)] id: Option<i32> }
//! # fn demo(s: &mut odm::Session) -> odm::Result<()> {
//! s.query::<Job>().for_update().skip_locked().nowait().first()?; // both: does not compile
//! # Ok(()) }
//! ```

use std::marker::PhantomData;

use super::{decode_each, Query};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::query::lock::{self, LockStrength, NoWait, SkipLocked, Wait, WaitPolicy};
use crate::query::{sql, Expr, Order};
use green_postgres::Row;

/// A locking query over model `M` with waiting policy `W`; made by
/// [`Query::for_update`], [`Query::for_no_key_update`],
/// [`Query::for_share`] or [`Query::for_key_share`], run with
/// [`all`](Locked::all), [`first`](Locked::first) or [`one`](Locked::one).
pub struct Locked<'s, M, W = Wait> {
    query: Query<'s, M>,
    strength: LockStrength,
    _wait: PhantomData<fn() -> W>,
}

impl<M, W> std::fmt::Debug for Locked<'_, M, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locked")
            .field("query", &self.query)
            .field("strength", &self.strength)
            .field("wait", &std::any::type_name::<W>())
            .finish()
    }
}

impl<'s, M: Model> Locked<'s, M, Wait> {
    /// `query` as a locking read of `strength` that waits for locked rows
    /// ([`Query::for_update`] and its siblings).
    pub(super) fn new(query: Query<'s, M>, strength: LockStrength) -> Self {
        Locked {
            query,
            strength,
            _wait: PhantomData,
        }
    }

    fn with_policy<W: WaitPolicy>(self) -> Locked<'s, M, W> {
        Locked {
            query: self.query,
            strength: self.strength,
            _wait: PhantomData,
        }
    }

    /// Leaves out the rows another transaction has locked (`SKIP LOCKED`):
    /// the job-queue pattern, each worker taking a different row.
    pub fn skip_locked(self) -> Locked<'s, M, SkipLocked> {
        self.with_policy()
    }

    /// Fails at once instead of waiting for a row another transaction has
    /// locked (`NOWAIT`): the error has SQLSTATE 55P03, see
    /// [`Error::is_lock_not_available`].
    pub fn nowait(self) -> Locked<'s, M, NoWait> {
        self.with_policy()
    }
}

impl<'s, M: Model, W: WaitPolicy> Locked<'s, M, W> {
    /// Keeps the rows matching `expr` (`AND`-ed with earlier filters).
    pub fn filter(mut self, expr: Expr) -> Self {
        self.query = self.query.filter(expr);
        self
    }

    /// Orders by a column; later calls add tie-breakers.
    pub fn order_by(mut self, order: Order) -> Self {
        self.query = self.query.order_by(order);
        self
    }

    /// At most `n` rows (and so at most `n` locked).
    pub fn limit(mut self, n: i64) -> Self {
        self.query = self.query.limit(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: i64) -> Self {
        self.query = self.query.offset(n);
        self
    }

    /// The SQL this query runs as `all()`, for inspection.
    pub fn to_sql(&self) -> String {
        let mut statement = sql::select(M::table(), &self.query.parts);
        lock::push_clause::<W>(&mut statement, self.strength);
        statement.sql.into_owned()
    }

    /// Runs the locking `SELECT` in the session's transaction (starting it).
    fn rows(&mut self) -> Result<Vec<Row>> {
        let table = M::table();
        let mut statement = sql::select(table, &self.query.parts);
        lock::push_clause::<W>(&mut statement, self.strength);
        self.query.session.write(table, |client| {
            client.query(&statement.sql, &statement.params)
        })
    }

    /// Every matching row, locked until the transaction ends.
    ///
    /// # Errors
    ///
    /// The server's error (with [`NoWait`], a locked row is SQLSTATE 55P03,
    /// [`Error::is_lock_not_available`]); a decoding error naming the
    /// column.
    pub fn all(self) -> Result<Vec<M>> {
        let table = M::table();
        let mut statement = sql::select(table, &self.query.parts);
        lock::push_clause::<W>(&mut statement, self.strength);
        self.query.session.write(table, |client| {
            decode_each(client, &statement.sql, &statement.params, M::from_row)
        })?
    }

    /// The first matching row, if any, locked until the transaction ends.
    ///
    /// # Errors
    ///
    /// As [`Locked::all`].
    pub fn first(mut self) -> Result<Option<M>> {
        self.query.parts.limit = Some(1);
        Ok(self.all()?.pop())
    }

    /// The only matching row, locked until the transaction ends.
    ///
    /// # Errors
    ///
    /// [`Error::RowCount`] when no row or several rows match (all of them
    /// are locked all the same); as [`Locked::all`].
    pub fn one(mut self) -> Result<M> {
        let rows = self.rows()?;
        match rows.as_slice() {
            [row] => M::from_row(row),
            rows => Err(Error::RowCount(rows.len())),
        }
    }
}
