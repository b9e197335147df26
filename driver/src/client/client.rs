//! [`Client`]: one server connection and the query API.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::client::cancel_token::CancelToken;
use crate::client::copy::{CopyInWriter, CopyOutReader};
use crate::client::host_choice::{connect_any, still_fits};
use crate::client::notifications::Notifications;
use crate::client::observe::observe_statement;
use crate::client::read_only::ReadOnly;
use crate::client::transaction::Transaction;
use crate::config::Config;
use crate::connection::connection::Connection;
use crate::error::context::require_green;
use crate::error::{DbError, Error};
use crate::net::open_socket::target_of;
use crate::request::atomic_batch::BatchAnswer;
use crate::request::prepared::Prepared;
use crate::request::request::{self, Access};
use crate::request::row_sink::{EachRow, RowSink};
use crate::request::simple_query;
use crate::startup::connect::open_and_start;
use crate::wire::bind_execute::Param;
use crate::wire::row::Row;
use crate::wire::statement::Statement;
use crate::wire::transaction_status::TransactionStatus;

/// One server connection.
///
/// `Send + Sync`, and the query methods take `&self`: several green tasks
/// may share one `Client`, and their requests are pipelined (written
/// together, answered in order). Each request ends with its own `Sync`, so
/// an error in one never affects another — reads sent through
/// [`Client::read_only`] may share one, with the same guarantee (see
/// [`ReadOnly`]). A [`Transaction`] needs
/// `&mut Client` and so has the connection to itself.
///
/// Every method that talks to the server must run on a coroutine (a green
/// worker); elsewhere it returns [`Error::WrongContext`] at once.
///
/// A thin face: the inner connection carries the socket, the settings and
/// the notification queue; the request engine talks to the server, and its
/// `Prepared` keeps the statement caches and runs statements through
/// them (prepared once, prepared again when the server forgot them). The
/// client checks the context and delegates.
pub struct Client {
    conn: Arc<Connection>,
    /// The statement caches, and running statements through them.
    prepared: Prepared,
    /// The next statement run by SQL text carries a `COMMIT` behind it
    /// ([`crate::seam::commit_behind_next_statement`]).
    commit_behind: AtomicBool,
    /// The `COMMIT` sent behind a statement, its answer not yet read.
    commit_sent: parking_lot::Mutex<Option<simple_query::TransactionEnd>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.prepared.id())
            .field("backend_pid", &self.conn.process_id)
            .field("closed", &self.conn.is_closed())
            .field("config", self.conn.config())
            .finish()
    }
}

impl Client {
    /// Opens a connection: socket, startup and authentication. With
    /// several hosts, or a `target_session_attrs` other than `any`, tries
    /// the hosts in turn until one fits ([`Config::hosts`]).
    pub fn connect(config: &Config) -> Result<Client, Error> {
        require_green("connect")?;
        connect_any(config, Client::connect_one)
    }

    /// Whether this connection still satisfies the `target_session_attrs`
    /// it was opened with, as far as the server's reports tell (a standby
    /// promoted under a `standby` connection reports `in_hot_standby=off`);
    /// the pool discards a connection that no longer does.
    pub fn fits_target_session_attrs(&self) -> bool {
        still_fits(self)
    }

    /// Opens a connection to the configuration's first host.
    fn connect_one(config: &Config) -> Result<Client, Error> {
        // `connect_timeout` bounds the whole connect: host-name lookup, TCP
        // handshake and startup with authentication. I/O failures before
        // the first ReadyForQuery are connect errors naming the server.
        let as_connect_error = |e: Error| match e {
            Error::Io(source) => Error::Connect {
                target: target_of(config),
                source,
            },
            other => other,
        };
        let deadline = config.connect_timeout().map(|t| Instant::now() + t);
        let (socket, state) = open_and_start(config, deadline).map_err(as_connect_error)?;
        socket
            .set_timeouts(None)
            .map_err(|e| as_connect_error(e.into()))?;
        let (read, write, shutdown, placement) = socket.split()?;
        let conn = Connection::start(read, write, shutdown, placement, state, config)?;
        Ok(Client {
            conn,
            prepared: Prepared::new(config),
            commit_behind: AtomicBool::new(false),
            commit_sent: parking_lot::Mutex::new(None),
        })
    }

