//! The simple query protocol (`Query`: one or more statements, no
//! parameters, text results): running it and reading its answer, the
//! statements queued without waiting for an answer (a session's `BEGIN`,
//! `SAVEPOINT`, a dropped transaction's `ROLLBACK`), and the `COMMIT` that
//! ends a transaction — alone ([`send_transaction_end`]) or behind the
//! transaction's last statement in the same write ([`run_then_commit`]).

use std::sync::Arc;
use std::time::Instant;

use log::Level;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::connection::connection::Connection;
use crate::connection::slot::{Effect, Slot};
use crate::connection::write_queue::Sending;
use crate::error::Error;
use crate::request::request::{
    copy_out_refused, deadline, encode_then_send, queue_request, read_results, refuse_copy,
    request_detached, request_until, Completion,
};
use crate::request::response::Response;
use crate::request::row_sink::RowSink;
use crate::request::statement_log::{log_statement, start_clock, SQL_LOG_TARGET};
use crate::wire::bind_execute::{encode_bind_execute, Param};
use crate::wire::command_tag::{forgets_prepared_statements, rows_affected};
use crate::wire::server_error::db_error;
use crate::wire::statement::Statement;
use crate::wire::transaction_status::TransactionStatus;

/// How a run of simple-protocol statements ended.
#[derive(Debug)]
pub(crate) struct SimpleCompletion {
    /// The command tag of the last statement that completed (`COMMIT`,
    /// `ROLLBACK`, `INSERT 0 1`, ...; empty when none did).
    pub(crate) tag: String,
    /// One of them was `DISCARD ALL` or `DEALLOCATE ALL`.
    pub(crate) forgot_statements: bool,
}

/// Logs a statement queued without waiting for its answer.
fn log_queued(sql: &str) {
    if log::log_enabled!(target: SQL_LOG_TARGET, Level::Debug) {
        log::debug!(target: SQL_LOG_TARGET, "queued without waiting for its answer: {sql}");
    }
}

/// Queues one simple-protocol statement (the `ROLLBACK` of a transaction
/// dropped off a coroutine) without waiting for its answer and writes it
/// now: the next request on the connection follows it on the
/// wire, so it costs no round trip of its own. Its answer (an error too)
/// is thrown away; when the connection broke, the next request reports it.
/// The one way code outside the request engine puts a statement on the
/// wire without a reply.
pub(crate) fn queue_simple_statement(conn: &Connection, sql: &str) -> Result<(), Error> {
    log_queued(sql);
    request_detached(conn, |buf| {
        frontend::query(sql, buf)?;
        Ok(())
    })
}

/// Queues one simple-protocol statement (a session's `BEGIN` or
/// `SAVEPOINT ...`) to go out with the next request on the connection, in
/// the same system call, without waiting for its answer (thrown away, as
/// for [`queue_simple_statement`]). The caller must send a request next
/// (or hand the connection back, where a deferred statement counts as an
/// open transaction): nothing else writes it.
pub(crate) fn queue_simple_statement_ahead(conn: &Connection, sql: &str) -> Result<(), Error> {
    log_queued(sql);
    encode_then_send(
        |buf| Ok(frontend::query(sql, buf)?),
        |bytes| conn.send_owned(bytes, Some(Slot::abandoned()), Sending::Deferred),
    )
}

/// A simple-protocol statement that ends the transaction (`COMMIT`),
/// sent and not yet answered: the connection may be handed to another
/// task before [`TransactionEnd::finish`] reads the answer, since the
/// server runs that task's requests only after this one, outside any
/// transaction.
#[derive(Debug)]
pub(crate) struct TransactionEnd {
    conn: Arc<Connection>,
    response: Response,
    sql: &'static str,
    started: Option<Instant>,
}

/// Sends `sql`, a statement that ends the transaction whatever its
/// answer (see [`Sending::EndingTransaction`](crate::connection::write_queue::Sending::EndingTransaction)).
pub(crate) fn send_transaction_end(
    conn: &Arc<Connection>,
    sql: &'static str,
) -> Result<TransactionEnd, Error> {
    let started = start_clock(conn);
    let slot = Slot::new(false, false);
    encode_then_send(
        |buf| Ok(frontend::query(sql, buf)?),
        |bytes| conn.send_owned(bytes, Some(slot.clone()), Sending::EndingTransaction),
    )?;
    Ok(TransactionEnd {
        conn: conn.clone(),
        response: Response::new(slot, deadline(conn)),
        sql,
        started,
    })
}

impl TransactionEnd {
    /// Waits for the answer: how the statement completed, and the
    /// transaction status its `ReadyForQuery` reported (`None` when no
    /// answer came: the connection broke or the wait timed out).
    pub(crate) fn finish(self) -> (Result<SimpleCompletion, Error>, Option<TransactionStatus>) {
        let (outcome, status) = read_simple(&self.conn, self.response);
        if let Some(started) = self.started {
            let rows = outcome.as_ref().map(|done| rows_affected(&done.tag));
            let tag = outcome.as_ref().ok().map(|done| done.tag.as_str());
            log_statement(&self.conn, self.sql, started, rows, tag);
        }
        (outcome, status)
    }
}

