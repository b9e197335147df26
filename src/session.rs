//! [`Session`]: one transaction scope over the mapper's binds. Objects are
//! plain structs: they stay usable after the session ends (pulsar-odm's
//! `expire_on_commit=False`).
//!
//! # When the transaction starts (what each shortcut guarantees)
//!
//! A session checks a connection out of a bind's pool at its first write on
//! that bind and keeps it until [`Session::commit`] / [`Session::rollback`]
//! or drop (which rolls back).
//!
//! * The transaction starts with the session's first **write** on the bind:
//!   `add`, `delete`, bulk `update`/`delete`, and every raw statement
//!   (`execute`, `query_raw`, ...), or [`Session::set_isolation`]. `BEGIN` is
//!   queued right before that statement without waiting for its answer, so
//!   it costs no round trip. Everything after it, reads included, runs in the
//!   transaction; rollback undoes all of it.
//! * ORM **reads** (`get`, queries, `related`) that come *before* the first
//!   write on a bind hold no connection: each runs as one autocommit
//!   statement on a shared, pipelined connection of the bind's pool (see
//!   [`Pool`](crate::Pool)'s shared mode), so read-only sessions of many
//!   tasks share a few connections instead of waiting for one each. Under
//!   PostgreSQL's default isolation, READ COMMITTED, every statement takes a
//!   fresh snapshot whether or not it is in a transaction, so these reads
//!   return exactly what they would inside it; a plain `SELECT` takes no row
//!   locks either way. A session that only reads therefore sends no `BEGIN`
//!   and no `COMMIT`: one round trip per query, like the raw driver.
//! * What differs: with `REPEATABLE READ`/`SERIALIZABLE` as the server's
//!   default, reads before the first write would each get their own
//!   snapshot. When reads must share the transaction's snapshot, start it
//!   first with [`Session::set_isolation`] (or any raw statement, e.g.
//!   `SELECT ... FOR UPDATE` through `query_raw`).
//! * `COMMIT` and `ROLLBACK` wait for the server's answer, so a commit error
//!   (e.g. a serialization failure, 40001) is always reported.
//!
//! # When a statement fails
//!
//! A statement that fails inside the transaction aborts it on the server,
//! even when the caller ignores the error: PostgreSQL then ignores every
//! later command and answers `COMMIT` with `ROLLBACK`. The session keeps
//! the first such error and tells the truth about it:
//!
//! * the next statement on that bind is refused without being sent, with
//!   [`Error::TransactionAborted`] naming the first error (only a raw
//!   `ROLLBACK ...` passes);
//! * [`Session::commit`] (and so [`Mapper::begin`]) returns
//!   [`Error::RolledBack`] with the first error as its cause: nothing of the
//!   transaction is stored. An error of the commit itself (a deferred
//!   constraint, a serialization failure) is [`Error::RolledBack`] with that
//!   error, so callers have one thing to match, and
//!   [`Error::is_retryable`] follows the cause;
//! * inside [`Session::nested`], a failure is undone with the savepoint:
//!   when `work` returns `Err`, the savepoint is rolled back to and the
//!   transaction is healthy again; when `work` swallowed the error and
//!   returned `Ok`, the savepoint cannot be kept, so it is rolled back to
//!   all the same and `nested` returns [`Error::RolledBack`].
//!
//! Sessions spanning several binds run one transaction per bind; the commits
//! are not atomic across binds (no two-phase commit).

use std::fmt;

use crate::mapper::{check_context, Mapper, DEFAULT_BIND};
use crate::model::{Model, Record, Table};
use crate::pg::{Client, Param, Row};
use crate::query::sql;
use crate::query::Query;
use crate::{Error, Result};

mod bind_connection;

use bind_connection::BindConnection;

/// How many times one relation may be loaded with [`Session::related`] in a
/// session before it counts as an N+1 pattern.
pub const N_PLUS_ONE_THRESHOLD: usize = 10;

