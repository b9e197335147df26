//! Named SQLSTATE codes: the ones odm itself acts on and the ones a caller
//! most often does.
//!
//! PostgreSQL reports every error with a five-character SQLSTATE (appendix A
//! of its manual); the first two characters are the class. The constants
//! here carry PostgreSQL's own condition names, upper-cased, so
//! `sqlstate::UNIQUE_VIOLATION` is the `unique_violation` of the manual and
//! of PL/pgSQL's `EXCEPTION WHEN`. Compare them with [`crate::Error::code`]
//! or [`crate::DbError::code`], or use the predicates on those types
//! ([`crate::Error::is_unique_violation`], [`crate::Error::is_retryable`],
//! ...), which are built on the functions at the end of this module.
//!
//! ```
//! use green_postgres::sqlstate;
//!
//! fn explain(err: &green_postgres::Error) -> &'static str {
//!     match err.code() {
//!         Some(sqlstate::UNIQUE_VIOLATION) => "already taken",
//!         Some(sqlstate::LOCK_NOT_AVAILABLE) => "busy, try later",
//!         _ => "failed",
//!     }
//! }
//! # let _ = explain;
//! ```
//!
//! A code not listed here is still reported: `code()` returns whatever the
//! server sent.

/// Class 0A, `feature_not_supported`; also what a cached plan whose result
/// type changed under it fails with ("cached plan must not change result
/// type").
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";

/// Class 08, `connection_exception`: the connection failed.
pub const CONNECTION_EXCEPTION: &str = "08000";
/// Class 08, `connection_failure`.
pub const CONNECTION_FAILURE: &str = "08006";
/// Class 08, `protocol_violation`: the server did not understand a message.
pub const PROTOCOL_VIOLATION: &str = "08P01";

/// Class 22, `division_by_zero`.
pub const DIVISION_BY_ZERO: &str = "22012";
/// Class 22, `invalid_text_representation`: a value does not parse as its
/// type (e.g. `'x'::int`).
pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";

/// Class 23, `not_null_violation`: a `NOT NULL` column got `NULL`.
pub const NOT_NULL_VIOLATION: &str = "23502";
/// Class 23, `foreign_key_violation`: a referenced row is missing, or a
/// referenced row is still referenced.
pub const FOREIGN_KEY_VIOLATION: &str = "23503";
/// Class 23, `unique_violation`: a duplicate key for a primary key or
/// unique constraint.
pub const UNIQUE_VIOLATION: &str = "23505";
/// Class 23, `check_violation`: a `CHECK` constraint failed.
pub const CHECK_VIOLATION: &str = "23514";
/// Class 23, `exclusion_violation`: an `EXCLUDE` constraint failed.
pub const EXCLUSION_VIOLATION: &str = "23P01";

/// Class 25, `active_sql_transaction`: the command cannot run inside a
/// transaction block (e.g. `CREATE DATABASE`).
pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
/// Class 25, `read_only_sql_transaction`: a write in a read-only
/// transaction or on a hot standby.
pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
/// Class 25, `in_failed_sql_transaction`: the transaction is aborted and
/// ignores commands until it is rolled back
/// ([`crate::Error::TransactionAborted`] reports it without sending).
pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";

/// Class 26, `invalid_sql_statement_name`: no prepared statement of that
/// name (e.g. it was deallocated, or a pooler moved the session).
pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";

/// Class 28, `invalid_authorization_specification`: e.g. no such role, or
/// no `pg_hba.conf` entry for it.
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
/// Class 28, `invalid_password`: the password (or SCRAM proof) was wrong.
pub const INVALID_PASSWORD: &str = "28P01";

/// Class 3D, `invalid_catalog_name`: the database does not exist.
pub const INVALID_CATALOG_NAME: &str = "3D000";

/// Class 40, `serialization_failure`: a concurrent transaction made this
/// one impossible to serialize; retrying the whole transaction may succeed.
pub const SERIALIZATION_FAILURE: &str = "40001";
/// Class 40, `deadlock_detected`: this transaction was chosen as the
/// deadlock victim; retrying the whole transaction may succeed.
pub const DEADLOCK_DETECTED: &str = "40P01";

