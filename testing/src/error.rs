//! [`Error`]: what can go wrong finding, starting or preparing a test
//! server. Messages are one lower-case clause and never hold a password.

/// A test server could not be found, started or prepared, or a URL handed to
/// one was unusable; the message says what to install or set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server binaries, `psql`, a data directory or a database could not
    /// be found, made or reached.
    #[error("test server: {0}")]
    Server(String),
    /// A URL (such as `DATABASE_URL`) is not one the test servers can use.
    #[error("invalid test server url: {0}")]
    Url(String),
    /// A socket or file operation failed.
    #[error("test server io: {0}")]
    Io(#[from] std::io::Error),
}
