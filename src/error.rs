//! The one error type of the `odm` crate, shared by the driver, the pool and
//! the mapper.
//!
//! Every variant is something a caller can act on; the predicates
//! ([`Error::code`], [`Error::is_closed`], [`Error::is_pool_timeout`],
//! [`Error::is_wrong_context`]) answer the common questions without a
//! `match`. Messages are lower-case, one clause, and never contain a password.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A boxed error from a value conversion (`ToSql` / `FromSql`).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The text every wrong-context error starts with, kept identical to
/// pulsar-odm's so that ported code and tests can match on it.
pub const WRONG_CONTEXT: &str = "acquire in main greenlet";

/// Everything that can go wrong in odm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A database URL or connection setting is malformed; the message names
    /// the offending part (never the password).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Database work was attempted outside a green worker (a plain OS
    /// thread, such as `main`). Nothing was blocked and nothing was sent.
    #[error("acquire in main greenlet: {operation} must run on a green worker (submit it to a green::GreenPool)")]
    WrongContext {
        /// What was attempted, e.g. `"connect"` or `"pool acquire"`.
        operation: &'static str,
    },

    /// A new connection could not be opened (DNS, refused, timed out).
    #[error("could not connect to {target}: {source}")]
    Connect {
        /// `host:port` or the unix socket path that was tried.
        target: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An I/O error on an established connection; the connection is closed.
    #[error("i/o error on the connection: {0}")]
    Io(#[from] std::io::Error),

    /// The connection was closed (by us, the server, or an earlier error).
    #[error("connection closed")]
    Closed,

    /// The server reported an error. Carries SQLSTATE, message, detail, hint.
    #[error("{0}")]
    Db(Box<DbError>),

    /// The server sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// Authentication could not proceed (unsupported method, missing
    /// password). A rejected password is a [`Error::Db`] with SQLSTATE 28P01.
    #[error("authentication failed: {0}")]
    Auth(String),

    /// TLS was required but this build does not speak TLS (built without
    /// the `tls` feature).
    #[error("tls is not supported by this build: use sslmode=disable or sslmode=prefer")]
    TlsUnsupported,

    /// TLS could not be set up with the server as `sslmode` demands; the
    /// message names the host and what failed (never a key or password).
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
    #[error("channel binding is required but {host} did not offer it (needs tls and scram-sha-256-plus)")]
    ChannelBindingRequired {
        /// `host:port` of the server.
        host: String,
    },

    /// The server asked for an authentication method that `require_auth`
    /// refuses (e.g. cleartext `password` under `require_auth=scram-sha-256`);
    /// no password was sent.
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
    /// [`Error::code`] is the SQLSTATE of the cause when it is known.
    /// A savepoint released while its transaction was aborted
    /// ([`Session::nested`](crate::Session::nested) whose work returned `Ok`,
    /// a savepoint's [`Transaction::commit`](crate::pg::Transaction::commit))
    /// is rolled back to instead and reported the same way: nothing done
    /// since the savepoint is stored, and the enclosing transaction goes on.
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
    /// the server's own 25P02 does not name. [`Error::code`] is `"25P02"`,
    /// as the server would have answered; [`Error::is_retryable`] follows
    /// the cause.
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
    #[error("query timed out after {} ms (query_timeout)", .timeout.as_millis())]
    QueryTimeout {
        /// The deadline that passed.
        timeout: Duration,
    },

    /// A statement that would leave state on a shared connection
    /// (transaction control, `COPY`, `LISTEN`, session `SET`, `PREPARE`,
    /// `DECLARE`, `DISCARD`, ...) was refused before it was sent; the
    /// message names what to use instead.
    #[error("`{command}` is not allowed on a shared connection: {alternative}")]
    NotShareable {
        /// The statement's leading keyword(s), upper-case.
        command: String,
        /// What to use instead.
        alternative: &'static str,
    },

    /// A `COPY` reached a query method (`query`, `execute`, ...); it was
    /// ended with `CopyFail` and the connection is still usable.
    #[error("{0}")]
    CopyNotAllowed(&'static str),

    /// A parameter could not be encoded.
    #[error("cannot encode parameter ${index}: {source}")]
    ToSql {
        /// 1-based parameter position, as in `$1`.
        index: usize,
        /// Why the value could not be encoded.
        #[source]
        source: BoxError,
    },

    /// A statement was run with the wrong number of parameters.
    #[error("the statement takes {expected} parameters but {given} were given")]
    ParameterCount {
        /// How many `$n` placeholders the statement has.
        expected: usize,
        /// How many values were passed.
        given: usize,
    },

    /// A column value could not be decoded into the requested Rust type.
    #[error("cannot decode column `{column}`: {source}")]
    FromSql {
        /// Column name.
        column: String,
        /// Why the value could not be decoded.
        #[source]
        source: BoxError,
    },

    /// A row has no column with this name, or the index is out of range.
    #[error("no column `{0}` in the row")]
    ColumnNotFound(String),

    /// The statement returned a different number of rows than required
    /// (`query_one`, `Query::one`).
    #[error("expected exactly one row, got {0}")]
    RowCount(usize),

    /// No connection became free within the pool timeout.
    #[error("pool timed out after {waited:?} waiting for a connection (size: {size})")]
    PoolTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// The pool's maximum size.
        size: usize,
    },

    /// The pool was closed; no more connections are handed out.
    #[error("pool is closed")]
    PoolClosed,

    /// The task already holds a connection from this pool and asked for a
    /// second one, which would deadlock a full pool.
    #[error("nested acquire: this task already holds a connection from this pool")]
    NestedAcquire,

    /// The green runtime refused the work (closed pool, panicked task).
    #[error(transparent)]
    Green(#[from] green::GreenError),

    /// A mapper-level misuse: unknown model, missing bind, bad argument.
    /// The message names the model, bind or column.
    #[error("{0}")]
    Mapper(String),

    /// A migration set is invalid, disagrees with the database, or one of
    /// its migrations failed; names the version ([`crate::migrate`]).
    #[error(transparent)]
    Migration(Box<crate::migrate::MigrationError>),

    /// A report query (join, projection, aggregate) the builder refuses;
    /// names the table or column ([`crate::query::QueryError`]).
    #[error(transparent)]
    Query(Box<crate::query::QueryError>),

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

    /// A throwaway test server (`odm::testing`) could not be found, started
    /// or prepared; the message says what to install or set.
    #[error("test server: {0}")]
    TestServer(String),
}

impl Error {
    /// The wrong-context error for `operation`.
    pub fn wrong_context(operation: &'static str) -> Error {
        Error::WrongContext { operation }
    }

    /// The five-character SQLSTATE of a database error, e.g. `"23505"`
    /// (`"25P02"` for [`Error::TransactionAborted`]).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::TransactionAborted { .. } => Some("25P02"),
            _ => self.as_db_error().map(|e| e.code.as_str()),
        }
    }

    /// The server's error fields, when the server reported this error (for
    /// [`Error::RolledBack`], the cause's).
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            Error::Db(e) => Some(e),
            Error::RolledBack { cause: Some(e) } => Some(e),
            Error::Migration(e) => e.as_db_error(),
            _ => None,
        }
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

    /// True when the connection this came from can no longer be used.
    pub fn is_closed(&self) -> bool {
        match self {
            Error::Closed | Error::Io(_) | Error::Protocol(_) => true,
            // admin_shutdown, crash_shutdown, cannot_connect_now
            Error::Db(e) => matches!(e.code.as_str(), "57P01" | "57P02" | "57P03"),
            _ => false,
        }
    }

    /// True when a pool acquire timed out.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, Error::PoolTimeout { .. })
    }

    /// True when database work was attempted off a green worker.
    pub fn is_wrong_context(&self) -> bool {
        matches!(self, Error::WrongContext { .. })
    }

    /// True for a serialization failure (40001) or deadlock (40P01): the
    /// transaction may succeed if retried. For [`Error::RolledBack`] and [`Error::TransactionAborted`], the
    /// cause's code decides.
    pub fn is_retryable(&self) -> bool {
        let code = match self {
            Error::TransactionAborted { cause } => cause.as_deref().map(|c| c.code.as_str()),
            _ => self.code(),
        };
        matches!(code, Some("40001" | "40P01"))
    }
}