/// Class 42, `syntax_error`.
pub const SYNTAX_ERROR: &str = "42601";
/// Class 42, `undefined_column`.
pub const UNDEFINED_COLUMN: &str = "42703";
/// Class 42, `undefined_table`: no such table, view or sequence.
pub const UNDEFINED_TABLE: &str = "42P01";
/// Class 42, `duplicate_database`: `CREATE DATABASE` of an existing name.
pub const DUPLICATE_DATABASE: &str = "42P04";
/// Class 42, `duplicate_table`: `CREATE TABLE` of an existing name.
pub const DUPLICATE_TABLE: &str = "42P07";

/// Class 53, `insufficient_resources`.
pub const INSUFFICIENT_RESOURCES: &str = "53000";
/// Class 53, `disk_full`.
pub const DISK_FULL: &str = "53100";
/// Class 53, `out_of_memory`.
pub const OUT_OF_MEMORY: &str = "53200";
/// Class 53, `too_many_connections`: `max_connections` (or a role's or
/// database's connection limit) is reached.
pub const TOO_MANY_CONNECTIONS: &str = "53300";

/// Class 55, `lock_not_available`: `NOWAIT` or `lock_timeout` gave up on a
/// lock.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Class 57, `query_canceled`: a cancel request
/// ([`crate::CancelToken`]) or `statement_timeout` stopped the statement.
pub const QUERY_CANCELED: &str = "57014";
/// Class 57, `admin_shutdown`: the server is shutting down or an
/// administrator ended this session (`pg_terminate_backend`).
pub const ADMIN_SHUTDOWN: &str = "57P01";
/// Class 57, `crash_shutdown`: another server process crashed and this
/// session was ended while the server recovers.
pub const CRASH_SHUTDOWN: &str = "57P02";
/// Class 57, `cannot_connect_now`: the server is starting up, shutting
/// down or in recovery and accepts no connections yet.
pub const CANNOT_CONNECT_NOW: &str = "57P03";

/// The class of `code`: its first two characters (`"23"` for
/// `"23505"`); the whole code when it is shorter.
pub fn class(code: &str) -> &str {
    code.get(..2).unwrap_or(code)
}

/// True for a constraint violation: class 23, `integrity_constraint_violation`
/// (not null, foreign key, unique, check, exclusion).
pub fn is_integrity_violation(code: &str) -> bool {
    class(code) == "23"
}

/// True when retrying the whole transaction may succeed: a serialization
/// failure or a deadlock. (The rest of class 40, `transaction_rollback`,
/// says nothing about a retry: an integrity violation at commit, an unknown
/// completion.)
pub fn is_retryable(code: &str) -> bool {
    matches!(code, SERIALIZATION_FAILURE | DEADLOCK_DETECTED)
}

/// True for a code that ends the server session: the connection it came on
/// can no longer be used (`admin_shutdown`, `crash_shutdown`,
/// `cannot_connect_now`).
pub fn is_session_ending(code: &str) -> bool {
    matches!(code, ADMIN_SHUTDOWN | CRASH_SHUTDOWN | CANNOT_CONNECT_NOW)
}

/// True when a connection attempt was refused for a reason that says "not
/// now" rather than "no": insufficient resources (class 53: too many
/// connections, out of memory, disk full) or a server shutting down or
/// starting up. Trying again later may succeed.
pub fn is_transient_refusal(code: &str) -> bool {
    class(code) == "53" || is_session_ending(code)
}