/// What a session does when it sees an N+1 pattern: the same relation loaded
/// with [`Session::related`] once per owner, more than
/// [`N_PLUS_ONE_THRESHOLD`] times. (On coroutines a load in a loop simply
/// blocks and works — there is no "MissingGreenlet" — so the cost to watch
/// is the round trips.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadPolicy {
    /// Load silently.
    Allow,
    /// Load, and log one warning per relation naming it (the default).
    #[default]
    Warn,
    /// Refuse the load past the threshold with [`Error::Mapper`].
    Raise,
}

/// A transaction scope: `add`, `get`, `delete`, `query`, `related`, raw SQL.
/// Obtain one with [`Mapper::session`] or [`Mapper::begin`].
pub struct Session {
    mapper: Mapper,
    open: Vec<BindConnection>,
    /// Current savepoint nesting level (0 outside `nested`).
    depth: usize,
    /// The N+1 policy.
    load_policy: LoadPolicy,
    /// `related` calls per (table, foreign key column).
    related_calls: Vec<((&'static str, &'static str), usize)>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let binds: Vec<&str> = self.open.iter().map(|o| o.label.as_str()).collect();
        f.debug_struct("Session")
            .field("open_binds", &binds)
            .field("depth", &self.depth)
            .finish()
    }
}

/// Transaction isolation levels for [`Session::set_isolation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// PostgreSQL's default: each statement sees data committed before it
    /// began.
    ReadCommitted,
    /// One snapshot for the whole transaction.
    RepeatableRead,
    /// Repeatable read plus detection of serialization anomalies (retry
    /// with [`Mapper::begin_with_retry`]).
    Serializable,
}

impl Isolation {
    fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

impl Session {
    pub(crate) fn new(mapper: Mapper) -> Session {
        Session {
            mapper,
            open: Vec::new(),
            depth: 0,
            load_policy: LoadPolicy::default(),
            related_calls: Vec::new(),
        }
    }

    /// Sets what happens when [`Session::related`] loads the same relation
    /// row by row more than [`N_PLUS_ONE_THRESHOLD`] times.
    pub fn set_load_policy(&mut self, policy: LoadPolicy) {
        self.load_policy = policy;
    }

