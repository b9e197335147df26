//! The mirror: a driver error ([`pg::Error`]) becomes the ORM's
//! [`Error`] variant of the same name, with the same fields, so `?`
//! converts one into the other with nothing lost and a caller's `match` on
//! `odm::Error::RolledBack { .. }` sees a driver failure exactly as the
//! driver reported it. A driver variant this version of the ORM has no
//! twin for is carried whole in [`Error::Driver`].
//!
//! Its unit tests check that a mirrored error answers every predicate as
//! the driver's does, and what the predicates answer on the variants whose
//! code comes from a cause (`RolledBack`, `TransactionAborted`).

use green_postgres as pg;

use crate::error::error::Error;

impl From<pg::Error> for Error {
    /// The ORM variant of the same name, with the same fields. Cold: it
    /// runs only on a failure, so the success paths that convert with `?`
    /// stay small.
    #[cold]
    fn from(e: pg::Error) -> Error {
        match e {
            pg::Error::Config(x) => Error::Config(x),
            pg::Error::WrongContext { operation } => Error::WrongContext { operation },
            pg::Error::Connect { target, source } => Error::Connect { target, source },
            pg::Error::Io(x) => Error::Io(x),
            pg::Error::Closed => Error::Closed,
            pg::Error::Db(x) => Error::Db(x),
            pg::Error::Protocol(x) => Error::Protocol(x),
            pg::Error::Auth(x) => Error::Auth(x),
            pg::Error::TlsUnsupported => Error::TlsUnsupported,
            pg::Error::Tls {
                host,
                failure,
                detail,
            } => Error::Tls {
                host,
                failure,
                detail,
            },
            pg::Error::ChannelBindingRequired { host } => Error::ChannelBindingRequired { host },
            pg::Error::AuthMethodRefused { host, method } => {
                Error::AuthMethodRefused { host, method }
            }
            pg::Error::RolledBack { cause } => Error::RolledBack { cause },
            pg::Error::TransactionAborted { cause } => Error::TransactionAborted { cause },
            pg::Error::QueryTimeout { timeout } => Error::QueryTimeout { timeout },
            pg::Error::NotShareable {
                command,
                alternative,
            } => Error::NotShareable {
                command,
                alternative,
            },
            pg::Error::CopyNotAllowed(x) => Error::CopyNotAllowed(x),
            pg::Error::ToSql { index, source } => Error::ToSql { index, source },
            pg::Error::Encode(x) => Error::Encode(x),
            pg::Error::TooManyParameters { count } => Error::TooManyParameters { count },
            pg::Error::CommitOutcomeUnknown { cause } => Error::CommitOutcomeUnknown { cause },
            pg::Error::ParameterCount { expected, given } => {
                Error::ParameterCount { expected, given }
            }
            pg::Error::FromSql { column, source } => Error::FromSql { column, source },
            pg::Error::ColumnNotFound(x) => Error::ColumnNotFound(x),
            pg::Error::RowCount(x) => Error::RowCount(x),
            pg::Error::PoolTimeout { waited, size } => Error::PoolTimeout { waited, size },
            pg::Error::PoolClosed => Error::PoolClosed,
            pg::Error::NestedAcquire => Error::NestedAcquire,
            pg::Error::PoolHeldByTask { size } => Error::PoolHeldByTask { size },
            pg::Error::Green(x) => Error::Green(x),
            // pg::Error is non_exhaustive: a variant the driver adds before
            // this enum has its twin is carried whole.
            #[allow(unreachable_patterns)]
            other => Error::Driver(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use green_postgres::{self as pg, sqlstate, DbError};

    use crate::error::error::Error;

    fn db(code: &str) -> Box<DbError> {
        Box::new(DbError {
            severity: "ERROR".into(),
            code: code.into(),
            message: "it failed".into(),
            ..DbError::default()
        })
    }

    #[test]
    fn a_driver_error_becomes_the_orm_variant_of_the_same_name_with_the_same_answers() {
        let driver_errors = || {
            vec![
                pg::Error::Config("bad port".into()),
                pg::Error::WrongContext { operation: "query" },
                pg::Error::Closed,
                pg::Error::Db(db(sqlstate::UNIQUE_VIOLATION)),
                pg::Error::RolledBack {
                    cause: Some(db(sqlstate::SERIALIZATION_FAILURE)),
                },
                pg::Error::TransactionAborted {
                    cause: Some(db(sqlstate::DEADLOCK_DETECTED)),
                },
                pg::Error::QueryTimeout {
                    timeout: Duration::from_millis(5),
                },
                pg::Error::PoolTimeout {
                    waited: Duration::from_secs(1),
                    size: 2,
                },
                pg::Error::NestedAcquire,
                pg::Error::RowCount(3),
                pg::Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
            ]
        };
        for (driver, orm) in driver_errors().into_iter().zip(driver_errors()) {
            let orm = Error::from(orm);
            assert!(
                !matches!(orm, Error::Driver(_)),
                "{orm:?} has its own variant"
            );
            let (d, o) = (format!("{driver:?}"), format!("{orm:?}"));
            let variant = |s: &str| s.split(['(', ' ', '{']).next().unwrap_or("").to_owned();
            assert_eq!(variant(&d), variant(&o), "{d} became {o}");
            assert_eq!(driver.to_string(), orm.to_string());
            assert_eq!(driver.code(), orm.code());
            assert_eq!(driver.is_closed(), orm.is_closed());
            assert_eq!(driver.is_timeout(), orm.is_timeout());
            assert_eq!(driver.is_retryable(), orm.is_retryable());
            assert_eq!(driver.is_connection_error(), orm.is_connection_error());
            assert_eq!(driver.is_wrong_context(), orm.is_wrong_context());
        }
    }

    #[test]
    fn the_code_of_a_rolled_back_commit_is_its_causes() {
        let e = Error::RolledBack {
            cause: Some(db(sqlstate::FOREIGN_KEY_VIOLATION)),
        };
        assert_eq!(e.code(), Some(sqlstate::FOREIGN_KEY_VIOLATION));
        assert!(e.is_foreign_key_violation());
        assert!(!e.is_unique_violation());
        assert_eq!(Error::RolledBack { cause: None }.code(), None);
    }

    #[test]
    fn an_aborted_transaction_reports_25p02_but_retries_follow_its_cause() {
        let e = Error::TransactionAborted {
            cause: Some(db(sqlstate::SERIALIZATION_FAILURE)),
        };
        assert_eq!(e.code(), Some(sqlstate::IN_FAILED_SQL_TRANSACTION));
        assert!(e.is_serialization_failure());
        assert!(e.is_retryable());
        let by_duplicate = Error::TransactionAborted {
            cause: Some(db(sqlstate::UNIQUE_VIOLATION)),
        };
        assert!(!by_duplicate.is_retryable());
        assert!(!by_duplicate.is_unique_violation());
    }

    #[test]
    fn serialization_failures_and_deadlocks_are_retryable() {
        let failure = Error::Db(db(sqlstate::SERIALIZATION_FAILURE));
        assert!(failure.is_serialization_failure() && failure.is_retryable());
        let deadlock = Error::RolledBack {
            cause: Some(db(sqlstate::DEADLOCK_DETECTED)),
        };
        assert!(deadlock.is_deadlock() && deadlock.is_retryable());
        assert!(!Error::Db(db(sqlstate::CHECK_VIOLATION)).is_retryable());
        assert!(!Error::Closed.is_retryable());
    }

    #[test]
    fn constraint_predicates_answer_their_own_code() {
        assert!(Error::Db(db(sqlstate::UNIQUE_VIOLATION)).is_unique_violation());
        assert!(Error::Db(db(sqlstate::NOT_NULL_VIOLATION)).is_not_null_violation());
        assert!(Error::Db(db(sqlstate::CHECK_VIOLATION)).is_check_violation());
        assert!(!Error::Db(db(sqlstate::CHECK_VIOLATION)).is_not_null_violation());
        assert!(!Error::Closed.is_unique_violation());
    }

    #[test]
    fn pool_and_query_timeouts_are_timeouts_and_a_server_cancel_is_not() {
        let pool = Error::PoolTimeout {
            waited: Duration::from_secs(1),
            size: 2,
        };
        let query = Error::QueryTimeout {
            timeout: Duration::from_secs(1),
        };
        assert!(pool.is_timeout() && query.is_timeout());
        let canceled = Error::Db(db(sqlstate::QUERY_CANCELED));
        assert!(canceled.is_query_canceled());
        assert!(!canceled.is_timeout());
    }

    #[test]
    fn a_shutdown_closes_the_connection_and_a_statement_error_does_not() {
        assert!(Error::Db(db(sqlstate::ADMIN_SHUTDOWN)).is_closed());
        assert!(Error::Closed.is_closed());
        assert!(!Error::Db(db(sqlstate::UNIQUE_VIOLATION)).is_closed());
    }

    #[test]
    fn failing_to_connect_is_a_connection_error_and_a_pool_timeout_is_not() {
        let refused = Error::Connect {
            target: "127.0.0.1:1".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(refused.is_connection_error());
        assert!(!refused.is_closed());
        assert!(Error::Db(db(sqlstate::INVALID_PASSWORD)).is_connection_error());
        assert!(Error::Db(db(sqlstate::TOO_MANY_CONNECTIONS)).is_connection_error());
        assert!(
            Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).is_connection_error()
        );
        assert!(!Error::Db(db(sqlstate::UNIQUE_VIOLATION)).is_connection_error());
        assert!(!Error::NestedAcquire.is_connection_error());
    }
}