/// True for a failure to establish the session: a connection exception
/// (class 08), a rejected authorization or password (class 28) or a
/// database that does not exist (`invalid_catalog_name`).
pub fn is_connection_refusal(code: &str) -> bool {
    matches!(class(code), "08" | "28") || code == INVALID_CATALOG_NAME
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_is_five_characters_of_digits_and_capitals() {
        for code in [
            FEATURE_NOT_SUPPORTED,
            CONNECTION_EXCEPTION,
            CONNECTION_FAILURE,
            PROTOCOL_VIOLATION,
            DIVISION_BY_ZERO,
            INVALID_TEXT_REPRESENTATION,
            NOT_NULL_VIOLATION,
            FOREIGN_KEY_VIOLATION,
            UNIQUE_VIOLATION,
            CHECK_VIOLATION,
            EXCLUSION_VIOLATION,
            ACTIVE_SQL_TRANSACTION,
            READ_ONLY_SQL_TRANSACTION,
            IN_FAILED_SQL_TRANSACTION,
            INVALID_SQL_STATEMENT_NAME,
            INVALID_AUTHORIZATION_SPECIFICATION,
            INVALID_PASSWORD,
            INVALID_CATALOG_NAME,
            SERIALIZATION_FAILURE,
            DEADLOCK_DETECTED,
            SYNTAX_ERROR,
            UNDEFINED_COLUMN,
            UNDEFINED_TABLE,
            DUPLICATE_DATABASE,
            DUPLICATE_TABLE,
            INSUFFICIENT_RESOURCES,
            DISK_FULL,
            OUT_OF_MEMORY,
            TOO_MANY_CONNECTIONS,
            LOCK_NOT_AVAILABLE,
            QUERY_CANCELED,
            ADMIN_SHUTDOWN,
            CRASH_SHUTDOWN,
            CANNOT_CONNECT_NOW,
        ] {
            assert_eq!(code.len(), 5, "{code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
                "{code}"
            );
        }
    }

    #[test]
    fn the_class_is_the_first_two_characters() {
        assert_eq!(class(UNIQUE_VIOLATION), "23");
        assert_eq!(class(CANNOT_CONNECT_NOW), "57");
        assert_eq!(class("4"), "4");
    }

    #[test]
    fn only_serialization_failures_and_deadlocks_are_retryable() {
        assert!(is_retryable(SERIALIZATION_FAILURE));
        assert!(is_retryable(DEADLOCK_DETECTED));
        assert!(!is_retryable(UNIQUE_VIOLATION));
        assert!(!is_retryable(QUERY_CANCELED));
        assert!(!is_retryable("40002"));
    }

    #[test]
    fn constraint_violations_are_class_23() {
        for code in [
            NOT_NULL_VIOLATION,
            FOREIGN_KEY_VIOLATION,
            UNIQUE_VIOLATION,
            CHECK_VIOLATION,
            EXCLUSION_VIOLATION,
        ] {
            assert!(is_integrity_violation(code), "{code}");
        }
        assert!(!is_integrity_violation(SERIALIZATION_FAILURE));
    }

    #[test]
    fn shutdowns_end_the_session_and_are_transient_refusals() {
        for code in [ADMIN_SHUTDOWN, CRASH_SHUTDOWN, CANNOT_CONNECT_NOW] {
            assert!(is_session_ending(code), "{code}");
            assert!(is_transient_refusal(code), "{code}");
        }
        assert!(!is_session_ending(QUERY_CANCELED));
    }

    #[test]
    fn insufficient_resources_are_transient_and_a_bad_password_is_not() {
        for code in [TOO_MANY_CONNECTIONS, OUT_OF_MEMORY, DISK_FULL, "53400"] {
            assert!(is_transient_refusal(code), "{code}");
        }
        assert!(!is_transient_refusal(INVALID_PASSWORD));
        assert!(!is_transient_refusal(INVALID_CATALOG_NAME));
    }

    #[test]
    fn authentication_and_missing_databases_are_connection_refusals() {
        for code in [
            INVALID_PASSWORD,
            INVALID_AUTHORIZATION_SPECIFICATION,
            INVALID_CATALOG_NAME,
            CONNECTION_FAILURE,
        ] {
            assert!(is_connection_refusal(code), "{code}");
        }
        assert!(!is_connection_refusal(UNIQUE_VIOLATION));
    }
}
