//! Logging the statements the driver runs: every one under the one target
//! [`SQL_LOG_TARGET`] (`odm::sql`), at debug level its SQL text (never its
//! parameter values, which may be secrets), duration and row count, and at
//! warn level when it took longer than the connection's
//! `slow_statement_ms`. With both levels off no clock is read.

use std::time::Instant;

use log::Level;

use crate::connection::connection::Connection;
use crate::error::Error;

/// The `log` target of every statement the driver runs.
pub const SQL_LOG_TARGET: &str = "odm::sql";

/// A statement that streams (COPY), timed for the log from its start to
/// its end; made only when statements are logged (see [`start_clock`]).
#[derive(Debug)]
pub(crate) struct StatementLog {
    started: Instant,
    sql: String,
}

impl StatementLog {
    /// Starts timing `sql`, when it is going to be logged.
    pub(crate) fn start(conn: &Connection, sql: &str) -> Option<StatementLog> {
        start_clock(conn).map(|started| StatementLog {
            started,
            sql: sql.to_owned(),
        })
    }

    /// Logs the end of the statement: its row count or its error.
    pub(crate) fn finish(self, conn: &Connection, rows: Result<u64, &Error>) {
        log_statement(conn, &self.sql, self.started, rows, None);
    }
}

/// The time a statement starts, when it is going to be logged: debug is on
/// for [`SQL_LOG_TARGET`], or warn is and a slow-statement threshold is
/// set. `None` (no clock read) otherwise.
pub(super) fn start_clock(conn: &Connection) -> Option<Instant> {
    let wanted = log::log_enabled!(target: SQL_LOG_TARGET, Level::Debug)
        || (conn.config().slow_statement().is_some()
            && log::log_enabled!(target: SQL_LOG_TARGET, Level::Warn));
    wanted.then(Instant::now)
}

/// Logs a finished statement: at debug its duration and row count (or the
/// SQLSTATE it failed with), at warn when it passed the slow-statement
/// threshold. Only the SQL text is shown, never parameter values, and for
/// a failure only the error's code: a server message may quote a value.
pub(super) fn log_statement(
    conn: &Connection,
    sql: &str,
    started: Instant,
    rows: Result<u64, &Error>,
    tag: Option<&str>,
) {
    let elapsed = started.elapsed();
    let millis = elapsed.as_secs_f64() * 1000.0;
    let tag = tag.map(|tag| format!(" ({tag})")).unwrap_or_default();
    let outcome = match rows {
        Ok(rows) => format!("{rows} rows{tag}"),
        Err(e) => format!("failed: {}", error_code(e)),
    };
    if let Some(threshold) = conn.config().slow_statement() {
        if elapsed >= threshold {
            log::warn!(
                target: SQL_LOG_TARGET,
                "slow statement: {millis:.3} ms (slow_statement_ms={}), {outcome}: {sql}",
                threshold.as_millis()
            );
            return;
        }
    }
    log::debug!(target: SQL_LOG_TARGET, "{millis:.3} ms, {outcome}: {sql}");
}

/// What a failed statement's log line shows of its error: the SQLSTATE of
/// a server error, or the kind of a client-side one.
fn error_code(e: &Error) -> String {
    match e.code() {
        Some(code) => format!("SQLSTATE {code}"),
        None if e.is_query_timeout() => "query_timeout passed".to_owned(),
        None if e.is_closed() => "connection closed".to_owned(),
        None => "client-side error".to_owned(),
    }
}
