//! Atomic batches: several statements sent as one request — `Bind` /
//! `Execute` for each, then a single `Sync` — and answered in one round
//! trip.
//!
//! In the extended protocol every message up to a `Sync` runs in one
//! implicit transaction when no explicit one is open: the server commits it
//! at the `Sync` when every statement succeeded, and when one fails it
//! skips the rest up to the `Sync` and rolls back everything before it
//! (PostgreSQL's documentation, "Pipelining" in the protocol chapter). So a
//! batch is `BEGIN; s1; s2; ...; COMMIT` without a `BEGIN`, a `COMMIT` or a
//! round trip of its own, and it needs no connection of its own either: on
//! a shared connection other tasks' requests are written before or after
//! it, each ending with its own `Sync`, so none runs inside it.
//!
//! [`Client::atomic_batch`](super::Client::atomic_batch) is the face; this
//! file encodes the request and reads its answer.

use std::sync::Arc;

use log::Level;
use postgres_protocol::message::frontend;
use postgres_types::Type;

use crate::connection::connection::Connection;
use crate::error::Error;
use crate::request::request::{self, encode_bind, AnswerTo, Completion, StatementEnd};
use crate::request::response::Response;
use crate::request::row_sink::RowSink;
use crate::request::statement_log::{StatementLog, SQL_LOG_TARGET};
use crate::wire::bind_execute::Param;
use crate::wire::row::Row;
use crate::wire::statement::Statement;

/// What one statement of an atomic batch answered.
#[derive(Debug, Default)]
pub struct BatchAnswer {
    /// The rows it returned (`RETURNING`, a `SELECT`).
    pub rows: Vec<Row>,
    /// The row count of its command tag (rows inserted, updated, deleted or
    /// returned).
    pub rows_affected: u64,
}

/// How a batch ended on the wire.
#[derive(Debug)]
pub(crate) struct BatchCompletion {
    /// One answer per statement, in order.
    pub(crate) answers: Vec<BatchAnswer>,
    /// A statement's tag was `DEALLOCATE ALL` (or `DISCARD ALL`): the
    /// server knows no prepared statement of the session any more.
    pub(crate) forgot_statements: bool,
}

/// Sends `statements` (each prepared on this connection, with its
/// parameters) as one request ending with one `Sync`, and reads the
/// answers. Outside an explicit transaction, a server error (of a
/// statement, or of the implicit commit at the `Sync`: a deferred
/// constraint, a serialization failure) is [`Error::RolledBack`] with that
/// error as its cause: the server stored nothing of the batch. Inside one
/// it is the server's error ([`Error::Db`]), and that transaction is
/// aborted.
pub(crate) fn run(
    conn: &Arc<Connection>,
    statements: &[(Statement, &[Param<'_>])],
) -> Result<BatchCompletion, Error> {
    for (statement, params) in statements {
        statement.check_param_count(params.len())?;
    }
    let log = start_log(conn, statements);
    let response = request::request(conn, false, |buf| {
        for (statement, params) in statements {
            if statement.is_unnamed() {
                let types = statement.params().iter().map(Type::oid);
                frontend::parse("", statement.sql(), types, buf)?;
            }
            encode_bind(statement, params, buf)?;
            if statement.is_unnamed() {
                // As on the unnamed path: rows decode with the columns the
                // server describes for this run, never a stale description.
                frontend::describe(b'P', "", buf)?;
            }
            frontend::execute("", 0, buf)?;
        }
        frontend::sync(buf);
        Ok(())
    });
    let outcome = response.and_then(|r| read_answers(conn, r, statements));
    if let Some(log) = log {
        let rows = outcome
            .as_ref()
            .map(|done| done.answers.iter().map(|a| a.rows_affected).sum());
        log.finish(conn, rows);
    }
    outcome
}

/// Times the batch for the log when statements are logged; the logged text
/// names the statement count and the first statement.
fn start_log(conn: &Connection, statements: &[(Statement, &[Param<'_>])]) -> Option<StatementLog> {
    // Debug on implies warn on: with warn off, nothing is logged at all.
    if !log::log_enabled!(target: SQL_LOG_TARGET, Level::Warn) {
        return None;
    }
    let first = statements.first().map_or("", |(s, _)| s.sql());
    let text = format!(
        "atomic batch of {} statements, first: {first}",
        statements.len()
    );
    StatementLog::start(conn, &text)
}

/// Reads the answers up to `ReadyForQuery`, statement by statement
/// ([`request::read_statement`]): each statement's rows until its
/// `CommandComplete` (or `EmptyQueryResponse`), then the next one's. After
/// an error the server sends nothing more but `ReadyForQuery`.
fn read_answers(
    conn: &Connection,
    mut response: Response,
    statements: &[(Statement, &[Param<'_>])],
) -> Result<BatchCompletion, Error> {
    let mut done = BatchCompletion {
        answers: Vec::with_capacity(statements.len()),
        forgot_statements: false,
    };
    let mut error: Option<Error> = None;
    let status = loop {
        let mut answer = BatchAnswer::default();
        let mut completion = Completion {
            rows: 0,
            forgot_statements: false,
        };
        // An answer beyond the last statement is the server's mistake: its
        // rows are dropped and the batch fails.
        let (mut columns, mut rows) = match statements.get(done.answers.len()) {
            Some((statement, _)) => (
                statement.shared_columns().clone(),
                RowSink::Collect(&mut answer.rows),
            ),
            None => (Arc::from(Vec::new()), RowSink::Discard),
        };
        let end = request::read_statement(
            conn,
            &mut response,
            &mut columns,
            &mut rows,
            &mut completion,
            &mut error,
            AnswerTo::AtomicBatch,
        )?;
        match end {
            StatementEnd::Ready(status) => break status,
            StatementEnd::Completed => {
                if done.answers.len() == statements.len() {
                    error = error.or_else(|| Some(AnswerTo::AtomicBatch.unexpected()));
                }
                done.forgot_statements |= completion.forgot_statements;
                answer.rows_affected = completion.rows;
                done.answers.push(answer);
            }
        }
    };
    // Idle after a server error: the implicit transaction was rolled back.
    // Inside an explicit transaction (`E`), the caller's transaction is
    // aborted instead, not yet ended.
    if status == b'I' {
        error = match error {
            Some(Error::Db(db)) => Some(Error::RolledBack { cause: Some(db) }),
            other => other,
        };
    }
    if error.is_none() && done.answers.len() != statements.len() {
        error = Some(AnswerTo::AtomicBatch.unexpected());
    }
    error.map_or(Ok(done), Err)
}
