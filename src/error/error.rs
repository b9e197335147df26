//! The ORM's caller-facing error type, [`Error`].
//!
//! It has a variant of the same name and fields for every variant of the
//! driver's error ([`pg::Error`]), so code that matches
//! `odm::Error::RolledBack { .. }` or `odm::Error::PoolTimeout { .. }` sees
//! a driver failure exactly as the driver reported it, and `?` converts one
//! into the other with nothing lost (`From<pg::Error>`, variant for
//! variant, is in `from_driver.rs`); the ORM adds its own variants
//! (`Mapper`, `Migration`, `Query`, `InvalidChoice`, `Testing`).
//!
//! Every variant is something a caller can act on; the predicates
//! ([`Error::code`], [`Error::is_unique_violation`], [`Error::is_retryable`],
//! [`Error::is_closed`], [`Error::is_timeout`], ...) answer the common
//! questions without a `match`, and [`crate::sqlstate`] names the codes.
//! Messages are lower-case, one clause, and never contain a password.
//!
//! | layer | variants |
//! |---|---|
//! | the driver and its pool ([`pg::Error`]) | `WrongContext`, `Config`, `Connect`, `Auth`, `AuthMethodRefused`, `ChannelBindingRequired`, `Tls`, `TlsUnsupported`, `Io`, `Closed`, `Protocol`, `CommitOutcomeUnknown`, `Db`, `QueryTimeout`, `CopyNotAllowed`, `Encode`, `TooManyParameters`, `ParameterCount`, `ToSql`, `FromSql`, `ColumnNotFound`, `RowCount`, `RolledBack`, `TransactionAborted`, `PoolTimeout`, `PoolClosed`, `NestedAcquire`, `PoolHeldByTask`, `NotShareable`, `Green` |
//! | a driver variant this version of the ORM has no twin for yet | `Driver` |
//! | ORM (mapper, session, query, types) | `Mapper`, `Migration`, `Query`, `InvalidChoice` |
//! | `testing` | `Testing` |

use std::time::Duration;

use green_postgres::{self as pg, DbError, TlsFailure};

use green_postgres::sqlstate;
pub use green_postgres::BoxError;

pub use green_postgres::WRONG_CONTEXT;

