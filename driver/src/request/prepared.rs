//! [`Prepared`]: one connection's statements — the named-statement cache,
//! the unnamed descriptions (`statement_cache=false`) — and running a
//! statement through them: prepared once and reused, prepared again when
//! the server no longer knows it (`DISCARD ALL`, a schema change), an
//! unnamed one described again when its description went stale. The
//! request engine's half of [`Client`](crate::client::client::Client),
//! which only checks the context and delegates here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Config;
use crate::connection::connection::Connection;
use crate::error::Error;
use crate::request::atomic_batch::{self, BatchAnswer, BatchCompletion};
use crate::request::request::{self, Access, Completion};
use crate::request::row_sink::RowSink;
use crate::request::statement_cache::{
    description_capacity, is_stale_statement, Insertion, StatementCache,
};
use crate::request::unnamed_statement::{self, may_be_stale_description, UnnamedCompletion};
use crate::wire::bind_execute::{check_parameter_limit, Param};
use crate::wire::statement::Statement;
use crate::wire::transaction_status::TransactionStatus;

/// Gives every connection (and so every statement) a process-unique id.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);
/// Gives every named statement a process-unique name.
static NEXT_STATEMENT: AtomicU64 = AtomicU64::new(1);

/// One connection's prepared statements and descriptions.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The connection's process-unique id, stamped on its statements.
    id: u64,
    /// Named statements kept on the server (`statement_cache=true`).
    statements: Mutex<StatementCache>,
    /// With the cache off: unnamed statements, that is descriptions only
    /// (parameter types and result columns by SQL text), kept in this
    /// client's memory so each run takes one round trip (see
    /// [`unnamed_statement`]); nothing of them lives on the server.
    descriptions: Mutex<StatementCache>,
}

impl Prepared {
    /// Empty caches sized by `config`, under a new connection id.
    pub(crate) fn new(config: &Config) -> Prepared {
        Prepared {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            statements: Mutex::new(StatementCache::new(config.statement_cache_capacity())),
            descriptions: Mutex::new(StatementCache::new(description_capacity(config))),
        }
    }

    /// The connection's process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of named statements in the cache.
    pub(crate) fn cached(&self) -> usize {
        self.statements.lock().len()
    }

    /// The statement for `sql`: from the cache, else prepared (named, and
    /// cached) or, with the cache off, described (unnamed).
    pub(crate) fn prepare(&self, conn: &Arc<Connection>, sql: &str) -> Result<Statement, Error> {
        if !self.caches_statements(conn) {
            return self.describe_unnamed(conn, sql);
        }
        if let Some(statement) = self.statements.lock().get(sql) {
            return Ok(statement);
        }
        let name = format!("odm_s{}", NEXT_STATEMENT.fetch_add(1, Ordering::Relaxed));
        let statement = request::describe(conn, self.id, name, sql)?;
        // `closed` holds the evicted statements and ours when another task
        // prepared the same SQL meanwhile.
        let Insertion { cached, closed } = self.statements.lock().insert(statement);
        request::close_statements(conn, &closed);
        Ok(cached)
    }

    /// The description of `sql` for an unnamed run: cached, or learned by
    /// one `Parse`/`Describe` round trip and cached. Descriptions evicted
    /// from the cache have nothing on the server to close.
    fn describe_unnamed(&self, conn: &Arc<Connection>, sql: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.descriptions.lock().get(sql) {
            return Ok(statement);
        }
        let statement = request::describe(conn, self.id, String::new(), sql)?;
        Ok(self.descriptions.lock().insert(statement).cached)
    }

    /// Whether prepared statements are cached (named and kept).
    fn caches_statements(&self, conn: &Connection) -> bool {
        let config = conn.config();
        config.statement_cache() && config.statement_cache_capacity() > 0
    }

    /// Called after `DISCARD ALL` or `DEALLOCATE ALL`: the server knows
    /// none of the cached statements, so the cache is emptied (statements
    /// still held are prepared again on their next run).
    pub(crate) fn forget_statements(&self) {
        self.statements.lock().clear();
    }