/// Bind + Execute + Sync on a named prepared statement and, behind it in
/// the same write, `COMMIT` (sent as [`send_transaction_end`] sends it):
/// the transaction's last statement and its end cost one round trip. The
/// statement's answer is read here (into `rows`); the `COMMIT`'s is left
/// to the caller. The outer error means nothing was sent (an encoding
/// failure, a closed connection): the transaction is still open, or gone
/// with the connection. When the statement fails, the server rolls the
/// transaction back and answers the `COMMIT` with `ROLLBACK`.
pub(crate) fn run_then_commit(
    conn: &Arc<Connection>,
    statement: &Statement,
    params: &[Param<'_>],
    rows: RowSink<'_>,
) -> Result<(Result<Completion, Error>, TransactionEnd), Error> {
    statement.check_param_count(params.len())?;
    let types = statement.params();
    let started = start_clock(conn);
    let mut response = queue_request(
        conn,
        rows.streams(),
        deadline(conn),
        Effect::Statements,
        Sending::Deferred,
        |buf| {
            encode_bind_execute(statement.name(), types, params, buf)?;
            frontend::sync(buf);
            Ok(())
        },
    )?;
    let end = send_transaction_end(conn, "COMMIT")?;
    let mut columns = statement.shared_columns().clone();
    let outcome = read_results(conn, &mut response, &mut columns, rows);
    if let Some(started) = started {
        let rows = outcome.as_ref().map(|done| done.rows);
        log_statement(conn, statement.sql(), started, rows, None);
    }
    Ok((outcome, end))
}

/// The simple query protocol: one or more statements, no parameters.
pub(crate) fn simple_query(conn: &Arc<Connection>, sql: &str) -> Result<SimpleCompletion, Error> {
    let started = start_clock(conn);
    let outcome = simple_query_unlogged(conn, sql);
    if let Some(started) = started {
        let rows = outcome.as_ref().map(|done| rows_affected(&done.tag));
        let tag = outcome.as_ref().ok().map(|done| done.tag.as_str());
        log_statement(conn, sql, started, rows, tag);
    }
    outcome
}

fn simple_query_unlogged(conn: &Arc<Connection>, sql: &str) -> Result<SimpleCompletion, Error> {
    let effect = if may_end_transaction(sql) {
        Effect::EndsTransaction
    } else {
        Effect::Statements
    };
    let response = request_until(conn, false, deadline(conn), effect, |buf| {
        frontend::query(sql, buf)?;
        Ok(())
    })?;
    read_simple(conn, response).0
}

/// Whether simple-protocol text may end the transaction it runs in — it
/// names `COMMIT` or `END` anywhere (in any case) — so that a break after
/// it left leaves its outcome unknown even inside a transaction. Erring
/// towards "may" only costs a more careful error.
fn may_end_transaction(sql: &str) -> bool {
    sql.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|word| word.eq_ignore_ascii_case("commit") || word.eq_ignore_ascii_case("end"))
}

/// Reads a simple-protocol answer up to `ReadyForQuery`; also returns the
/// transaction status that `ReadyForQuery` reported (`None` when the
/// answer did not come to its end).
fn read_simple(
    conn: &Connection,
    mut response: Response,
) -> (Result<SimpleCompletion, Error>, Option<TransactionStatus>) {
    let mut error = None;
    let mut done = SimpleCompletion {
        tag: String::new(),
        forgot_statements: false,
    };
    let status = loop {
        let message = match response.next() {
            Ok(message) => message,
            Err(e) => return (Err(e), None),
        };
        match message {
            Message::CommandComplete(body) => {
                let tag = match body.tag() {
                    Ok(tag) => tag,
                    Err(e) => return (Err(e.into()), None),
                };
                done.forgot_statements |= forgets_prepared_statements(tag.as_bytes());
                done.tag.clear();
                done.tag.push_str(tag);
            }
            Message::ErrorResponse(body) if error.is_none() => {
                error = Some(db_error(body.fields()));
            }
            Message::CopyInResponse(_) => match refuse_copy(conn, false) {
                Ok(refused) => error = error.or(Some(refused)),
                Err(e) => return (Err(e), None),
            },
            Message::CopyOutResponse(_) => error = error.or(Some(copy_out_refused())),
            Message::ReadyForQuery(body) => break TransactionStatus::from_byte(body.status()),
            _ => {}
        }
    };
    (error.map_or(Ok(done), Err), Some(status))
}

#[cfg(test)]
mod tests {
    use super::may_end_transaction;

    #[test]
    fn text_naming_commit_or_end_may_end_the_transaction() {
        assert!(may_end_transaction("COMMIT"));
        assert!(may_end_transaction("insert into t values (1); commit;"));
        assert!(may_end_transaction("END"));
        assert!(!may_end_transaction("SELECT * FROM commits"));
        assert!(!may_end_transaction("INSERT INTO t VALUES (1)"));
        assert!(!may_end_transaction("SELECT ending FROM t"));
    }
}
