//! Opening the socket to a server: TCP or a unix socket, with TLS
//! negotiated as `sslmode` and `sslnegotiation` ask (the `SSLRequest`
//! exchange, or TLS from the first byte), all before the connect deadline.

use std::io::{Read, Write};
use std::time::Instant;

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use crate::config::{Config, Host, SslMode, SslNegotiation};
use crate::error::{Error, TlsFailure};
use crate::net::socket::{Bounded, Socket};

/// Opens the socket the configuration names, with TLS as `sslmode`
/// demands (for `allow`, the first try: plain), all before `deadline`.
pub(crate) fn open_socket(config: &Config, deadline: Option<Instant>) -> Result<Socket, Error> {
    let mode = match config.ssl_mode() {
        SslMode::Allow => SslMode::Disable,
        mode => mode,
    };
    open_socket_as(config, mode, deadline)
}

pub(crate) fn open_socket_as(
    config: &Config,
    mode: SslMode,
    deadline: Option<Instant>,
) -> Result<Socket, Error> {
    let host = match config.host() {
        Host::Unix(dir) => {
            // As libpq: TLS is never used over a unix socket, and modes
            // that require it still connect.
            return Socket::connect_unix(dir, config.port());
        }
        Host::Tcp(host) => host,
    };
    if mode == SslMode::Disable {
        return Socket::connect_tcp(host, config.port(), config, deadline);
    }
    if !cfg!(feature = "tls") {
        if mode.requires_tls() {
            return Err(Error::TlsUnsupported);
        }
        // Prefer without TLS support: plain, without asking.
        return Socket::connect_tcp(host, config.port(), config, deadline);
    }
    if config.ssl_negotiation() == SslNegotiation::Direct && !mode.requires_tls() {
        return Err(Error::Config(
            "sslnegotiation=direct needs sslmode=require, verify-ca or verify-full".to_owned(),
        ));
    }
    let mut socket = Socket::connect_tcp(host, config.port(), config, deadline)?;
    if config.ssl_negotiation() == SslNegotiation::Postgres {
        let willing = ask_for_tls(&mut Bounded {
            socket: &mut socket,
            deadline,
        })?;
        if !willing {
            if mode.requires_tls() {
                return Err(Error::Tls {
                    host: format!("{host}:{}", config.port()),
                    failure: TlsFailure::ServerRefused,
                    detail: format!(
                        "the server answered the tls request with no (sslmode={})",
                        mode.as_str()
                    ),
                });
            }
            // Prefer: the server said no on this socket, which goes on plain.
            return Ok(socket);
        }
    }
    start_tls(socket, host, config, deadline)
}

#[cfg(feature = "tls")]
fn start_tls(
    socket: Socket,
    host: &str,
    config: &Config,
    deadline: Option<Instant>,
) -> Result<Socket, Error> {
    match socket {
        Socket::Tcp(tcp) => crate::net::tls::handshake(tcp, host, config, deadline)
            .map(|s| Socket::Tls(Box::new(s))),
        other => Ok(other),
    }
}

#[cfg(not(feature = "tls"))]
fn start_tls(
    _socket: Socket,
    _host: &str,
    _config: &Config,
    _deadline: Option<Instant>,
) -> Result<Socket, Error> {
    Err(Error::TlsUnsupported)
}

/// Sends `SSLRequest`; true when the server answered `S` (willing).
fn ask_for_tls(socket: &mut Bounded<'_>) -> Result<bool, Error> {
    debug_assert!(socket.socket.is_tcp());
    let mut buf = BytesMut::with_capacity(8);
    frontend::ssl_request(&mut buf);
    socket.write_all(&buf)?;
    let mut answer = [0u8; 1];
    socket.read_exact(&mut answer)?;
    match answer[0] {
        b'S' => Ok(true),
        b'N' => Ok(false),
        // A server too old for SSLRequest answers with an error message.
        b'E' => Ok(false),
        other => Err(Error::Protocol(format!(
            "unexpected answer {other:#04x} to the tls request"
        ))),
    }
}

/// `host:port` or the socket path, for connect errors.
pub(crate) fn target_of(config: &Config) -> String {
    match config.host() {
        Host::Tcp(host) => format!("{host}:{}", config.port()),
        Host::Unix(dir) => dir
            .join(format!(".s.PGSQL.{}", config.port()))
            .display()
            .to_string(),
    }
}

#[cfg(all(test, not(feature = "tls")))]
mod tests {
    use super::*;

    #[test]
    fn without_the_tls_feature_require_and_stricter_are_refused_before_connecting() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let config = Config::parse(&format!("host=127.0.0.1 port=1 sslmode={mode}")).unwrap();
            assert!(matches!(
                open_socket(&config, None),
                Err(Error::TlsUnsupported)
            ));
        }
    }
}

#[cfg(all(test, feature = "tls"))]
mod tls_tests {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use sha2::Digest;

    use super::*;

    #[test]
    fn a_tls_socket_gives_the_sha256_of_the_server_certificate_as_its_end_point() {
        let cluster = odm_testing::shared_tls_cluster().unwrap();
        let files = cluster.tls().unwrap();
        let config = Config::parse(&format!(
            "postgresql://odm:odmtest@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            cluster.port(),
            files.root_cert.display()
        ))
        .unwrap();
        let socket = open_socket(&config, None).unwrap();
        let der = CertificateDer::from_pem_file(&files.server_cert).unwrap();
        assert!(socket.is_tls());
        assert_eq!(
            socket.tls_server_end_point(),
            Some(sha2::Sha256::digest(&der).to_vec())
        );
    }

    #[test]
    fn a_plain_socket_has_no_end_point() {
        let cluster = odm_testing::shared_cluster().unwrap();
        let config = Config::parse(&format!(
            "postgresql://odm:odmtest@127.0.0.1:{}/postgres?sslmode=prefer",
            cluster.port()
        ))
        .unwrap();
        let socket = open_socket(&config, None).unwrap();
        assert!(!socket.is_tls());
        assert_eq!(socket.tls_server_end_point(), None);
    }
}
