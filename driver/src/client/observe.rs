//! Observing statements: a per-statement hook for metrics
//! ([`set_statement_hook`]) and, with the `tracing` feature, a span per
//! statement carrying OpenTelemetry's database fields. Both beside the
//! `log` output of [`SQL_LOG_TARGET`](crate::request::statement_log::SQL_LOG_TARGET),
//! which stays as it is.
//!
//! A statement is observed where a [`Client`](crate::client::client::Client)
//! runs it (`execute`, `query` and their `_one`/`_opt`/`_statement` forms,
//! `batch_execute`, `atomic_batch`, `BEGIN` of `transaction`) and where
//! odm commits. Nothing is measured when no hook is set and no `tracing`
//! subscriber wants the spans.
//!
//! # The span (feature `tracing`)
//!
//! Name `db.statement` (target `odm::sql`, level INFO), with `otel.name`
//! set to the operation, and the fields of OpenTelemetry's database
//! semantic conventions: `db.system` (`postgresql`), `db.namespace` (the
//! database), `db.operation.name` (`SELECT`, `INSERT`, `COMMIT`, ...: the
//! statement's first word), `db.query.text` (the SQL as written, with
//! `$1` placeholders: bound values are never recorded), and once it ends
//! `db.response.returned_rows` (rows returned or affected),
//! `db.client.operation.duration` (seconds), and on failure `error.type`
//! and `db.response.status_code` (the SQLSTATE, or the kind of a
//! client-side error). Its parent is
//! [`green::trace::current_span`]: the transaction's span inside odm's
//! `begin`, else the green task's, whose parent is the span that was
//! current where the task was submitted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::error::Error;

/// One finished statement, as the hook sees it.
#[derive(Debug)]
pub struct StatementEvent<'a> {
    /// The SQL text as written (placeholders, never bound values).
    pub sql: &'a str,
    /// The statement's first word in upper case (`SELECT`, `COMMIT`, ...).
    pub operation: &'a str,
    /// The database the connection is on.
    pub database: &'a str,
    /// From sending the statement to reading its last answer.
    pub duration: Duration,
    /// Rows returned (queries) or affected (writes); `None` when it failed
    /// or the statement reports none (`batch_execute`, `COMMIT`).
    pub rows: Option<u64>,
    /// The error, when it failed.
    pub error: Option<&'a Error>,
}

impl StatementEvent<'_> {
    /// What failed, for a metric label: the SQLSTATE of a server error
    /// (`23505`), else the kind of client-side error (`closed`,
    /// `query_timeout`, `client`); `None` when it succeeded.
    pub fn error_type(&self) -> Option<String> {
        self.error.map(error_type)
    }
}

/// The error type recorded for `error`: its SQLSTATE, else its kind.
fn error_type(error: &Error) -> String {
    match error.code() {
        Some(code) => code.to_owned(),
        None if error.is_query_timeout() => "query_timeout".to_owned(),
        None if error.is_closed() => "closed".to_owned(),
        None => "client".to_owned(),
    }
}