/// Everything that can go wrong in odm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A database URL or connection setting is malformed; the message names
    /// the offending part (never the password).
    /// The driver's [`pg::Error::Config`].
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Database work was attempted outside a green worker (a plain OS
    /// thread, such as `main`). Nothing was blocked and nothing was sent.
    /// The driver's [`pg::Error::WrongContext`].
    #[error("acquire in main greenlet: {operation} must run on a green worker (submit it to a green::GreenPool)")]
    WrongContext {
        /// What was attempted, e.g. `"connect"` or `"pool acquire"`.
        operation: &'static str,
    },

    /// A new connection could not be opened (DNS, refused, timed out).
    /// The driver's [`pg::Error::Connect`].
    #[error("could not connect to {target}: {source}")]
    Connect {
        /// `host:port` or the unix socket path that was tried.
        target: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An I/O error on an established connection; the connection is closed.
    /// The driver's [`pg::Error::Io`].
    #[error("i/o error on the connection: {0}")]
    Io(#[from] std::io::Error),

    /// The connection was closed (by us, the server, or an earlier error).
    /// The driver's [`pg::Error::Closed`].
    #[error("connection closed")]
    Closed,

    /// The server reported an error. Carries SQLSTATE, message, detail, hint.
    /// The driver's [`pg::Error::Db`].
    #[error("{0}")]
    Db(Box<DbError>),

    /// The server sent something the protocol does not allow here.
    /// The driver's [`pg::Error::Protocol`].
    #[error("protocol error: {0}")]
    Protocol(String),

    /// Authentication could not proceed (unsupported method, missing
    /// password). A rejected password is a [`Error::Db`] with SQLSTATE 28P01.
    /// The driver's [`pg::Error::Auth`].
    #[error("authentication failed: {0}")]
    Auth(String),

    /// TLS was required but this build does not speak TLS (built without
    /// the `tls` feature).
    /// The driver's [`pg::Error::TlsUnsupported`].
    #[error("tls is not supported by this build: use sslmode=disable or sslmode=prefer")]
    TlsUnsupported,

    /// TLS could not be set up with the server as `sslmode` demands; the
    /// message names the host and what failed (never a key or password).
    /// The driver's [`pg::Error::Tls`].
    #[error("tls with {host} failed: {failure}: {detail}")]
    Tls {
        /// `host:port` of the server.
        host: String,
        /// What failed.
        failure: TlsFailure,
        /// The TLS library's own words, or a file path.
        detail: String,
    },

    /// `channel_binding=require` and the server did not offer (or the
    /// connection cannot do) SCRAM-SHA-256-PLUS over TLS; nothing was sent.
    /// The driver's [`pg::Error::ChannelBindingRequired`].
    #[error("channel binding is required but {host} did not offer it (needs tls and scram-sha-256-plus)")]
    ChannelBindingRequired {
        /// `host:port` of the server.
        host: String,
    },

    /// The server asked for an authentication method that `require_auth`
    /// refuses (e.g. cleartext `password` under `require_auth=scram-sha-256`);
    /// no password was sent.
    /// The driver's [`pg::Error::AuthMethodRefused`].
    #[error("{host} asked for {method} authentication, which require_auth refuses")]
    AuthMethodRefused {
        /// `host:port` of the server.
        host: String,
        /// The method the server asked for: `password`, `md5`,
        /// `scram-sha-256`, `gss`, `sspi`, `none`, ...
        method: &'static str,
    },

    /// `COMMIT` did not commit: the server rolled the transaction back
    /// (answered `COMMIT` with the tag `ROLLBACK` because an earlier
    /// statement failed, or failed the commit itself: a deferred constraint,
    /// a serialization failure). Nothing of the transaction is stored.
    /// The driver's [`pg::Error::RolledBack`].
    #[error("the transaction was rolled back, not committed{}", rolled_back_cause(.cause))]
    RolledBack {
        /// The error that doomed the transaction: the first failed
        /// statement's, or the commit's own; `None` when unknown (the
        /// failure was seen by a statement whose error was not kept).
        cause: Option<Box<DbError>>,
    },

    /// A statement was refused without being sent because an earlier
    /// statement of the same transaction failed: PostgreSQL ignores every
    /// command of an aborted transaction (SQLSTATE 25P02) until it is rolled
    /// back, whole or to a savepoint. `cause` is that first failure, which
    /// the server's own 25P02 does not name. [`Error::code`] is
    /// [`sqlstate::IN_FAILED_SQL_TRANSACTION`],
    /// as the server would have answered; [`Error::is_retryable`] follows
    /// the cause.
    /// The driver's [`pg::Error::TransactionAborted`].
    #[error("the transaction is aborted, statement not sent{}", aborted_cause(.cause))]
    TransactionAborted {
        /// The error of the statement that aborted the transaction; `None`
        /// when it was not seen (e.g. a statement run on the bare client).
        cause: Option<Box<DbError>>,
    },

    /// A request got no complete answer within `query_timeout`. The server
    /// was asked to cancel it; the connection is closed if it did not
    /// answer promptly after that, so a late answer can never reach
    /// another request. The statement may or may not have run.
    /// The driver's [`pg::Error::QueryTimeout`].
    #[error("query timed out after {} ms (query_timeout)", .timeout.as_millis())]
    QueryTimeout {
        /// The deadline that passed.
        timeout: Duration,
    },

    /// A statement that would leave state on a shared connection
    /// (transaction control, `COPY`, `LISTEN`, session `SET`, `PREPARE`,
    /// `DECLARE`, `DISCARD`, ...) was refused before it was sent; the
    /// message names what to use instead.
    /// The driver's [`pg::Error::NotShareable`].
    #[error("`{command}` is not allowed on a shared connection: {alternative}")]
    NotShareable {
        /// The statement's leading keyword(s), upper-case.
        command: String,
        /// What to use instead.
        alternative: &'static str,
    },

    /// A `COPY` reached a query method (`query`, `execute`, ...); it was
    /// ended with `CopyFail` and the connection is still usable.
    /// The driver's [`pg::Error::CopyNotAllowed`].
    #[error("{0}")]
    CopyNotAllowed(&'static str),

    /// A parameter could not be encoded.
    /// The driver's [`pg::Error::ToSql`].
    #[error("cannot encode parameter ${index}: {source}")]
    ToSql {
        /// 1-based parameter position, as in `$1`.
        index: usize,
        /// Why the value could not be encoded.
        #[source]
        source: BoxError,
    },

    /// A statement was run with the wrong number of parameters.
    /// The driver's [`pg::Error::Encode`].
    #[error("request not sent: {0}")]
    Encode(String),

    /// The driver's [`pg::Error::TooManyParameters`].
    #[error("a statement takes at most 65535 parameters, {count} were given")]
    TooManyParameters {
        /// How many values were passed.
        count: usize,
    },

    /// The driver's [`pg::Error::CommitOutcomeUnknown`]: the connection
    /// broke after a `COMMIT` (or an atomic batch, or an autocommit write)
    /// was sent and before its answer; it may or may not be stored.
    #[error("the connection broke after the request was sent and before its answer, so it may or may not have committed: {cause}")]
    CommitOutcomeUnknown {
        /// How the connection broke.
        cause: Box<pg::Error>,
    },

    /// The driver's [`pg::Error::ParameterCount`].
    #[error("the statement takes {expected} parameters but {given} were given")]
    ParameterCount {
        /// How many `$n` placeholders the statement has.
        expected: usize,
        /// How many values were passed.
        given: usize,
    },

    /// A column value could not be decoded into the requested Rust type.
    /// The driver's [`pg::Error::FromSql`].
    #[error("cannot decode column `{column}`: {source}")]
    FromSql {
        /// Column name.
        column: String,
        /// Why the value could not be decoded.
        #[source]
        source: BoxError,
    },

    /// A row has no column with this name, or the index is out of range.
    /// The driver's [`pg::Error::ColumnNotFound`].
    #[error("no column `{0}` in the row")]
    ColumnNotFound(String),

    /// The statement returned a different number of rows than required
    /// (`query_one`, `Query::one`).
    /// The driver's [`pg::Error::RowCount`].
    #[error("expected exactly one row, got {0}")]
    RowCount(usize),

    /// No connection became free within the pool timeout.
    /// The driver's [`pg::Error::PoolTimeout`].
    #[error("pool timed out after {waited:?} waiting for a connection (size: {size})")]
    PoolTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// The pool's maximum size.
        size: usize,
    },

    /// The pool was closed; no more connections are handed out.
    /// The driver's [`pg::Error::PoolClosed`].
    #[error("pool is closed")]
    PoolClosed,

    /// The task already holds a connection from this pool and asked for a
    /// second one, which would deadlock a full pool.
    /// The driver's [`pg::Error::NestedAcquire`].
    #[error("nested acquire: this task already holds a connection from this pool")]
    NestedAcquire,

    /// The task asked for one more connection (an independent transaction,
    /// [`Pool::acquire_another`](crate::pool::Pool::acquire_another)) while it
    /// already holds every connection the pool may open: waiting could only
    /// wait for the task itself, so the request fails at once.
    /// The driver's [`pg::Error::PoolHeldByTask`].
    #[error("pool exhausted by this task: it already holds all {size} connections of the pool")]
    PoolHeldByTask {
        /// The pool's maximum size.
        size: usize,
    },

    /// The green runtime refused the work (closed pool, panicked task).
    /// The driver's [`pg::Error::Green`].
    #[error(transparent)]
    Green(#[from] green::GreenError),

    /// A driver error this version of the ORM has no variant of its own
    /// for (the driver's error is `non_exhaustive`); the predicates answer
    /// as the driver's do.
    #[error(transparent)]
    Driver(Box<pg::Error>),

    /// A mapper-level misuse: unknown bind, missing key, ambiguous foreign
    /// key, ...; the case names the bind, model or column.
    #[error(transparent)]
    Mapper(#[from] crate::error::MapperError),

    /// A migration set is invalid, disagrees with the database, or one of
    /// its migrations failed; names the version ([`crate::migrate`]).
    #[error(transparent)]
    Migration(Box<crate::error::MigrationError>),

    /// A report query (join, projection, aggregate) the builder refuses;
    /// names the table or column ([`crate::query::QueryError`]).
    #[error(transparent)]
    Query(Box<crate::error::QueryError>),

    /// A value read from the database matches no variant of a `Choice`.
    #[error("column `{column}` holds {value}, which is not a valid {type_name}")]
    InvalidChoice {
        /// The column that held the value.
        column: String,
        /// The offending value, as text.
        value: String,
        /// The Rust enum it was decoded into.
        type_name: &'static str,
    },

    /// A throwaway test server (`odm::testing`, cargo feature `testing`)
    /// could not be found, started or prepared; the message says what to
    /// install or set.
    #[cfg(feature = "testing")]
    #[error(transparent)]
    Testing(#[from] odm_testing::Error),
}

impl Error {
    /// The wrong-context error for `operation`.
    pub fn wrong_context(operation: &'static str) -> Error {
        Error::WrongContext { operation }
    }

    /// The five-character SQLSTATE of a database error, e.g.
    /// [`sqlstate::UNIQUE_VIOLATION`]: for [`Error::Db`] the server's, for
    /// [`Error::RolledBack`] its cause's, for [`Error::TransactionAborted`]
    /// [`sqlstate::IN_FAILED_SQL_TRANSACTION`] (what the server would have
    /// answered). `None` for errors the server did not report.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::TransactionAborted { .. } => Some(sqlstate::IN_FAILED_SQL_TRANSACTION),
            Error::Driver(e) => e.code(),
            _ => self.as_db_error().map(DbError::code),
        }
    }

    /// The server's error fields, when the server reported this error (for
    /// [`Error::RolledBack`], the cause's).
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            Error::Db(e) => Some(e),
            Error::RolledBack { cause: Some(e) } => Some(e),
            Error::Migration(e) => e.as_db_error(),
            Error::Driver(e) => e.as_db_error(),
            _ => None,
        }
    }

    /// The SQLSTATE of what doomed the transaction: [`Error::code`], except
    /// that for [`Error::TransactionAborted`] it is its cause's.
    fn transaction_code(&self) -> Option<&str> {
        match self {
            Error::TransactionAborted { cause } => cause.as_deref().map(DbError::code),
            _ => self.code(),
        }
    }

    /// True for a duplicate key ([`sqlstate::UNIQUE_VIOLATION`]), also when
    /// it was the cause of a [`Error::RolledBack`] (a deferred constraint).
    pub fn is_unique_violation(&self) -> bool {
        self.code() == Some(sqlstate::UNIQUE_VIOLATION)
    }

    /// True for a missing or still-referenced row
    /// ([`sqlstate::FOREIGN_KEY_VIOLATION`]), also as a
    /// [`Error::RolledBack`]'s cause.
    pub fn is_foreign_key_violation(&self) -> bool {
        self.code() == Some(sqlstate::FOREIGN_KEY_VIOLATION)
    }

    /// True for a `NULL` in a `NOT NULL` column
    /// ([`sqlstate::NOT_NULL_VIOLATION`]).
    pub fn is_not_null_violation(&self) -> bool {
        self.code() == Some(sqlstate::NOT_NULL_VIOLATION)
    }

    /// True for a failed `CHECK` constraint ([`sqlstate::CHECK_VIOLATION`]).
    pub fn is_check_violation(&self) -> bool {
        self.code() == Some(sqlstate::CHECK_VIOLATION)
    }

    /// True for a serialization failure
    /// ([`sqlstate::SERIALIZATION_FAILURE`]); for [`Error::RolledBack`] and
    /// [`Error::TransactionAborted`], the cause's code decides.
    pub fn is_serialization_failure(&self) -> bool {
        self.transaction_code() == Some(sqlstate::SERIALIZATION_FAILURE)
    }

    /// True when the transaction was a deadlock's victim
    /// ([`sqlstate::DEADLOCK_DETECTED`]); for [`Error::RolledBack`] and
    /// [`Error::TransactionAborted`], the cause's code decides.
    pub fn is_deadlock(&self) -> bool {
        self.transaction_code() == Some(sqlstate::DEADLOCK_DETECTED)
    }

    /// True when retrying the whole transaction may succeed: a
    /// serialization failure or a deadlock (see
    /// [`Error::is_serialization_failure`], [`Error::is_deadlock`]). This is
    /// what [`Mapper::begin_with_retry`](crate::Mapper::begin_with_retry)
    /// retries.
    pub fn is_retryable(&self) -> bool {
        self.transaction_code().is_some_and(sqlstate::is_retryable)
    }

    /// True when a lock could not be taken at once
    /// ([`sqlstate::LOCK_NOT_AVAILABLE`], 55P03): a `NOWAIT` locking read
    /// ([`Locked::nowait`](crate::session::Locked::nowait)) met a locked
    /// row, or `lock_timeout` passed; also as a [`Error::RolledBack`]'s or
    /// [`Error::TransactionAborted`]'s cause.
    pub fn is_lock_not_available(&self) -> bool {
        self.transaction_code() == Some(sqlstate::LOCK_NOT_AVAILABLE)
    }

    /// True when a cancel request ([`crate::pg::CancelToken`]) or the
    /// server's `statement_timeout` stopped the statement
    /// ([`sqlstate::QUERY_CANCELED`]). odm's own `query_timeout` is
    /// [`Error::QueryTimeout`] instead.
    pub fn is_query_canceled(&self) -> bool {
        self.code() == Some(sqlstate::QUERY_CANCELED)
    }

    /// True when a commit was answered with a rollback: nothing of the
    /// transaction is stored.
    pub fn is_rolled_back(&self) -> bool {
        matches!(self, Error::RolledBack { .. })
    }

    /// True when a statement was refused because its transaction was
    /// already aborted by an earlier failure.
    pub fn is_transaction_aborted(&self) -> bool {
        matches!(self, Error::TransactionAborted { .. })
    }

    /// True when a request passed its `query_timeout`.
    pub fn is_query_timeout(&self) -> bool {
        matches!(self, Error::QueryTimeout { .. })
    }

    /// True when a pool acquire timed out.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, Error::PoolTimeout { .. })
    }

    /// True when odm gave up waiting: a pool acquire
    /// ([`Error::PoolTimeout`]) or a request ([`Error::QueryTimeout`]). A
    /// server-side `statement_timeout` is [`Error::is_query_canceled`].
    pub fn is_timeout(&self) -> bool {
        self.is_pool_timeout()
            || self.is_query_timeout()
            || matches!(self, Error::Driver(e) if e.is_timeout())
    }

    /// True when the connection this came from can no longer be used: it
    /// was closed, broke (I/O, protocol), or the server ended the session
    /// ([`sqlstate::is_session_ending`]).
    pub fn is_closed(&self) -> bool {
        match self {
            Error::Closed
            | Error::Io(_)
            | Error::Protocol(_)
            | Error::CommitOutcomeUnknown { .. } => true,
            Error::Db(e) => e.is_session_ending(),
            Error::Driver(e) => e.is_closed(),
            _ => false,
        }
    }

    /// True when there is no usable connection behind this error: the
    /// connection broke ([`Error::is_closed`]) or could not be opened at
    /// all (unreachable, refused, TLS or authentication failed, the server
    /// refused the session: [`sqlstate::is_connection_refusal`],
    /// [`sqlstate::is_transient_refusal`]). Pool, statement and mapper
    /// errors are not connection errors.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Auth(_)
            | Error::AuthMethodRefused { .. }
            | Error::ChannelBindingRequired { .. }
            | Error::Tls { .. }
            | Error::TlsUnsupported => true,
            Error::Db(e) => {
                sqlstate::is_connection_refusal(&e.code) || sqlstate::is_transient_refusal(&e.code)
            }
            Error::Driver(e) => e.is_connection_error(),
            _ => self.is_closed(),
        }
    }

    /// True when the connection broke after a `COMMIT` (or an atomic
    /// batch, or an autocommit write) was sent and before its answer: it
    /// may or may not be stored ([`Error::CommitOutcomeUnknown`]). Never
    /// retry such a write blindly; `Mapper::begin_with_retry` does not.
    pub fn is_commit_outcome_unknown(&self) -> bool {
        match self {
            Error::CommitOutcomeUnknown { .. } => true,
            Error::Driver(e) => e.is_commit_outcome_unknown(),
            _ => false,
        }
    }

    /// True when database work was attempted off a green worker.
    pub fn is_wrong_context(&self) -> bool {
        matches!(self, Error::WrongContext { .. })
    }

    /// True when a [`green::GreenPool`] built with a queue bound
    /// ([`green::GreenPoolBuilder::max_queued`]) refused the work because
    /// its queue was full: shed the request (HTTP 503) or retry later.
    pub fn is_queue_full(&self) -> bool {
        matches!(self, Error::Green(e) if e.is_queue_full())
    }
}

fn aborted_cause(cause: &Option<Box<DbError>>) -> String {
    match cause {
        Some(cause) => format!(": aborted by {cause}"),
        None => ": aborted by an earlier error".to_owned(),
    }
}

fn rolled_back_cause(cause: &Option<Box<DbError>>) -> String {
    match cause {
        Some(cause) => format!(": {cause}"),
        None => String::new(),
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
