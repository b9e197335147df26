#![doc = include_str!("../docs/session.md")]

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, MapperError, Result};
use crate::mapper::Mapper;
use crate::model::{Model, Record, Table, DEFAULT_BIND};
use crate::replicas::ReadRoute;
use green_postgres::seam::{self, require_green};
use green_postgres::{self as pg, Client, Param, Row};

mod add_all;
mod atomic_batch;
mod bind_connection;
mod commit_with;
mod crud;
mod load_policy;
mod query;
mod report;
mod scope;
mod transaction;
mod transaction_span;

use bind_connection::{busy, connect};
use load_policy::RelatedLoads;
use scope::Scope;

pub use atomic_batch::AtomicBatch;
pub use load_policy::{LoadPolicy, N_PLUS_ONE_THRESHOLD};
pub use query::{Kind, Locked, Polymorphic, Query, QueryIter, WithRelated, DEFAULT_FETCH_SIZE};
pub use report::Report;
pub use transaction::AsOdmError;

/// A transaction scope: `add`, `get`, `delete`, `query`, `related`, raw SQL.
/// Obtain one with [`Mapper::session`] or [`Mapper::begin`]. A session
/// either owns its transaction or has joined the task's current one at a
/// savepoint (see [composition](crate::session#composing-transactions)).
pub struct Session {
    mapper: Mapper,
    /// The transaction: its connections and savepoint levels, shared with
    /// the sessions that joined it.
    scope: Arc<Scope>,
    /// The savepoint level the session sits at: 0 when it owns the
    /// transaction, the level of its savepoint when it joined one.
    level: usize,
    /// The savepoint level its statements run at (`level`, deeper inside
    /// [`Session::nested`]).
    depth: usize,
    /// Committed or rolled back (nothing left for `drop` to do).
    finished: bool,
    /// `related` loads per relation, and the N+1 policy.
    related_loads: RelatedLoads,
    /// Every statement runs as one autocommit statement on a shared
    /// connection ([`Mapper::autocommit`]).
    autocommit: bool,
    /// Where reads before the first write on a bind go.
    read_route: ReadRoute,
    /// Picks this session's replica of each bind ([`crate::replicas`]).
    replica_seed: usize,
    /// Inside [`Session::commit_with`]: the next ORM write carries the
    /// `COMMIT` behind it.
    commit_behind: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("joined", &(self.level > 0))
            .field("independent", &self.scope.independent)
            .field("depth", &self.depth)
            .field("autocommit", &self.autocommit)
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
    /// A session owning `scope`, a transaction of its own.
    fn owning(mapper: Mapper, scope: Arc<Scope>) -> Session {
        Session {
            read_route: mapper.read_route(),
            replica_seed: mapper.next_session_seed(),
            mapper,
            scope,
            level: 0,
            depth: 0,
            finished: false,
            related_loads: RelatedLoads::default(),
            autocommit: false,
            commit_behind: false,
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

    /// A session joining `scope` at a new savepoint level.
    fn joining(mapper: Mapper, scope: Arc<Scope>) -> Session {
        let level = scope.enter_level();
        Session {
            read_route: mapper.read_route(),
            replica_seed: mapper.next_session_seed(),
            mapper,
            scope,
            level,
            depth: level,
            finished: false,
            related_loads: RelatedLoads::default(),
            autocommit: false,
            commit_behind: false,
        }
    }

    /// Whether the session joined an outer transaction (at a savepoint)
    /// instead of owning one: its commit then only releases its savepoint.
    pub fn is_joined(&self) -> bool {
        self.level > 0
    }

    /// Whether every statement of this session commits on its own (a
    /// session of [`Mapper::autocommit`]).
    pub fn is_autocommit(&self) -> bool {
        self.autocommit
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

    /// Runs a write or raw statement on bind `label`, in the session's
    /// transaction at the current savepoint level (see
    /// [`BindConnection::run`]); the bind's connection is checked out on
    /// first use. In an autocommit session, as one autocommit statement on a
    /// shared connection (raw `sql` that would leave state on it is refused
    /// before anything is sent).
    fn run<R>(
        &mut self,
        label: &str,
        sql: Option<&str>,
        work: impl FnOnce(&Client) -> pg::Result<R>,
    ) -> Result<R> {
        self.run_ending(label, sql, work, false)
    }

    /// [`Session::run`]; with `commit_behind`, the statement is the
    /// transaction's last and `COMMIT` goes out behind it (see
    /// `session/commit_with.rs`).
    fn run_ending<R>(
        &mut self,
        label: &str,
        sql: Option<&str>,
        work: impl FnOnce(&Client) -> pg::Result<R>,
        commit_behind: bool,
    ) -> Result<R> {
        if self.autocommit {
            require_green("session")?;
            let engine =
                self.mapper
                    .engine(Some(label))
                    .ok_or_else(|| MapperError::UnknownBind {
                        label: label.to_owned(),
                    })?;
            let outcome = match sql {
                Some(sql) => seam::shared_sql(engine.pool(), "session statement", sql, work),
                None => seam::shared(engine.pool(), "session write", work),
            };
            return Ok(outcome?);
        }
        let depth = self.depth;
        let mapper = &self.mapper;
        let independent = self.scope.independent;
        self.scope.with_bind(
            label,
            || connect(mapper, label, independent),
            |conn| conn.run(depth, sql, work, commit_behind),
        )
    }

    /// Runs an ORM read of `table`: on the session's connection to the
    /// table's bind when it has one (inside the transaction once it has
    /// started; always for an independent session), else on the task's
    /// current transaction's connection to that bind when it has one (a
    /// session of its own inside a writing one sees its writes), else as one
    /// autocommit statement on a shared, pipelined connection of the bind's
    /// pool — or of one of its replicas with [`ReadRoute::Replica`] — so a
    /// session that only reads never holds a connection exclusively.
    ///
    /// `read` gets the client's [`ReadOnly`](pg::ReadOnly) methods: the
    /// ORM's reads are plain `SELECT`s it generates (no locking clause, no
    /// caller-written SQL), so on a shared connection they may share one
    /// `Sync` with other tasks' reads.
    pub(crate) fn read<R>(
        &mut self,
        table: &Table,
        read: impl FnOnce(pg::ReadOnly<'_>) -> pg::Result<R>,
    ) -> Result<R> {
        let read = |client: &Client| read(client.read_only());
        let label = table.bind_label();
        if self.scope.has_bind(label) || self.scope.independent {
            return self.run(label, None, read);
        }
        if let Some(current) = self.mapper.task_transaction(label) {
            return current.with_bind(
                label,
                || Err(busy(label)),
                |conn| conn.run(0, None, read, false),
            );
        }
        require_green("session")?;
        let engine = self.mapper.engine_for(table)?;
        let outcome = match self.read_route {
            ReadRoute::Primary => seam::shared(engine.pool(), "session read", read),
            ReadRoute::Replica => engine.read_on_replica(self.replica_seed, read),
        };
        Ok(outcome?)
    }

    /// Runs an ORM write of `table` on the session's connection to the
    /// table's bind, in the transaction; a bind the mapper lacks is an error
    /// naming the model.
    pub(crate) fn write<R>(
        &mut self,
        table: &Table,
        write: impl FnOnce(&Client) -> pg::Result<R>,
    ) -> Result<R> {
        self.write_ending(table, write, false)
    }

    /// [`Session::write`]; `last` says the statement is the last of an ORM
    /// write (`add`, `add_all`, `delete`, a query's `update`/`delete`): it
    /// carries the `COMMIT` when [`Session::commit_behind_next_write`] asked
    /// for it (see `session/commit_with.rs`).
    pub(crate) fn write_ending<R>(
        &mut self,
        table: &Table,
        write: impl FnOnce(&Client) -> pg::Result<R>,
        last: bool,
    ) -> Result<R> {
        let label = table.bind_label();
        if !self.scope.has_bind(label) {
            self.mapper.engine_for(table)?;
        }
        let commit_behind = last && self.take_commit_behind(label);
        self.run_ending(label, None, write, commit_behind)
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
        self.refuse_in_autocommit("set_isolation")?;
        let sql = format!("SET TRANSACTION ISOLATION LEVEL {}", level.sql());
        self.run(DEFAULT_BIND, None, |client| client.batch_execute(&sql))
    }

    /// Whether the transaction has started on the default bind (a write,
    /// raw SQL or [`Session::set_isolation`] ran).
    pub fn in_transaction(&self) -> bool {
        self.scope.in_transaction(Some(DEFAULT_BIND))
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
        self.refuse_in_autocommit("nested")?;
        let level = self.scope.enter_level();
        let outer = std::mem::replace(&mut self.depth, level);
        let result = work(self);
        self.depth = outer;
        self.scope.leave_level(level);
        let keep = result.is_ok();
        let ended = self.scope.for_each(|conn| conn.end_savepoint(level, keep));
        match (result, ended) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) => Err(e),
            (Err(e), _) => Err(e),
        }
    }

    /// [`MapperError::NoTransactionInAutocommit`] for `operation` in an
    /// autocommit session.
    fn refuse_in_autocommit(&self, operation: &'static str) -> Result<()> {
        if self.autocommit {
            return Err(MapperError::NoTransactionInAutocommit { operation }.into());
        }
        Ok(())
    }

    /// Commits the transaction on every bind used, and returns the
    /// connections to their pools. A [joined](Session::is_joined) session
    /// only releases its savepoint: its work is committed with the outer
    /// transaction, or discarded with it.
    ///
    /// # Errors
    ///
    /// [`Error::RolledBack`] when the transaction did not commit: a
    /// statement in it had failed (even if its error was ignored; the cause
    /// is that error), or the commit itself failed (a deferred constraint, a
    /// serialization failure 40001: the cause is that error, and
    /// [`Error::is_retryable`] follows it), or a joined session's connection
    /// was lost to a panic. With several binds, the binds
    /// after the first failure are rolled back; those before it stay
    /// committed. Another error (the connection broke) leaves that bind's
    /// outcome unknown. For a joined session, [`Error::RolledBack`] when its
    /// savepoint could not be kept (a statement inside it failed; the outer
    /// transaction goes on) and [`MapperError::TransactionEnded`] when the
    /// outer transaction has already ended.
    pub fn commit(mut self) -> Result<()> {
        self.finished = true;
        if self.is_joined() {
            return self.end_savepoint(true);
        }
        let (connections, complete) = self.scope.end();
        let mut failure = (!complete).then(|| Error::RolledBack { cause: None });
        for open in connections.into_iter().filter(|o| o.in_transaction) {
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
    /// connections to their pools; a [joined](Session::is_joined) session
    /// rolls back to its savepoint and the outer transaction goes on.
    ///
    /// # Errors
    ///
    /// The server's error; the connection is then discarded by its pool if
    /// it is still in a transaction.
    pub fn rollback(mut self) -> Result<()> {
        self.finished = true;
        if self.is_joined() {
            return self.end_savepoint(false);
        }
        self.rollback_all()
    }

    /// Ends a joined session's savepoint: released when `keep`, else rolled
    /// back to.
    fn end_savepoint(&mut self, keep: bool) -> Result<()> {
        let level = self.level;
        self.scope.leave_level(level);
        if self.scope.is_ended() {
            return Err(MapperError::TransactionEnded.into());
        }
        self.scope.for_each(|conn| conn.end_savepoint(level, keep))
    }

    fn rollback_all(&mut self) -> Result<()> {
        let mut failure = None;
        let (connections, _) = self.scope.end();
        for open in connections.into_iter().filter(|o| o.in_transaction) {
            if let Err(e) = open.rollback() {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Objects: writes, reads by key, relations and queries (their bodies are in
/// `session/crud.rs`, `session/add_all.rs` and `session/query.rs`).
impl Session {
    /// Inserts or updates `object` by primary key (an upsert) and reads the
    /// row back: generated keys and server defaults land in `object`. A
    /// child model writes its parent's row first. `None` fields with a
    /// `#[odm(default_fn = "...")]` are filled by their function first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidChoice`] for a code outside a `choices` list; the
    /// server's error (constraint violations, ...).
    pub fn add<M: Model>(&mut self, object: &mut M) -> Result<()> {
        self.add_object(object)
    }

    /// Adds every object as [`Session::add`] would (an insert, or an upsert
    /// when its key is set; `default_fn` fields filled first; a child
    /// model's parent rows first), with one multi-row statement per run of
    /// consecutive objects that write the same columns, up to
    /// 1000 rows and 65535 parameters a statement.
    /// Generated keys and server defaults are read back into each object,
    /// in order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidChoice`] for a code outside a `choices` list (before
    /// anything is written); the server's error (a constraint violation,
    /// or two objects with the same key in one statement); as with
    /// [`Session::add`], the transaction is then aborted.
    pub fn add_all<M: Model>(&mut self, objects: &mut [M]) -> Result<()> {
        self.add_all_objects(objects)
    }

    /// The model with primary key `key`, or `None`.
    ///
    /// # Errors
    ///
    /// The server's error; a decoding error naming the column.
    pub fn get<M: Model>(&mut self, key: impl Into<M::Key>) -> Result<Option<M>> {
        self.get_object(key)
    }

    /// Deletes `object`'s row (and, for a child model, its ancestors' rows)
    /// by primary key. Returns whether a row was deleted.
    ///
    /// # Errors
    ///
    /// [`MapperError::KeyNotSet`] when the object has no primary key yet; the
    /// server's error.
    pub fn delete<M: Model>(&mut self, object: &M) -> Result<bool> {
        self.delete_object(object)
    }

    /// The rows of `M` whose foreign key points at `owner` (the tasks of an
    /// employee), ordered by `M`'s primary key. Loading the same relation for
    /// many owners one by one is an N+1 pattern (see
    /// [`Session::set_load_policy`]); load them for all owners at once with
    /// [`Query::with_related`](crate::Query::with_related).
    ///
    /// # Errors
    ///
    /// [`MapperError::NPlusOne`] past the N+1 threshold under
    /// [`LoadPolicy::Raise`]; the errors of [`Table::foreign_key_to`] when
    /// `M` has no foreign key, or several, to `owner`'s table (or its
    /// ancestors); [`MapperError::ReferencedValueNotSet`] when the
    /// referenced value of `owner` is not set; the server's error.
    pub fn related<M: Model>(&mut self, owner: &dyn Record) -> Result<Vec<M>> {
        self.related_objects(owner)
    }

    /// A query over model `M`: `s.query::<Task>().filter(Task::DONE.eq(false)).all()`.
    pub fn query<M: Model>(&mut self) -> Query<'_, M> {
        Query::new(self)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.finished || self.scope.is_ended() {
            return;
        }
        if std::thread::panicking() {
            // No I/O while unwinding: the pool discards connections dropped
            // during a panic, and closing one rolls its transaction back.
            // A joined session cannot roll back to its savepoint, so the
            // whole transaction goes: the outer commit reports it.
            self.scope.abandon();
            return;
        }
        let outcome = if self.is_joined() {
            self.end_savepoint(false)
        } else {
            self.rollback_all()
        };
        if let Err(e) = outcome {
            log::warn!("rollback of a dropped session failed: {e}");
        }
    }
}