type Hook = Arc<dyn Fn(&StatementEvent<'_>) + Send + Sync>;

static HOOKED: AtomicBool = AtomicBool::new(false);
static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Calls `hook` after every statement of the process (all clients, pools
/// and mappers), on the coroutine that ran it: for metrics, as SeaORM's
/// `set_metric_callback` or diesel's `Instrumentation`. Replaces the hook
/// set before. Keep it quick and non-blocking (it runs on a green worker:
/// no OS-thread blocking); it must not run statements itself.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// static FAILED: AtomicU64 = AtomicU64::new(0);
/// green_postgres::set_statement_hook(|event| {
///     if event.error.is_some() {
///         FAILED.fetch_add(1, Ordering::Relaxed);
///     }
///     let _ = (event.operation, event.duration, event.rows);
/// });
/// # green_postgres::clear_statement_hook();
/// ```
pub fn set_statement_hook(hook: impl Fn(&StatementEvent<'_>) + Send + Sync + 'static) {
    *HOOK.write() = Some(Arc::new(hook));
    HOOKED.store(true, Ordering::Release);
}

/// Removes the hook of [`set_statement_hook`].
pub fn clear_statement_hook() {
    HOOKED.store(false, Ordering::Release);
    *HOOK.write() = None;
}

/// The operation name of `sql`: its first word, upper case (`SELECT`);
/// `WITH ...` stays `WITH`. Empty for an empty statement.
pub fn operation_name(sql: &str) -> String {
    let start = sql.trim_start();
    let end = start
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(start.len());
    start[..end].to_ascii_uppercase()
}

/// Runs one statement, `run`, observed: timed, reported to the hook and
/// (feature `tracing`) in a `db.statement` span. `rows` reads the row
/// count off a success. Runs `run` alone when nothing observes.
pub fn observe_statement<T>(
    database: &str,
    sql: &str,
    rows: impl FnOnce(&T) -> Option<u64>,
    run: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let hooked = HOOKED.load(Ordering::Acquire);
    #[cfg(feature = "tracing")]
    let span = traced::statement_span(database, sql);
    #[cfg(feature = "tracing")]
    let traced = !span.is_disabled();
    #[cfg(not(feature = "tracing"))]
    let traced = false;
    if !hooked && !traced {
        return run();
    }
    let started = Instant::now();
    let result = run();
    let duration = started.elapsed();
    let count = result.as_ref().ok().and_then(rows);
    let error = result.as_ref().err();
    #[cfg(feature = "tracing")]
    traced::finish(&span, duration, count, error);
    if hooked {
        let hook = HOOK.read().clone();
        if let Some(hook) = hook {
            hook(&StatementEvent {
                sql,
                operation: &operation_name(sql),
                database,
                duration,
                rows: count,
                error,
            });
        }
    }
    result
}

#[cfg(feature = "tracing")]
mod traced {
    use std::time::Duration;

    use tracing::field::Empty;
    use tracing::Span;

    use super::{error_type, operation_name};
    use crate::error::Error;

    /// The statement's span, opened now (disabled when no subscriber wants it).
    pub(super) fn statement_span(database: &str, sql: &str) -> Span {
        let parent = green::trace::current_span();
        let span = tracing::info_span!(
            target: "odm::sql",
            parent: &parent,
            "db.statement",
            otel.name = Empty,
            otel.kind = "client",
            db.system = "postgresql",
            db.namespace = database,
            db.operation.name = Empty,
            db.query.text = sql,
            db.response.returned_rows = Empty,
            db.client.operation.duration = Empty,
            db.response.status_code = Empty,
            error.type = Empty,
        );
        if !span.is_disabled() {
            let operation = operation_name(sql);
            span.record("otel.name", operation.as_str());
            span.record("db.operation.name", operation.as_str());
        }
        span
    }

    /// Records how the statement ended; the span closes when dropped.
    pub(super) fn finish(
        span: &Span,
        duration: Duration,
        rows: Option<u64>,
        error: Option<&Error>,
    ) {
        span.record("db.client.operation.duration", duration.as_secs_f64());
        if let Some(rows) = rows {
            span.record("db.response.returned_rows", rows);
        }
        if let Some(error) = error {
            let kind = error_type(error);
            span.record("error.type", kind.as_str());
            if error.code().is_some() {
                span.record("db.response.status_code", kind.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_is_the_first_word_upper_case() {
        assert_eq!(operation_name("  select 1"), "SELECT");
        assert_eq!(operation_name("WITH d AS (DELETE ...) SELECT"), "WITH");
        assert_eq!(operation_name("commit"), "COMMIT");
        assert_eq!(operation_name("(SELECT 1)"), "");
        assert_eq!(operation_name(""), "");
    }

    #[test]
    fn an_unobserved_statement_runs_as_is() {
        let answer = observe_statement("db", "SELECT 1", |_: &u64| Some(1), || Ok(7u64));
        assert_eq!(answer.unwrap(), 7);
    }
}
