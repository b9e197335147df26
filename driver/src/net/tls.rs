//! TLS with rustls: the client configuration each `sslmode` asks for (root
//! certificates, client certificate, how much of the server certificate is
//! checked), the handshake on the not-yet-split socket inside the connect
//! deadline, and the failures as typed errors.
//!
//! Certificate and key files are read on a helper thread the connecting
//! coroutine waits for (a file read blocks its OS thread), once per process
//! and setting: the configuration is cached, so a renewed root or client
//! certificate is picked up by a new process.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use may::net::TcpStream;
use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
};

use crate::config::{Config, SslMode, SslNegotiation};
use crate::error::{Error, TlsFailure};
use crate::net::deadline::{deadline_named, time_left};
use crate::net::off_scheduler::run_off_scheduler;
use crate::net::tls_end_point::server_end_point;

/// The ALPN protocol name of PostgreSQL's direct TLS (`sslnegotiation=direct`).
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// A TCP stream with an established TLS session, before it is split.
pub(crate) struct TlsStream {
    pub(crate) tcp: TcpStream,
    pub(crate) session: ClientConnection,
    /// RFC 5929 `tls-server-end-point` data; `None` when the certificate's
    /// signature algorithm names no usable hash.
    pub(crate) end_point: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.tcp)
            .field("protocol", &self.session.protocol_version())
            .finish()
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rustls::Stream::new(&mut self.session, &mut self.tcp).read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut stream = rustls::Stream::new(&mut self.session, &mut self.tcp);
        let n = stream.write(buf)?;
        stream.flush()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        rustls::Stream::new(&mut self.session, &mut self.tcp).flush()
    }
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    /// Nothing (`require`, `prefer`, `allow` without a root certificate).
    None,
    /// The chain up to a trusted root, not the host name (`verify-ca`, and
    /// weaker modes when a root certificate file is present, as libpq).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// What a client configuration depends on: the cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    verification: Verification,
    root_cert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    direct: bool,
}

static CONFIGS: Mutex<Vec<(Settings, Arc<ClientConfig>)>> = Mutex::new(Vec::new());

/// Runs the TLS handshake on `tcp` (after the server said yes to
/// `SSLRequest`, or at once with `sslnegotiation=direct`), all before
/// `deadline`.
pub(crate) fn handshake(
    mut tcp: TcpStream,
    host: &str,
    config: &Config,
    deadline: Option<Instant>,
) -> Result<TlsStream, Error> {
    let target = format!("{host}:{}", config.port());
    let fail = |failure, detail: String| Error::Tls {
        host: target.clone(),
        failure,
        detail,
    };
    let client_config = client_config(config, &target, deadline)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| fail(TlsFailure::Handshake, format!("invalid host name: {e}")))?;
    let mut session = ClientConnection::new(client_config, name)
        .map_err(|e| fail(TlsFailure::Handshake, e.to_string()))?;
    // The connection's own queue bounds what is written; rustls must take
    // a whole pipelined batch at once.
    session.set_buffer_limit(None);
    let direct = config.ssl_negotiation() == SslNegotiation::Direct;
    {
        let mut io = DeadlineTcp {
            tcp: &mut tcp,
            deadline,
        };
        while session.is_handshaking() {
            match session.complete_io(&mut io) {
                Ok((0, 0)) if session.is_handshaking() => {
                    return Err(handshake_eof(&fail, direct));
                }
                Ok(_) => {}
                Err(e) => return Err(handshake_error(e, &fail, direct)),
            }
        }
    }
    if direct && session.alpn_protocol() != Some(ALPN_POSTGRESQL) {
        return Err(fail(
            TlsFailure::Handshake,
            "the server did not agree to alpn `postgresql` for direct tls".to_owned(),
        ));
    }
    let end_point = session
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| server_end_point(cert));
    Ok(TlsStream {
        tcp,
        session,
        end_point,
    })
}

fn handshake_eof(fail: &impl Fn(TlsFailure, String) -> Error, direct: bool) -> Error {
    let detail = if direct {
        "the server closed the connection during the handshake \
         (sslnegotiation=direct needs PostgreSQL 17 or later)"
    } else {
        "the server closed the connection during the handshake"
    };
    fail(TlsFailure::Handshake, detail.to_owned())
}

