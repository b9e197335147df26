//! [`TlsFailure`]: what failed while the driver set up TLS with the server,
//! carried by [`crate::Error::Tls`].
//!
//! Always compiled: a build without the `tls` feature never raises it, but
//! the error type names it either way.

use std::fmt;

/// What failed while setting up TLS ([`crate::Error::Tls`]).
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