fn aborted_cause(cause: &Option<Box<DbError>>) -> String {
    match cause {
        Some(cause) => format!(": aborted by {cause}"),
        None => ": aborted by an earlier error".to_owned(),
    }
}

/// What failed while setting up TLS ([`Error::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server answered the TLS request with "no" (`sslmode=require` or
    /// stricter).
    ServerRefused,
    /// The server's certificate does not chain to a trusted root
    /// (`verify-ca`, `verify-full`).
    UntrustedCertificate,
    /// The certificate is trusted but not for this host name
    /// (`verify-full`).
    HostnameMismatch,
    /// A root, client certificate or key file could not be read or parsed.
    CertificateFile,
    /// The handshake failed otherwise (protocol, alert from the server).
    Handshake,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::ServerRefused => "the server does not accept tls",
            TlsFailure::UntrustedCertificate => "the server certificate is not trusted",
            TlsFailure::HostnameMismatch => "the server certificate does not match the host name",
            TlsFailure::CertificateFile => "a certificate or key file cannot be used",
            TlsFailure::Handshake => "the tls handshake failed",
        })
    }
}

fn rolled_back_cause(cause: &Option<Box<DbError>>) -> String {
    match cause {
        Some(cause) => format!(": {cause}"),
        None => String::new(),
    }
}

/// The fields of a server error or notice (`ErrorResponse` / `NoticeResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbError {
    /// `ERROR`, `FATAL`, `PANIC`, or for notices `WARNING`, `NOTICE`, ...
    pub severity: String,
    /// SQLSTATE, five characters.
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

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
