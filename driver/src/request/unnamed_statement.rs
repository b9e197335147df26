//! Statements run unnamed in one round trip, the path of
//! `statement_cache=false` (what PgBouncer before 1.21 in transaction
//! mode requires): no named statement is ever created on the server.
//!
//! Each run is one request, as pgjdbc sends unnamed statements:
//!
//! ```text
//! Parse("", sql, parameter types) + Bind + Describe(portal) + Execute + Sync
//! ```
//!
//! Everything up to `Sync` reaches one server connection (PgBouncer in
//! transaction mode switches server connections only between requests
//! that end outside a transaction), so the unnamed statement parsed at
//! the start is the one bound and run.
//!
//! Encoding the parameters needs their types, so the client keeps the
//! *description* of each SQL text (parameter types and result columns;
//! learned once by a `Parse`/`Describe` round trip the first time it is
//! seen) in a bounded per-connection cache — only client memory, nothing
//! on the server. The description can go stale (the schema changed since);
//! two things keep that from ever mis-decoding a value:
//!
//! - `Parse` declares the cached parameter types, so the server reads each
//!   value as the type it was encoded as, and coerces it to what the
//!   statement now needs or fails with a clear error;
//! - `Describe(portal)` makes the server send the `RowDescription` of
//!   *this* run before its rows, and the rows are decoded with it; when it
//!   differs from the cached columns the cache takes the new ones. It
//!   costs the server a few dozen bytes a column and the client a
//!   comparison (no allocation while the columns stay the same).
//!
//! An error that says the description went stale (a parameter value that
//! does not fit the cached type, or a server error of class 42 such as
//! `operator does not exist`) drops the description; the client then
//! learns it again and, when that is safe, runs the statement once more.

use std::sync::Arc;

use postgres_protocol::message::frontend;
use postgres_types::Type;

use crate::connection::connection::Connection;
use crate::error::sqlstate;
use crate::error::Error;
use crate::request::request::{encode_bind, run_extended, Access, Completion};
use crate::request::row_sink::RowSink;
use crate::request::statement_log::{log_statement, start_clock};
use crate::wire::bind_execute::Param;
use crate::wire::statement::{Column, Statement};

/// SQLSTATE class 42, `syntax_error_or_access_rule_violation`.
const SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: &str = "42";

/// How an unnamed run ended.
#[derive(Debug)]
pub(crate) struct UnnamedCompletion {
    /// The row count and whether the statements were forgotten.
    pub(crate) done: Completion,
    /// The result columns the server described for this run, when they
    /// differ from the statement's cached ones (the schema changed).
    pub(crate) changed_columns: Option<Arc<[Column]>>,
}

/// Runs `statement` (an unnamed one: a cached description) in one round
/// trip: `Parse` with its parameter types, `Bind`, `Describe` of the
/// portal, `Execute`, `Sync` (shared with other reads when `access`
/// allows: every read of a group parses its own unnamed statement before
/// binding it). Rows are decoded with the columns the server
/// describes for this very run.
pub(crate) fn run(
    conn: &Arc<Connection>,
    statement: &Statement,
    params: &[Param<'_>],
    rows: RowSink<'_>,
    access: Access,
) -> Result<UnnamedCompletion, Error> {
    debug_assert!(statement.is_unnamed());
    statement.check_param_count(params.len())?;
    let types = statement.params();
    let started = start_clock(conn);
    let cached = statement.shared_columns();
    let mut columns = cached.clone();
    let outcome = run_extended(conn, access, &mut columns, rows, |buf| {
        frontend::parse("", statement.sql(), types.iter().map(Type::oid), buf)?;
        encode_bind(statement, params, buf)?;
        frontend::describe(b'P', "", buf)?;
        frontend::execute("", 0, buf)?;
        Ok(())
    });
    if let Some(started) = started {
        let rows = outcome.as_ref().map(|done| done.rows);
        log_statement(conn, statement.sql(), started, rows, None);
    }
    let done = outcome?;
    let changed_columns = (!Arc::ptr_eq(&columns, cached)).then_some(columns);
    Ok(UnnamedCompletion {
        done,
        changed_columns,
    })
}

/// True for an error that may come from a stale description: a value the
/// cached parameter type cannot encode (the column's type changed and the
/// caller passes the new one), or a server error of class 42 (syntax error
/// or access rule violation: `operator does not exist`, `column ... is of
/// type ... but expression is of type ...`, an undefined column).
pub(crate) fn may_be_stale_description(e: &Error) -> bool {
    match e {
        Error::ToSql { .. } => true,
        _ => e
            .code()
            .is_some_and(|code| sqlstate::class(code) == SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_description_errors_are_class_42_and_encoding_failures() {
        let to_sql = Error::ToSql {
            index: 1,
            source: "wrong type".into(),
        };
        assert!(may_be_stale_description(&to_sql));
        let db = |code: &str| {
            Error::Db(Box::new(crate::error::DbError {
                code: code.to_owned(),
                ..Default::default()
            }))
        };
        assert!(may_be_stale_description(&db("42883")));
        assert!(may_be_stale_description(&db("42804")));
        assert!(!may_be_stale_description(&db(
            crate::error::sqlstate::UNIQUE_VIOLATION
        )));
        assert!(!may_be_stale_description(&db("22P02")));
        assert!(!may_be_stale_description(&Error::RowCount(2)));
        assert!(!may_be_stale_description(&Error::ParameterCount {
            expected: 1,
            given: 2
        }));
    }
}