/// Names a failed handshake: a certificate problem, an alert, or the socket.
fn handshake_error(
    e: io::Error,
    fail: &impl Fn(TlsFailure, String) -> Error,
    direct: bool,
) -> Error {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        let failure = match tls {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => TlsFailure::HostnameMismatch,
            rustls::Error::InvalidCertificate(_) => TlsFailure::UntrustedCertificate,
            _ => TlsFailure::Handshake,
        };
        return fail(failure, tls.to_string());
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            handshake_eof(fail, direct)
        }
        // Timeouts and other socket errors stay I/O errors: the caller names
        // them as connect errors, like the rest of the startup phase.
        _ => Error::Io(e),
    }
}

/// The TCP stream with every call bounded by the connect deadline.
struct DeadlineTcp<'a> {
    tcp: &'a mut TcpStream,
    deadline: Option<Instant>,
}

impl DeadlineTcp<'_> {
    fn arm(&self) -> io::Result<()> {
        if self.deadline.is_some() {
            let left = time_left(self.deadline)?;
            self.tcp.set_read_timeout(left)?;
            self.tcp.set_write_timeout(left)?;
        }
        Ok(())
    }
}

impl Read for DeadlineTcp<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        deadline_named(self.tcp.read(buf))
    }
}

impl Write for DeadlineTcp<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        deadline_named(self.tcp.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The client configuration for `config`'s TLS settings: cached, or built
/// on a helper thread (it reads files) while the coroutine parks.
fn client_config(
    config: &Config,
    target: &str,
    deadline: Option<Instant>,
) -> Result<Arc<ClientConfig>, Error> {
    let settings = Settings {
        verification: match config.ssl_mode() {
            // The platform's roots vouch for anyone's certificate: trusting
            // them without the host name would trust every server (libpq
            // makes sslrootcert=system imply verify-full too).
            _ if config.ssl_root_cert() == Some("system") => Verification::Full,
            SslMode::VerifyFull => Verification::Full,
            SslMode::VerifyCa => Verification::Chain,
            _ => Verification::None,
        },
        root_cert: config.ssl_root_cert().map(str::to_owned),
        cert: config.ssl_cert().map(str::to_owned),
        key: config.ssl_key().map(str::to_owned),
        direct: config.ssl_negotiation() == SslNegotiation::Direct,
    };
    if let Some((_, found)) = CONFIGS.lock().iter().find(|(s, _)| *s == settings) {
        return Ok(found.clone());
    }
    let job = settings.clone();
    let built = run_off_scheduler(
        "odm-tls-files",
        deadline,
        "no answer within connect_timeout",
        move || build(&job),
    )?;
    let built = Arc::new(built.map_err(|(failure, detail)| Error::Tls {
        host: target.to_owned(),
        failure,
        detail,
    })?);
    let mut configs = CONFIGS.lock();
    if !configs.iter().any(|(s, _)| *s == settings) {
        configs.push((settings, built.clone()));
    }
    Ok(built)
}

type BuildError = (TlsFailure, String);

/// Builds a client configuration, reading the files it names (blocking).
fn build(settings: &Settings) -> Result<ClientConfig, BuildError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = root_store(settings)?;
    let verification = checked_verification(settings.verification, roots.is_some())?;
    let verifier = server_verifier(roots, verification, &provider)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (TlsFailure::Handshake, e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut client = match client_identity(settings)? {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| (TlsFailure::CertificateFile, format!("sslcert/sslkey: {e}")))?,
    };
    if settings.direct {
        client.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    }
    Ok(client)
}

/// The trusted roots: `sslrootcert` (a file, or `system` for the
/// platform's), else `~/.postgresql/root.crt` when it exists, else none.
fn root_store(settings: &Settings) -> Result<Option<RootCertStore>, BuildError> {
    Ok(match settings.root_cert.as_deref() {
        Some("system") => Some(system_roots()?),
        Some(path) => Some(file_roots(Path::new(path))?),
        None => match default_file("root.crt") {
            Some(path) => Some(file_roots(&path)?),
            None => None,
        },
    })
}

