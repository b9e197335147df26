//! `sslmode` and `sslnegotiation`: whether and how a connection uses TLS,
//! with libpq's meaning.

use super::config::config_error;
use crate::error::Error;

/// Whether to use TLS and how much of the server's certificate to check
/// (libpq's `sslmode`, with libpq's meaning).
///
/// Without the `tls` cargo feature, `require` and stricter give
/// [`Error::TlsUnsupported`] and `allow` / `prefer` stay plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS on a second connection only if the server turns
    /// the plain one away (e.g. a `hostssl`-only `pg_hba.conf`).
    Allow,
    /// TLS when the server offers it, on the same socket (the default);
    /// plain on a second connection if the server turns the TLS one away.
    /// No certificate check unless a root certificate file exists.
    Prefer,
    /// TLS or nothing; the certificate is not checked unless a root
    /// certificate is given (`sslrootcert`, or `~/.postgresql/root.crt`
    /// exists), in which case this behaves as `verify-ca`.
    Require,
    /// TLS with a certificate that chains to a trusted root
    /// (`sslrootcert`); the host name is not checked.
    VerifyCa,
    /// TLS with a trusted certificate issued for the host name connected
    /// to: the only mode that stops a man in the middle holding any
    /// certificate from the same authority.
    VerifyFull,
}

impl SslMode {
    /// The mode named by an `sslmode` value.
    pub(super) fn parse(value: &str) -> Result<SslMode, Error> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(config_error(&format!(
                    "invalid sslmode `{value}`: expected disable, allow, prefer, require, \
                     verify-ca or verify-full"
                )))
            }
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a plain connection is unacceptable.
    pub fn requires_tls(self) -> bool {
        self >= SslMode::Require
    }
}

/// How TLS is started (libpq 17's `sslnegotiation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslNegotiation {
    /// Ask with an `SSLRequest` first, as every server version understands
    /// (the default).
    Postgres,
    /// Start the TLS handshake at once, with ALPN `postgresql`: one round
    /// trip less, but only PostgreSQL 17 and later understand it (an older
    /// server closes the connection, reported as a handshake failure).
    /// Needs `sslmode=require` or stricter.
    Direct,
}

impl SslNegotiation {
    /// The negotiation named by an `sslnegotiation` value.
    pub(super) fn parse(value: &str) -> Result<SslNegotiation, Error> {
        match value {
            "postgres" => Ok(SslNegotiation::Postgres),
            "direct" => Ok(SslNegotiation::Direct),
            _ => Err(config_error(&format!(
                "invalid sslnegotiation `{value}`: expected postgres or direct"
            ))),
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            SslNegotiation::Postgres => "postgres",
            SslNegotiation::Direct => "direct",
        }
    }
}