    /// The settings this connection was opened with.
    pub fn config(&self) -> &Config {
        self.conn.config()
    }

    /// Runs one or more statements separated by `;` with the simple query
    /// protocol (no parameters, results discarded).
    pub fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        require_green("batch_execute")?;
        self.observed(sql, |_| None, || self.simple_query(sql))?;
        Ok(())
    }

    /// Runs `run`, the statement `sql`, observed (statement hook, and a
    /// span with the `tracing` feature; see `client::observe`).
    fn observed<T>(
        &self,
        sql: &str,
        rows: impl FnOnce(&T) -> Option<u64>,
        run: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        observe_statement(self.conn.config().dbname(), sql, rows, run)
    }

    /// The simple query protocol (see [`Client::batch_execute`]); returns
    /// the command tag of the last statement that completed (`COMMIT`,
    /// `ROLLBACK`, ...; empty when none did).
    pub(crate) fn simple_query(&self, sql: &str) -> Result<String, Error> {
        let done = simple_query::simple_query(&self.conn, sql)?;
        if done.forgot_statements {
            self.prepared.forget_statements();
        }
        Ok(done.tag)
    }

    /// Queues one simple statement without waiting for its answer (see
    /// [`request::queue_simple_statement`]): how a transaction dropped off
    /// a coroutine queues its `ROLLBACK`.
    pub(crate) fn queue_simple_statement(&self, sql: &str) -> Result<(), Error> {
        simple_query::queue_simple_statement(&self.conn, sql)
    }

    /// Queues one simple statement to go out with this client's next
    /// request (see [`request::queue_simple_statement_ahead`]): how a
    /// session's `BEGIN` and `SAVEPOINT` ride in front of its statement.
    pub(crate) fn queue_simple_statement_ahead(&self, sql: &str) -> Result<(), Error> {
        simple_query::queue_simple_statement_ahead(&self.conn, sql)
    }

    /// Sends a statement that ends the transaction (`COMMIT`) without
    /// waiting for its answer (see [`request::send_transaction_end`]).
    pub(crate) fn send_transaction_end(
        &self,
        sql: &'static str,
    ) -> Result<simple_query::TransactionEnd, Error> {
        simple_query::send_transaction_end(&self.conn, sql)
    }

    /// The connection itself (for the pool's clean-up of a checkout whose
    /// task was abandoned).
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// Marks this client as used by one task only (the pool's exclusive
    /// checkout) or not: see `Connection::set_exclusive`.
    pub(crate) fn set_exclusive(&self, exclusive: bool) {
        self.conn.set_exclusive(exclusive);
    }

    /// Whether the server may still be inside a transaction once it has
    /// read every request queued so far: the last answer said so, or a
    /// `BEGIN` is queued to go out with the next request. A `COMMIT` in
    /// flight does not count as ended here (its answer is what ends it),
    /// so a connection given back before that answer is rolled back, which
    /// also waits for it.
    pub(crate) fn may_be_in_transaction(&self) -> bool {
        self.conn.answered_transaction_status() != TransactionStatus::Idle
            || self.conn.has_deferred_request()
    }

    /// Checks that the server still answers: an empty query, which must be
    /// answered within `timeout` (and within `query_timeout` when that is
    /// shorter); otherwise the connection is closed at once and
    /// [`Error::QueryTimeout`] returned. The pool runs it before it hands
    /// out a connection that sat idle.
    pub fn check_alive(&self, timeout: std::time::Duration) -> Result<(), Error> {
        require_green("check_alive")?;
        let timeout = self
            .config()
            .query_timeout()
            .map_or(timeout, |limit| limit.min(timeout));
        request::check_alive(&self.conn, timeout)
    }

    /// Runs a statement and returns the number of rows it affected.
    pub fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        require_green("execute")?;
        self.observed(
            sql,
            |n| Some(*n),
            || self.run_sql(sql, params, RowSink::Discard, Access::ReadWrite),
        )
    }

    /// Runs a query and returns its rows.
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.query_as(sql, params, Access::ReadWrite)
    }

    /// Runs a query that must return exactly one row
    /// ([`Error::RowCount`] otherwise).
    pub fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, Error> {
        exactly_one(self.query(sql, params)?)
    }

    /// Runs a query that returns at most one row ([`Error::RowCount`] when
    /// it returns more).
    pub fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Error> {
        at_most_one(self.query(sql, params)?)
    }

    /// The query methods for statements the caller promises change nothing
    /// — plain `SELECT`s — which may then share their `Sync` with other
    /// tasks' reads on a busy pipelined connection, so the server flushes
    /// once per group instead of once per statement (see [`ReadOnly`] for
    /// the exact guarantee, and `coalesce_reads` to turn it off).
    pub fn read_only(&self) -> ReadOnly<'_> {
        ReadOnly::new(self)
    }

    /// [`Client::query`] with what the statement may do.
    pub(crate) fn query_as(
        &self,
        sql: &str,
        params: &[Param<'_>],
        access: Access,
    ) -> Result<Vec<Row>, Error> {
        require_green("query")?;
        self.observed(
            sql,
            |rows: &Vec<Row>| Some(rows.len() as u64),
            || {
                let mut rows = Vec::new();
                self.run_sql(sql, params, RowSink::Collect(&mut rows), access)?;
                Ok(rows)
            },
        )
    }

    /// Runs a query and gives each row to `on_row` as soon as it is
    /// decoded, while the rest of the answer is still arriving; returns the
    /// number of rows. No row is kept: a caller that builds its own values
    /// from the rows holds those alone, never the rows and the values of a
    /// whole large result at once (as collecting [`Client::query`]'s rows
    /// first would). [`ReadOnly::for_each_row`] is the same for a read.
    ///
    /// An error from `on_row` stops the delivery: the rest of the answer
    /// is read and dropped, and that error is the answer. When the server
    /// answers with an error after some rows, those rows have already been
    /// given to `on_row`; the answer is the server's error.
    pub fn for_each_row<F>(&self, sql: &str, params: &[Param<'_>], on_row: F) -> Result<u64, Error>
    where
        F: FnMut(Row) -> Result<(), Error>,
    {
        self.for_each_row_as(sql, params, on_row, Access::ReadWrite)
    }

    /// [`Client::for_each_row`] with what the statement may do.
    pub(crate) fn for_each_row_as<F>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        on_row: F,
        access: Access,
    ) -> Result<u64, Error>
    where
        F: FnMut(Row) -> Result<(), Error>,
    {
        require_green("query")?;
        self.observed(
            sql,
            |n| Some(*n),
            || {
                let mut each = EachRow::new(on_row);
                self.run_sql(sql, params, RowSink::Collect(&mut each), access)?;
                Ok(each.delivered())
            },
        )
    }

    /// Runs the statement `sql` through the statement cache — with a
    /// `COMMIT` behind it in the same write when
    /// [`Client::set_commit_behind`] asked for it and a healthy transaction
    /// is open (a named statement only; an unnamed one runs alone and the
    /// `COMMIT` is left to the caller).
    fn run_sql(
        &self,
        sql: &str,
        params: &[Param<'_>],
        rows: RowSink<'_>,
        access: Access,
    ) -> Result<u64, Error> {
        let in_transaction = || {
            self.conn.transaction_status() == TransactionStatus::InTransaction
                || self.conn.has_deferred_request()
        };
        // A plain load first: on a client many tasks share, an unconditional
        // swap would write the flag's cache line on every statement.
        let armed = self.commit_behind.load(Ordering::Relaxed)
            && self.commit_behind.swap(false, Ordering::Relaxed);
        if !armed || !in_transaction() {
            return self.prepared.run_sql(&self.conn, sql, params, rows, access);
        }
        let statement = self.prepared.prepare(&self.conn, sql)?;
        if statement.is_unnamed() {
            return self
                .prepared
                .run_statement(&self.conn, &statement, params, rows, access);
        }
        let (outcome, end) = simple_query::run_then_commit(&self.conn, &statement, params, rows)?;
        *self.commit_sent.lock() = Some(end);
        let done = outcome?;
        if done.forgot_statements {
            self.prepared.forget_statements();
        }
        Ok(done.rows)
    }

    /// Whether the next statement run by SQL text (`execute`, `query` and
    /// their kin) sends `COMMIT` behind it (see [`Client::run_sql`]).
    pub(crate) fn set_commit_behind(&self, on: bool) {
        self.commit_behind.store(on, Ordering::Relaxed);
    }

    /// The `COMMIT` sent behind the last statement, if one was.
    pub(crate) fn take_commit_sent_behind(&self) -> Option<simple_query::TransactionEnd> {
        self.commit_sent.lock().take()
    }

    /// Prepares a statement, or returns it from this connection's cache.
    ///
    /// The cache keeps up to [`Config::statement_cache_capacity`]
    /// statements (default 256); beyond that, the least recently used one
    /// that no caller holds is closed on the server. A returned
    /// [`Statement`] is never closed while held, and one whose server-side
    /// statement is gone (`DISCARD ALL`, `DEALLOCATE ALL`) is prepared again
    /// when run. With `statement_cache=false` or a capacity of 0 no named
    /// statement is created: each run parses the statement unnamed in the
    /// same round trip as its execution, and the client keeps only its
    /// description (parameter types, result columns), learned once by a
    /// `Parse`/`Describe` round trip.
    pub fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        require_green("prepare")?;
        self.prepared.prepare(&self.conn, sql)
    }

    /// Runs a prepared statement and returns its rows.
    pub fn query_statement(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, Error> {
        self.query_statement_as(statement, params, Access::ReadWrite)
    }

    /// [`Client::query_statement`] with what the statement may do.
    pub(crate) fn query_statement_as(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
        access: Access,
    ) -> Result<Vec<Row>, Error> {
        require_green("query")?;
        self.observed(
            statement.sql(),
            |rows: &Vec<Row>| Some(rows.len() as u64),
            || {
                let mut rows = Vec::new();
                self.prepared.run_statement(
                    &self.conn,
                    statement,
                    params,
                    RowSink::Collect(&mut rows),
                    access,
                )?;
                Ok(rows)
            },
        )
    }

    /// Runs a prepared statement and returns the number of rows affected.
    pub fn execute_statement(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> Result<u64, Error> {
        require_green("execute")?;
        self.observed(
            statement.sql(),
            |n| Some(*n),
            || {
                self.prepared.run_statement(
                    &self.conn,
                    statement,
                    params,
                    RowSink::Discard,
                    Access::ReadWrite,
                )
            },
        )
    }

    /// Runs `statements` (SQL and parameters) as one atomic batch: one
    /// request of `Bind`/`Execute` per statement and a single `Sync`,
    /// answered in one round trip, with one answer per statement in order.
    ///
    /// Outside a transaction the statements run in one implicit
    /// transaction, which the server commits at the `Sync`: `Ok` means every
    /// statement is committed, together; when one fails, or the commit does
    /// (a deferred constraint, a serialization failure), nothing of the
    /// batch is stored and the answer is [`Error::RolledBack`] with the
    /// server's error as its cause. On a shared connection it holds the
    /// connection for no longer than its own statements: other tasks'
    /// requests are pipelined before or after it, never inside it. Inside a
    /// [`Transaction`] the statements run in that transaction instead, and a
    /// failure is the server's error ([`Error::Db`]), which aborts it.
    ///
    /// The statements must not control transactions (`BEGIN`, `COMMIT`,
    /// ...) or be ones PostgreSQL refuses inside a transaction block
    /// (`VACUUM`, `CREATE DATABASE`, ...): the batch would not be one
    /// transaction. Statements are prepared through the statement cache
    /// first; a cached one the server no longer knows is prepared again
    /// and the whole batch sent once more (nothing of it was stored).
    ///
    /// # Errors
    ///
    /// [`Error::ParameterCount`] or [`Error::ToSql`] before anything is
    /// sent; [`Error::RolledBack`] as above; a broken connection or a
    /// passed `query_timeout` leaves the outcome unknown, as for `COMMIT`.
    pub fn atomic_batch(
        &self,
        statements: &[(&str, &[Param<'_>])],
    ) -> Result<Vec<BatchAnswer>, Error> {
        require_green("atomic_batch")?;
        // observed as one statement: the batch's SQL texts joined by "; "
        let text = statements
            .iter()
            .map(|(sql, _)| *sql)
            .collect::<Vec<_>>()
            .join("; ");
        self.observed(
            &text,
            |answers: &Vec<BatchAnswer>| Some(answers.iter().map(|a| a.rows_affected).sum()),
            || self.prepared.atomic_batch(&self.conn, statements),
        )
    }

    /// Starts a transaction (`BEGIN`). Dropping it without
    /// [`Transaction::commit`] rolls it back.
    pub fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        require_green("transaction")?;
        self.observed("BEGIN", |_| None, || self.simple_query("BEGIN"))?;
        Ok(Transaction::new(self))
    }

    /// Starts `COPY ... FROM STDIN`: write the data to the returned writer,
    /// then call [`CopyInWriter::finish`].
    pub fn copy_in(&self, sql: &str) -> Result<CopyInWriter<'_>, Error> {
        require_green("copy_in")?;
        CopyInWriter::start(&self.conn, sql)
    }

    /// Starts `COPY ... TO STDOUT` and returns a reader of its data.
    pub fn copy_out(&self, sql: &str) -> Result<CopyOutReader<'_>, Error> {
        require_green("copy_out")?;
        CopyOutReader::start(&self.conn, sql)
    }

    /// The notifications arriving on this connection (after `LISTEN`).
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications::new(&self.conn)
    }

    /// A token that can cancel this connection's running query from
    /// another task.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken::new(
            self.config().clone(),
            self.conn.process_id,
            self.conn.secret_key,
            Arc::downgrade(&self.conn),
        )
    }

    /// True once the connection is closed (by us, the server, or an I/O
    /// error); every request then fails at once.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Inside a transaction or not, as of the last answer; `Idle` once a
    /// `COMMIT` that ended the previous holder's transaction is on its way
    /// (a pooled connection can be handed on before its answer comes), as
    /// the server will be when it reads the next request.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.conn.transaction_status()
    }

    /// The server process serving this connection.
    pub fn backend_pid(&self) -> i32 {
        self.conn.process_id
    }

    /// A server parameter reported at startup or since (`server_version`,
    /// `TimeZone`, `application_name`, ...).
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.conn.parameter(name)
    }

    /// The most recent notices (warnings, `RAISE NOTICE`), oldest first;
    /// every notice is also logged through the `log` crate.
    pub fn notices(&self) -> Vec<DbError> {
        self.conn.notices()
    }

    /// Number of statements in this connection's cache (at most
    /// [`Config::statement_cache_capacity`] plus those callers hold).
    pub fn cached_statements(&self) -> usize {
        self.prepared.cached()
    }

    /// Marks this client as shared by several tasks at once (the pool's
    /// shared mode does so for its connections; off by default). A request
    /// on a shared client must leave the connection outside a transaction:
    /// one whose answer ends inside a transaction (a `BEGIN` that slipped
    /// through) fails, the connection is closed, and every request
    /// pipelined behind it — which ran inside that transaction — fails too,
    /// so none of them is reported as stored.
    pub fn set_shared(&self, shared: bool) {
        self.conn.set_shared(shared);
    }

    /// Whether [`Client::set_shared`] is on.
    pub fn is_shared(&self) -> bool {
        self.conn.is_shared()
    }

    /// Closes the connection with `Terminate`.
    pub fn close(self) -> Result<(), Error> {
        require_green("close")?;
        if self.conn.is_closed() {
            return Ok(());
        }
        // Drop sends Terminate and shuts the socket down.
        drop(self);
        Ok(())
    }
}

/// The one row of `rows`, else [`Error::RowCount`].
pub(crate) fn exactly_one(mut rows: Vec<Row>) -> Result<Row, Error> {
    match rows.len() {
        1 => Ok(rows.pop().expect("one row")),
        n => Err(Error::RowCount(n)),
    }
}

/// The row of `rows` when there is at most one, else [`Error::RowCount`].
pub(crate) fn at_most_one(mut rows: Vec<Row>) -> Result<Option<Row>, Error> {
    match rows.len() {
        0 => Ok(None),
        1 => Ok(rows.pop()),
        n => Err(Error::RowCount(n)),
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.conn.terminate();
    }
}