/// The verification `sslmode` asks for, given whether there are roots: as
/// in libpq, roots make even `require` check the chain, and
/// `verify-ca`/`verify-full` without roots is an error.
fn checked_verification(asked: Verification, has_roots: bool) -> Result<Verification, BuildError> {
    match (asked, has_roots) {
        (Verification::None, true) => Ok(Verification::Chain),
        (Verification::Chain | Verification::Full, false) => Err((
            TlsFailure::CertificateFile,
            "no root certificate: set sslrootcert to a file or to `system` \
             (or create ~/.postgresql/root.crt)"
                .to_owned(),
        )),
        (other, _) => Ok(other),
    }
}

/// What checks the server's certificate: webpki with the roots (and the
/// host name for `verify-full`), or, without verification, only the
/// handshake signatures.
fn server_verifier(
    roots: Option<RootCertStore>,
    verification: Verification,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, BuildError> {
    match roots {
        Some(roots) if verification != Verification::None => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| (TlsFailure::CertificateFile, e.to_string()))?;
            Ok(if verification == Verification::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            })
        }
        _ => Ok(Arc::new(AnyCertificate(provider.clone()))),
    }
}

/// The client certificate chain and its key: `sslcert`/`sslkey`, else
/// `~/.postgresql/postgresql.crt`/`.key` when the certificate exists; none
/// without a certificate. The key file's permissions are checked first.
fn client_identity(
    settings: &Settings,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, BuildError> {
    let Some(cert) = settings
        .cert
        .as_deref()
        .map(PathBuf::from)
        .or_else(|| default_file("postgresql.crt"))
    else {
        return Ok(None);
    };
    let key = settings
        .key
        .as_deref()
        .map(PathBuf::from)
        .or_else(|| default_file("postgresql.key"))
        .ok_or_else(|| {
            (
                TlsFailure::CertificateFile,
                format!("sslcert {} has no sslkey", cert.display()),
            )
        })?;
    let chain = certificates(&cert)?;
    check_key_file(&key)?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| {
        (
            TlsFailure::CertificateFile,
            format!(
                "cannot read a private key from sslkey {}: {e}",
                key.display()
            ),
        )
    })?;
    Ok(Some((chain, key)))
}

/// libpq's rule for a private key file: a regular file that no one but its
/// owner can read — mode 0600 or less, or 0640 or less when root owns it
/// (keys managed by the system) — so a key others could copy is refused,
/// not used.
fn check_key_file(path: &Path) -> Result<(), BuildError> {
    let refuse = |why: String| Err((TlsFailure::CertificateFile, why));
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return refuse(format!("cannot read sslkey {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return refuse(format!("sslkey {} is not a regular file", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o777;
        let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
        if mode & !allowed != 0 {
            return refuse(format!(
                "sslkey {} has permissions {mode:04o}: it must be u=rw (0600) or less{}",
                path.display(),
                if meta.uid() == 0 {
                    ", or u=rw,g=r (0640) when owned by root"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}

/// `~/.postgresql/<name>` when it exists (libpq's default file locations).
fn default_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".postgresql").join(name);
    path.is_file().then_some(path)
}

/// Every certificate in a PEM file; an error when there is none.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let bad = |detail: String| (TlsFailure::CertificateFile, detail);
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("cannot parse {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(format!("no certificate in {}", path.display())));
    }
    Ok(certs)
}

fn file_roots(path: &Path) -> Result<RootCertStore, BuildError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| {
            (
                TlsFailure::CertificateFile,
                format!("unusable root certificate in {}: {e}", path.display()),
            )
        })?;
    }
    Ok(roots)
}

/// The platform's trusted roots (`sslrootcert=system`).
fn system_roots() -> Result<RootCertStore, BuildError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err((
            TlsFailure::CertificateFile,
            format!("sslrootcert=system found no usable root certificate{why}"),
        ));
    }
    Ok(roots)
}

/// Checks the chain to a trusted root but not the host name (`verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name only after the chain was accepted, so a
        // name error means the chain is trusted.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate (`sslmode=require` without a root certificate,
/// as libpq), still checking that the server holds its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
