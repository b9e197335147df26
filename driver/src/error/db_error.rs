//! [`DbError`]: what the server said when it reported an error or a notice,
//! and the questions a caller asks of it.
//!
//! The driver fills it from an `ErrorResponse` or `NoticeResponse`
//! (`server_error.rs`); [`crate::Error::Db`], [`crate::Error::RolledBack`]
//! and [`crate::Error::TransactionAborted`] carry it. The predicates compare
//! its SQLSTATE with the named codes of [`crate::sqlstate`].

use std::error::Error as StdError;
use std::fmt;

use crate::error::sqlstate;

/// The fields of a server error or notice (`ErrorResponse` / `NoticeResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbError {
    /// `ERROR`, `FATAL`, `PANIC`, or for notices `WARNING`, `NOTICE`, ...
    pub severity: String,
    /// SQLSTATE, five characters; see [`crate::sqlstate`] for named codes.
    pub code: String,
    /// The primary message.
    pub message: String,
    /// Optional secondary message with more detail.
    pub detail: Option<String>,
    /// Optional suggestion what to do about it.
    pub hint: Option<String>,
    /// 1-based character position in the query text.
    pub position: Option<u32>,
    /// Schema, table, column, constraint named by the error, if any.
    pub schema: Option<String>,
    /// Table named by the error.
    pub table: Option<String>,
    /// Column named by the error.
    pub column: Option<String>,
    /// Constraint named by the error.
    pub constraint: Option<String>,
}

impl DbError {
    /// The five-character SQLSTATE, e.g. [`sqlstate::UNIQUE_VIOLATION`].
    pub fn code(&self) -> &str {
        &self.code
    }

    /// True for a duplicate key ([`sqlstate::UNIQUE_VIOLATION`]);
    /// [`DbError::constraint`] names the constraint.
    pub fn is_unique_violation(&self) -> bool {
        self.code == sqlstate::UNIQUE_VIOLATION
    }

    /// True for a missing or still-referenced row
    /// ([`sqlstate::FOREIGN_KEY_VIOLATION`]).
    pub fn is_foreign_key_violation(&self) -> bool {
        self.code == sqlstate::FOREIGN_KEY_VIOLATION
    }

    /// True for a `NULL` in a `NOT NULL` column
    /// ([`sqlstate::NOT_NULL_VIOLATION`]); [`DbError::column`] names it.
    pub fn is_not_null_violation(&self) -> bool {
        self.code == sqlstate::NOT_NULL_VIOLATION
    }

    /// True for a failed `CHECK` constraint ([`sqlstate::CHECK_VIOLATION`]).
    pub fn is_check_violation(&self) -> bool {
        self.code == sqlstate::CHECK_VIOLATION
    }

    /// True for a serialization failure
    /// ([`sqlstate::SERIALIZATION_FAILURE`]).
    pub fn is_serialization_failure(&self) -> bool {
        self.code == sqlstate::SERIALIZATION_FAILURE
    }

    /// True when this transaction was a deadlock's victim
    /// ([`sqlstate::DEADLOCK_DETECTED`]).
    pub fn is_deadlock(&self) -> bool {
        self.code == sqlstate::DEADLOCK_DETECTED
    }

    /// True when retrying the whole transaction may succeed: a
    /// serialization failure or a deadlock.
    pub fn is_retryable(&self) -> bool {
        sqlstate::is_retryable(&self.code)
    }

    /// True when a cancel request or `statement_timeout` stopped the
    /// statement ([`sqlstate::QUERY_CANCELED`]).
    pub fn is_query_canceled(&self) -> bool {
        self.code == sqlstate::QUERY_CANCELED
    }

    /// True when the server ended the session (shutdown, crash recovery,
    /// not accepting connections yet): the connection cannot be used again.
    pub fn is_session_ending(&self) -> bool {
        sqlstate::is_session_ending(&self.code)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.severity.to_lowercase(),
            self.code,
            self.message
        )?;
        if let Some(detail) = &self.detail {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl StdError for DbError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str) -> DbError {
        DbError {
            severity: "ERROR".into(),
            code: code.into(),
            message: "it failed".into(),
            ..DbError::default()
        }
    }

    type Predicate = fn(&DbError) -> bool;

    #[test]
    fn each_predicate_answers_its_own_code_only() {
        let predicates: [(&str, Predicate); 7] = [
            (sqlstate::UNIQUE_VIOLATION, DbError::is_unique_violation),
            (
                sqlstate::FOREIGN_KEY_VIOLATION,
                DbError::is_foreign_key_violation,
            ),
            (sqlstate::NOT_NULL_VIOLATION, DbError::is_not_null_violation),
            (sqlstate::CHECK_VIOLATION, DbError::is_check_violation),
            (
                sqlstate::SERIALIZATION_FAILURE,
                DbError::is_serialization_failure,
            ),
            (sqlstate::DEADLOCK_DETECTED, DbError::is_deadlock),
            (sqlstate::QUERY_CANCELED, DbError::is_query_canceled),
        ];
        for (code, _) in predicates {
            for (other, predicate) in predicates {
                assert_eq!(predicate(&error(code)), code == other, "{other} on {code}");
            }
        }
    }

    #[test]
    fn serialization_failures_and_deadlocks_are_retryable_and_nothing_else() {
        assert!(error(sqlstate::SERIALIZATION_FAILURE).is_retryable());
        assert!(error(sqlstate::DEADLOCK_DETECTED).is_retryable());
        assert!(!error(sqlstate::UNIQUE_VIOLATION).is_retryable());
        assert!(!error(sqlstate::LOCK_NOT_AVAILABLE).is_retryable());
    }

    #[test]
    fn a_server_shutdown_ends_the_session() {
        assert!(error(sqlstate::ADMIN_SHUTDOWN).is_session_ending());
        assert!(!error(sqlstate::QUERY_CANCELED).is_session_ending());
    }

    #[test]
    fn the_display_keeps_code_detail_and_hint() {
        let e = DbError {
            detail: Some("Key (id)=(1) already exists.".into()),
            hint: Some("pick another".into()),
            ..error(sqlstate::UNIQUE_VIOLATION)
        };
        assert_eq!(e.code(), "23505");
        assert_eq!(
            e.to_string(),
            "error 23505: it failed (detail: Key (id)=(1) already exists.) (hint: pick another)"
        );
    }
}
