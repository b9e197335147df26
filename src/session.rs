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
//!   With [`ReadRoute::Replica`](crate::ReadRoute) these reads go to one of
//!   the bind's read replicas instead (see [`crate::replicas`] for what a
//!   replica may lag and how to read your own writes).
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

use crate::context::require_green;
use crate::mapper::Mapper;
use crate::model::{Table, DEFAULT_BIND};
use crate::pg::{Client, Param, Row};
use crate::{MapperError, ReadRoute, Result};

#[cfg(doc)]
use crate::Error;

mod bind_connection;
mod crud;
mod load_policy;
mod query;

use bind_connection::BindConnection;
use load_policy::RelatedLoads;

pub use load_policy::{LoadPolicy, N_PLUS_ONE_THRESHOLD};
pub use query::Query;

/// A transaction scope: `add`, `get`, `delete`, `query`, `related`, raw SQL.
/// Obtain one with [`Mapper::session`] or [`Mapper::begin`].
pub struct Session {
    mapper: Mapper,
    open: Vec<BindConnection>,
    /// Current savepoint nesting level (0 outside `nested`).
    depth: usize,
    /// `related` loads per relation, and the N+1 policy.
    related_loads: RelatedLoads,
    /// Where reads before the first write on a bind go.
    read_route: ReadRoute,
    /// Picks this session's replica of each bind ([`crate::replicas`]).
    replica_seed: usize,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let binds: Vec<&str> = self.open.iter().map(|o| o.label.as_str()).collect();
        f.debug_struct("Session")
            .field("open_binds", &binds)
            .field("depth", &self.depth)
            .field("read_route", &self.read_route)
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
    fn new(mapper: Mapper) -> Session {
        Session {
            read_route: mapper.read_route(),
            replica_seed: mapper.next_session_seed(),
            mapper,
            open: Vec::new(),
            depth: 0,
            related_loads: RelatedLoads::default(),
        }
    }

    /// Sets where this session's ORM reads before its first write on a bind
    /// go; it starts with the mapper's [`Mapper::read_route`]. See
    /// [`crate::replicas`] for what a replica may lag.
    pub fn set_read_route(&mut self, route: ReadRoute) {
        self.read_route = route;
    }

    /// Where this session's ORM reads before its first write go.
    pub fn read_route(&self) -> ReadRoute {
        self.read_route
    }

    /// Pins the session to the primary: every read goes to the bind's
    /// primary, so it sees everything committed there (e.g. the writes of
    /// the session that just committed). The same as
    /// `set_read_route(ReadRoute::Primary)`.
    pub fn pin_to_primary(&mut self) {
        self.set_read_route(ReadRoute::Primary);
    }

    /// Sets what happens when [`Session::related`] loads the same relation
    /// row by row more than [`N_PLUS_ONE_THRESHOLD`] times.
    pub fn set_load_policy(&mut self, policy: LoadPolicy) {
        self.related_loads.policy = policy;
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
                require_green("session")?;
                let engine =
                    self.mapper
                        .engine(Some(label))
                        .ok_or_else(|| MapperError::UnknownBind {
                            label: label.to_owned(),
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
    /// connection of the bind's pool — or of one of its replicas with
    /// [`ReadRoute::Replica`] — so a session that only reads never holds a
    /// connection exclusively.
    pub(crate) fn read<R>(
        &mut self,
        table: &Table,
        read: impl FnOnce(&Client) -> Result<R>,
    ) -> Result<R> {
        let label = table.bind_label();
        if self.open.iter().any(|o| o.label == label) {
            return self.run(label, None, read);
        }
        require_green("session")?;
        let engine = self.mapper.engine_for(table)?;
        match self.read_route {
            ReadRoute::Primary => engine.pool().shared("session read", read),
            ReadRoute::Replica => engine.read_on_replica(self.replica_seed, read),
        }
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
    /// [`MapperError::UnknownBind`] for an unknown bind; the server's error.
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
    /// [`MapperError::UnknownBind`] for an unknown bind; the server's error.
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

/// The entry points to sessions.
impl Mapper {
    /// A new session. No connection is taken until the first statement; the
    /// transaction starts with the first write (see [`crate::session`] for
    /// exactly what that guarantees). Dropped without [`Session::commit`],
    /// it rolls back.
    ///
    /// # Errors
    ///
    /// The wrong-context error (`acquire in main greenlet: session ...`) off
    /// a green worker.
    pub fn session(&self) -> Result<Session> {
        require_green("session")?;
        Ok(Session::new(self.clone()))
    }

    /// Runs `work` in a new session's transaction: commits when it returns
    /// `Ok`, rolls back when it returns `Err` (that error is returned) or
    /// panics (the panic continues after the rollback).
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker (before `work` runs);
    /// `work`'s error; [`Error::RolledBack`] when `work` returned `Ok` but
    /// nothing was committed: a statement inside it failed and its error was
    /// ignored (the cause is that error), or the commit itself failed (a
    /// deferred constraint, a serialization failure). See
    /// [`Session::commit`].
    pub fn begin<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut Session) -> Result<T>,
    {
        let mut session = self.session()?;
        match work(&mut session) {
            Ok(value) => {
                session.commit()?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = session.rollback() {
                    log::warn!("rollback after a failed transaction failed too: {rollback}");
                }
                Err(e)
            }
        }
    }

    /// Like [`Mapper::begin`], but runs `work` again in a fresh transaction
    /// when it fails with a serialization failure (40001) or a deadlock
    /// (40P01), up to `attempts` runs in all — whether `work` returned the
    /// error or the commit reported it ([`Error::RolledBack`] with such a
    /// cause).
    ///
    /// # Errors
    ///
    /// As [`Mapper::begin`]; after the last attempt, its retryable error.
    pub fn begin_with_retry<T, F>(&self, attempts: usize, mut work: F) -> Result<T>
    where
        F: FnMut(&mut Session) -> Result<T>,
    {
        let attempts = attempts.max(1);
        let mut run = 1;
        loop {
            match self.begin(&mut work) {
                Err(e) if e.is_retryable() && run < attempts => {
                    log::debug!("retrying transaction after {e} (attempt {run} of {attempts})");
                    run += 1;
                }
                result => return result,
            }
        }
    }
}