    /// Counts a `related` load of `table.column` and applies the policy.
    fn note_related(
        &mut self,
        model: &str,
        table: &'static str,
        column: &'static str,
    ) -> Result<()> {
        let key = (table, column);
        let calls = match self.related_calls.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.related_calls.push((key, 1));
                1
            }
        };
        if calls <= N_PLUS_ONE_THRESHOLD {
            return Ok(());
        }
        let message = format!(
            "n+1 loading: related::<{model}> through `{table}.{column}` ran {calls} times in one session; \
             load the rows with one query filtering `{column}` with in_"
        );
        match self.load_policy {
            LoadPolicy::Allow => Ok(()),
            LoadPolicy::Warn => {
                if calls == N_PLUS_ONE_THRESHOLD + 1 {
                    log::warn!("{message}");
                }
                Ok(())
            }
            LoadPolicy::Raise => Err(Error::Mapper(message)),
        }
    }

    /// The mapper this session belongs to.
    pub fn mapper(&self) -> &Mapper {
        &self.mapper
    }

    /// The session's connection to bind `label`, checked out on first use.
    fn bind(&mut self, label: &str) -> Result<&mut BindConnection> {
        let index = match self.open.iter().position(|o| o.label == label) {
            Some(i) => i,
            None => {
                check_context("session")?;
                let engine = self.mapper.engine(Some(label)).ok_or_else(|| {
                    Error::Mapper(format!("bind `{label}` is not a bind of this mapper"))
                })?;
                let conn = engine.pool().acquire()?;
                self.open.push(BindConnection::new(label, conn));
                self.open.len() - 1
            }
        };
        Ok(&mut self.open[index])
    }

    /// Runs a write or raw statement on bind `label`, in the session's
    /// transaction at the current savepoint level (see
    /// [`BindConnection::run`]).
    fn run<R>(
        &mut self,
        label: &str,
        sql: Option<&str>,
        work: impl FnOnce(&Client) -> Result<R>,
    ) -> Result<R> {
        let depth = self.depth;
        self.bind(label)?.run(depth, sql, work)
    }

    /// Runs an ORM read of `table`: on the session's connection to the
    /// table's bind when it has one (inside the transaction once it has
    /// started), else as one autocommit statement on a shared, pipelined
    /// connection of the bind's pool, so a session that only reads never
    /// holds a connection exclusively.
    pub(crate) fn read<R>(
        &mut self,
        table: &Table,
        read: impl FnOnce(&Client) -> Result<R>,
    ) -> Result<R> {
        let label = table.bind_label();
        if self.open.iter().any(|o| o.label == label) {
            return self.run(label, None, read);
        }
        check_context("session")?;
        self.mapper
            .engine_for(table)?
            .pool()
            .shared("session read", read)
    }

    /// Runs an ORM write of `table` on the session's connection to the
    /// table's bind, in the transaction; a bind the mapper lacks is an error
    /// naming the model.
    pub(crate) fn write<R>(
        &mut self,
        table: &Table,
        write: impl FnOnce(&Client) -> Result<R>,
    ) -> Result<R> {
        let label = table.bind_label();
        if !self.open.iter().any(|o| o.label == label) {
            self.mapper.engine_for(table)?;
        }
        self.run(label, None, write)
    }

    /// Starts the transaction on the default bind now with an isolation
    /// level (`SET TRANSACTION ISOLATION LEVEL ...` right after `BEGIN`), so
    /// that every later statement, reads included, runs in it. Call it
    /// before anything else in the session.
    ///
    /// # Errors
    ///
    /// The server's error 25001 when the transaction has already run a
    /// statement.
    pub fn set_isolation(&mut self, level: Isolation) -> Result<()> {
        let sql = format!("SET TRANSACTION ISOLATION LEVEL {}", level.sql());
        self.run(DEFAULT_BIND, None, |client| client.batch_execute(&sql))
    }

    /// Whether the transaction has started on the default bind (a write,
    /// raw SQL or [`Session::set_isolation`] ran).
    pub fn in_transaction(&self) -> bool {
        self.open
            .iter()
            .any(|o| o.label == DEFAULT_BIND && o.in_transaction)
    }

    /// Inserts or updates `object` by primary key (an upsert) and reads the
    /// row back: generated keys and server defaults land in `object`. A
    /// child model writes its parent's row first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidChoice`] for a code outside a `choices` list; the
    /// server's error (constraint violations, ...).
    pub fn add<M: Model>(&mut self, object: &mut M) -> Result<()> {
        self.add_record(object)
    }

    fn add_record(&mut self, record: &mut dyn Record) -> Result<()> {
        if let Some(parent) = record.parent_record_mut() {
            self.add_record(parent)?;
        }
        record.validate()?;
        let table = record.record_table();
        let row = {
            let values = record.values();
            let statement = sql::upsert(table, &values);
            self.write(table, |client| {
                client.query_one(&statement.sql, &statement.params)
            })?
        };
        record.read_back(&row)
    }

    /// The model with primary key `key`, or `None`.
    ///
    /// # Errors
    ///
    /// The server's error; a decoding error naming the column.
    pub fn get<M: Model>(&mut self, key: impl Into<M::Key>) -> Result<Option<M>> {
        let key: M::Key = key.into();
        let table = M::table();
        let statement = sql::get_by_key(table, &key);
        let row = self.read(table, |client| {
            client.query_opt(&statement.sql, &statement.params)
        })?;
        row.map(|r| M::from_row(&r)).transpose()
    }

    /// Deletes `object`'s row (and, for a child model, its ancestors' rows)
    /// by primary key. Returns whether a row was deleted.
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] when the object has no primary key yet; the
    /// server's error.
    pub fn delete<M: Model>(&mut self, object: &M) -> Result<bool> {
        let table = M::table();
        let key = object.key_param().ok_or_else(|| {
            Error::Mapper(format!(
                "cannot delete a `{}` whose primary key `{}` is not set",
                table.model,
                table.primary_key().name
            ))
        })?;
        let mut deleted = None;
        let mut lineage = table.lineage();
        lineage.reverse();
        for t in lineage {
            let statement = sql::delete_by_key(t, key);
            let n = self.write(t, |client| {
                client.execute(&statement.sql, &statement.params)
            })?;
            deleted.get_or_insert(n);
        }
        Ok(deleted.unwrap_or(0) > 0)
    }

    /// A query over model `M`: `s.query::<Task>().filter(Task::DONE.eq(false)).all()`.
    pub fn query<M: Model>(&mut self) -> Query<'_, M> {
        Query::new(self)
    }

    /// The rows of `M` whose foreign key points at `owner` (the tasks of an
    /// employee), ordered by `M`'s primary key. Loading the same relation for
    /// many owners one by one is an N+1 pattern; see
    /// [`Session::set_load_policy`].
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] past the N+1 threshold under [`LoadPolicy::Raise`].
    /// [`Error::Mapper`] when `M` has no foreign key, or several, to
    /// `owner`'s table (or its ancestors), or when the referenced value of
    /// `owner` is not set; the server's error.
    pub fn related<M: Model>(&mut self, owner: &dyn Record) -> Result<Vec<M>> {
        let table = M::table();
        // (column of M's lineage, the owner's record holding the referenced column)
        let mut found = Vec::new();
        for t in table.lineage() {
            for c in t.columns.iter() {
                let Some(fk) = c.foreign_key else { continue };
                if c.primary_key && t.parent.is_some() {
                    continue; // the inheritance key, not a relation
                }
                let mut r: Option<&dyn Record> = Some(owner);
                while let Some(rec) = r {
                    if rec.record_table().name == fk.table {
                        found.push((t, c, rec, fk.column));
                        break;
                    }
                    r = rec.parent_record();
                }
            }
        }
        let owner_table = owner.record_table();
        let (t, c, rec, referenced) = match found.len() {
            1 => found.remove(0),
            0 => {
                return Err(Error::Mapper(format!(
                    "model `{}` has no foreign key to `{}`",
                    table.model, owner_table.name
                )))
            }
            _ => {
                return Err(Error::Mapper(format!(
                    "model `{}` has several foreign keys to `{}`; filter with a query instead",
                    table.model, owner_table.name
                )))
            }
        };
        let rec_table = rec.record_table();
        let position = rec_table.column_index(referenced).ok_or_else(|| {
            Error::Mapper(format!(
                "foreign key `{}.{}` references `{}.{referenced}`, which does not exist",
                t.name, c.name, rec_table.name
            ))
        })?;
        let values = rec.values();
        let value = values[position].ok_or_else(|| {
            Error::Mapper(format!(
                "`{}.{referenced}` of the owner is not set",
                rec_table.name
            ))
        })?;
        self.note_related(table.model, t.name, c.name)?;
        let statement = sql::select_related(table, t, c, value);
        let rows = self.read(table, |client| {
            client.query(&statement.sql, &statement.params)
        })?;
        rows.iter().map(M::from_row).collect()
    }

    /// Runs raw SQL with bound parameters on the default bind; returns the
    /// number of rows affected.
    ///
    /// # Errors
    ///
    /// [`Error::TransactionAborted`], without sending `sql`, when an earlier
    /// statement of the transaction failed (see the
    /// [module docs](crate::session)); the server's error.
    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.run(DEFAULT_BIND, Some(sql), |client| {
            client.execute(sql, params)
        })
    }

    /// Runs a raw query with bound parameters on the default bind.
    ///
    /// # Errors
    ///
    /// The server's error.
    pub fn query_raw(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.run(DEFAULT_BIND, Some(sql), |client| client.query(sql, params))
    }

    /// Runs a raw query with bound parameters on bind `label`.
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] for an unknown bind; the server's error.
    pub fn query_raw_on(
        &mut self,
        label: &str,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>> {
        self.run(label, Some(sql), |client| client.query(sql, params))
    }

    /// Runs raw SQL (one or more statements, no parameters, simple query
    /// protocol) on bind `label`.
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] for an unknown bind; the server's error.
    pub fn batch_execute_on(&mut self, label: &str, sql: &str) -> Result<()> {
        self.run(label, Some(sql), |client| client.batch_execute(sql))
    }

    /// Runs `work` inside a savepoint: its changes are kept when it returns
    /// `Ok` and undone (while the session's transaction goes on) when it
    /// returns `Err`. Nests to any depth. A statement that failed inside
    /// `work` is undone with the savepoint even when `work` ignored its error
    /// and returned `Ok`: the transaction is healthy again after `nested`.
    ///
    /// # Errors
    ///
    /// `work`'s error; [`Error::RolledBack`] (cause: the failed statement's
    /// error) when `work` returned `Ok` but a statement inside it failed, so
    /// nothing it did is kept; the server's error from the savepoint
    /// commands.
    pub fn nested<T, F>(&mut self, work: F) -> Result<T>
    where
        F: FnOnce(&mut Session) -> Result<T>,
    {
        self.depth += 1;
        let level = self.depth;
        let result = work(self);
        self.depth = level - 1;
        let mut failure = None;
        for open in self.open.iter_mut() {
            if let Err(e) = open.end_savepoint(level, result.is_ok()) {
                failure.get_or_insert(e);
            }
        }
        match (result, failure) {
            (Ok(value), None) => Ok(value),
            (Ok(_), Some(e)) => Err(e),
            (Err(e), _) => Err(e),
        }
    }

    /// Commits the transaction on every bind used, and returns the
    /// connections to their pools.
    ///
    /// # Errors
    ///
    /// [`Error::RolledBack`] when the transaction did not commit: a
    /// statement in it had failed (even if its error was ignored; the cause
    /// is that error), or the commit itself failed (a deferred constraint, a
    /// serialization failure 40001: the cause is that error, and
    /// [`Error::is_retryable`] follows it). With several binds, the binds
    /// after the first failure are rolled back; those before it stay
    /// committed. Another error (the connection broke) leaves that bind's
    /// outcome unknown.
    pub fn commit(mut self) -> Result<()> {
        let mut failure = None;
        for open in self.open.drain(..).filter(|o| o.in_transaction) {
            let outcome = if failure.is_none() {
                open.commit()
            } else {
                open.rollback()
            };
            if let Err(e) = outcome {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Rolls back the transaction on every bind used and returns the
    /// connections to their pools.
    ///
    /// # Errors
    ///
    /// The server's error; the connection is then discarded by its pool if
    /// it is still in a transaction.
    pub fn rollback(mut self) -> Result<()> {
        self.rollback_all()
    }

    fn rollback_all(&mut self) -> Result<()> {
        let mut failure = None;
        for open in self.open.drain(..).filter(|o| o.in_transaction) {
            if let Err(e) = open.rollback() {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.open.iter().any(|o| o.in_transaction) {
            return;
        }
        if std::thread::panicking() {
            // No I/O while unwinding: the pool discards connections dropped
            // during a panic, and closing one rolls its transaction back.
            self.open.clear();
            return;
        }
        if let Err(e) = self.rollback_all() {
            log::warn!("rollback of a dropped session failed: {e}");
        }
    }
}