    /// Runs a statement prepared on this connection once and returns its
    /// row count.
    fn run_once(
        &self,
        conn: &Arc<Connection>,
        statement: &Statement,
        params: &[Param<'_>],
        rows: RowSink<'_>,
        access: Access,
    ) -> Result<u64, Error> {
        let Completion {
            rows,
            forgot_statements,
        } = request::run(conn, statement, params, rows, access)?;
        if forgot_statements {
            self.forget_statements();
        }
        Ok(rows)
    }

    pub(crate) fn run_statement(
        &self,
        conn: &Arc<Connection>,
        statement: &Statement,
        params: &[Param<'_>],
        rows: RowSink<'_>,
        access: Access,
    ) -> Result<u64, Error> {
        check_parameter_limit(params.len())?;
        if statement.connection_id() == self.id && !statement.is_closed() {
            self.run_prepared(conn, statement, params, rows, access)
        } else {
            // Prepared on another connection, or closed here since: prepare
            // it (again) through the cache.
            self.run_sql(conn, statement.sql(), params, rows, access)
        }
    }

    /// Prepare (cached) and run; every caller has checked the context.
    pub(crate) fn run_sql(
        &self,
        conn: &Arc<Connection>,
        sql: &str,
        params: &[Param<'_>],
        rows: RowSink<'_>,
        access: Access,
    ) -> Result<u64, Error> {
        check_parameter_limit(params.len())?;
        let statement = self.prepare(conn, sql)?;
        self.run_prepared(conn, &statement, params, rows, access)
    }

    /// Runs a statement prepared on this connection. A named statement the
    /// server no longer knows or can no longer use (schema change) is
    /// closed and, when not inside a transaction, prepared again once.
    fn run_prepared(
        &self,
        conn: &Arc<Connection>,
        statement: &Statement,
        params: &[Param<'_>],
        mut rows: RowSink<'_>,
        access: Access,
    ) -> Result<u64, Error> {
        if statement.is_unnamed() {
            return self.run_unnamed(conn, statement, params, rows, access);
        }
        let first = match &mut rows {
            RowSink::Discard => self.run_once(conn, statement, params, RowSink::Discard, access),
            RowSink::Collect(rows) => {
                self.run_once(conn, statement, params, RowSink::Collect(rows), access)
            }
        };
        match first {
            Err(e) if !statement.is_unnamed() && is_stale_statement(&e) => {
                if self.statements.lock().remove(statement) {
                    request::close_statements(conn, std::slice::from_ref(statement));
                }
                if conn.transaction_status() != TransactionStatus::Idle {
                    return Err(e);
                }
                if let RowSink::Collect(rows) = &mut rows {
                    rows.clear();
                }
                let again = self.prepare(conn, statement.sql())?;
                self.run_once(conn, &again, params, rows, access)
            }
            other => other,
        }
    }

    /// Runs an unnamed statement (a description) in one round trip. New
    /// result columns the server described replace the cached ones. An
    /// error that may come from a stale description drops it; the
    /// statement is described again and, when its parameter types changed
    /// and running it again is safe (nothing was sent, or the connection
    /// is outside a transaction, so the failed run left no trace), run
    /// once more.
    fn run_unnamed(
        &self,
        conn: &Arc<Connection>,
        statement: &Statement,
        params: &[Param<'_>],
        mut rows: RowSink<'_>,
        access: Access,
    ) -> Result<u64, Error> {
        let first = match &mut rows {
            RowSink::Discard => {
                self.run_unnamed_once(conn, statement, params, RowSink::Discard, access)
            }
            RowSink::Collect(rows) => {
                self.run_unnamed_once(conn, statement, params, RowSink::Collect(rows), access)
            }
        };
        let e = match first {
            Err(e) if may_be_stale_description(&e) => e,
            other => return other,
        };
        self.descriptions.lock().remove(statement);
        let nothing_sent = matches!(e, Error::ToSql { .. });
        if !nothing_sent && conn.transaction_status() != TransactionStatus::Idle {
            return Err(e);
        }
        let again = self.describe_unnamed(conn, statement.sql())?;
        if again.params() == statement.params() {
            // The same parameter types: the error was not the
            // description's.
            return Err(e);
        }
        if let RowSink::Collect(rows) = &mut rows {
            rows.clear();
        }
        self.run_unnamed_once(conn, &again, params, rows, access)
    }

    fn run_unnamed_once(
        &self,
        conn: &Arc<Connection>,
        statement: &Statement,
        params: &[Param<'_>],
        rows: RowSink<'_>,
        access: Access,
    ) -> Result<u64, Error> {
        let UnnamedCompletion {
            done,
            changed_columns,
        } = unnamed_statement::run(conn, statement, params, rows, access)?;
        if let Some(columns) = changed_columns {
            let described = statement.with_columns(columns);
            let mut descriptions = self.descriptions.lock();
            descriptions.remove(statement);
            descriptions.insert(described);
        }
        if done.forgot_statements {
            self.forget_statements();
        }
        Ok(done.rows)
    }

    /// Runs `statements` as one atomic batch (see `Client::atomic_batch`):
    /// prepared through the cache; a cached statement the server no longer
    /// knows is prepared again and the whole batch sent once more (nothing
    /// of it was stored).
    pub(crate) fn atomic_batch(
        &self,
        conn: &Arc<Connection>,
        statements: &[(&str, &[Param<'_>])],
    ) -> Result<Vec<BatchAnswer>, Error> {
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = self.prepare_batch(conn, statements)?;
        let done = match atomic_batch::run(conn, &prepared) {
            Err(e)
                if is_stale_statement(&e)
                    && conn.transaction_status() == TransactionStatus::Idle =>
            {
                let stale: Vec<Statement> = prepared
                    .into_iter()
                    .map(|(statement, _)| statement)
                    .filter(|s| !s.is_unnamed() && self.statements.lock().remove(s))
                    .collect();
                request::close_statements(conn, &stale);
                let again = self.prepare_batch(conn, statements)?;
                atomic_batch::run(conn, &again)
            }
            other => other,
        };
        let BatchCompletion {
            answers,
            forgot_statements,
        } = done?;
        if forgot_statements {
            self.forget_statements();
        }
        Ok(answers)
    }

    /// Each statement of a batch prepared (through the cache), beside its
    /// parameters.
    fn prepare_batch<'p, 'v>(
        &self,
        conn: &Arc<Connection>,
        statements: &[(&str, &'p [Param<'v>])],
    ) -> Result<Vec<(Statement, &'p [Param<'v>])>, Error> {
        statements
            .iter()
            .map(|&(sql, params)| {
                check_parameter_limit(params.len())?;
                Ok((self.prepare(conn, sql)?, params))
            })
            .collect()
    }
}
