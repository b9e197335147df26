//! Opening a connection: the socket (with TLS as `sslmode` asks, from
//! `net::open_socket`, and libpq's fallbacks between the two), the startup
//! message, authentication (trust, cleartext, MD5, SCRAM-SHA-256 and
//! SCRAM-SHA-256-PLUS, as `require_auth` and `channel_binding` allow) and the
//! server's parameter status and backend key, up to the first
//! `ReadyForQuery`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Instant;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::ScramSha256;
use postgres_protocol::message::{backend::Message, frontend};

use crate::config::{AuthMethod, Config, SslMode};
use crate::error::Error;
use crate::net::off_scheduler::run_off_scheduler;
use crate::net::open_socket::target_of;
use crate::net::open_socket::{open_socket, open_socket_as};
use crate::net::socket::{Bounded, Socket};
use crate::startup::auth_policy::{AuthPolicy, ScramChoice};
use crate::wire::frame::{check_header, Phase};
use crate::wire::server_error::{db_error, log_notice, parse_fields};
use crate::wire::transaction_status::TransactionStatus;

/// What the startup phase leaves for the connection (no `Debug`: it holds
/// the backend's secret key).
pub(crate) struct StartupState {
    pub(crate) parameters: HashMap<String, String>,
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
    pub(crate) status: TransactionStatus,
    pub(crate) leftover: BytesMut,
}

/// Opens a socket and runs startup, falling back as libpq does: `allow`
/// tries TLS when the server turns the plain connection away, `prefer`
/// tries plain when it turns the TLS connection away. Only a server's
/// refusal (an error message) falls back, never a failed handshake.
pub(crate) fn open_and_start(
    config: &Config,
    deadline: Option<Instant>,
) -> Result<(Socket, StartupState), Error> {
    let first = open_socket(config, deadline)?;
    let tls = first.is_tls();
    match startup(first, config, deadline) {
        Err(Error::Db(refusal)) => {
            let second = match config.ssl_mode() {
                SslMode::Allow if !tls && cfg!(feature = "tls") => SslMode::Require,
                SslMode::Prefer if tls => SslMode::Disable,
                _ => return Err(Error::Db(refusal)),
            };
            log::debug!(
                target: "odm::pg",
                "sslmode={}: the server refused the {} connection ({refusal}); trying {}",
                config.ssl_mode().as_str(),
                if tls { "tls" } else { "plain" },
                if tls { "plain" } else { "tls" },
            );
            let socket = open_socket_as(config, second, deadline)?;
            startup(socket, config, deadline)
        }
        other => other,
    }
}

/// Runs startup and authentication on an open socket.
pub(crate) fn startup(
    mut socket: Socket,
    config: &Config,
    deadline: Option<Instant>,
) -> Result<(Socket, StartupState), Error> {
    let mut bounded = Bounded {
        socket: &mut socket,
        deadline,
    };
    let state = startup_on(&mut bounded, config)?;
    Ok((socket, state))
}

fn startup_on(socket: &mut Bounded<'_>, config: &Config) -> Result<StartupState, Error> {
    let mut buf = BytesMut::with_capacity(256);
    let statement_timeout = config
        .statement_timeout()
        .map(|t| t.as_millis().to_string());
    let mut params: Vec<(&str, &str)> = vec![
        ("user", config.user()),
        ("database", config.dbname()),
        ("client_encoding", "UTF8"),
    ];
    if let Some(name) = config.application_name() {
        params.push(("application_name", name));
    }
    if let Some(options) = config.options() {
        params.push(("options", options));
    }
    if let Some(timeout) = &statement_timeout {
        params.push(("statement_timeout", timeout));
    }
    frontend::startup_message(params.iter().copied(), &mut buf)?;
    socket.write_all(&buf)?;
    buf.clear();

    let mut reader = MessageReader::new();
    authenticate(socket, &mut reader, config)?;

    let mut parameters = HashMap::new();
    let mut key = None;
    loop {
        match reader.next(socket)? {
            Message::ParameterStatus(body) => {
                let name = body.name().map_err(malformed)?;
                let value = body.value().map_err(malformed)?;
                parameters.insert(name.to_owned(), value.to_owned());
            }
            Message::BackendKeyData(body) => key = Some((body.process_id(), body.secret_key())),
            Message::NoticeResponse(body) => log_notice(&parse_fields(body.fields())?),
            Message::ErrorResponse(body) => return Err(db_error(body.fields())),
            Message::ReadyForQuery(body) => {
                let (process_id, secret_key) = key.unwrap_or((0, 0));
                let state = StartupState {
                    parameters,
                    process_id,
                    secret_key,
                    status: TransactionStatus::from_byte(body.status()),
                    leftover: reader.buf,
                };
                return Ok(state);
            }
            _ => return Err(unexpected("startup")),
        }
    }
}

fn authenticate(
    socket: &mut Bounded<'_>,
    reader: &mut MessageReader,
    config: &Config,
) -> Result<(), Error> {
    let policy = AuthPolicy::new(
        config,
        target_of(config),
        socket.socket.tls_server_end_point(),
    );
    let mut buf = BytesMut::new();
    let password = || {
        config.password().ok_or_else(|| {
            Error::Auth(format!(
                "the server asked for a password for user `{}` and none was given",
                config.user()
            ))
        })
    };
    // Every request is checked against the policy before the client
    // answers it: nothing derived from the password leaves on a refusal.
    match reader.next(socket)? {
        Message::AuthenticationOk => return policy.allow(AuthMethod::None),
        Message::AuthenticationCleartextPassword => {
            policy.allow(AuthMethod::Password)?;
            frontend::password_message(password()?.as_bytes(), &mut buf)?;
        }
        Message::AuthenticationMd5Password(body) => {
            policy.allow(AuthMethod::Md5)?;
            let hash = md5_hash(
                config.user().as_bytes(),
                password()?.as_bytes(),
                body.salt(),
            );
            frontend::password_message(hash.as_bytes(), &mut buf)?;
        }
        Message::AuthenticationSasl(body) => {
            policy.allow(AuthMethod::ScramSha256)?;
            let offered: Vec<String> = body
                .mechanisms()
                .map(|m| Ok(m.to_owned()))
                .collect()
                .map_err(malformed)?;
            let choice = policy.choose_scram(offered.iter().map(String::as_str))?;
            return scram_sha_256(socket, reader, password()?, choice);
        }
        Message::AuthenticationGss => return unsupported(policy.allow(AuthMethod::Gss)),
        Message::AuthenticationSspi => return unsupported(policy.allow(AuthMethod::Sspi)),
        Message::AuthenticationKerberosV5 => return unsupported(policy.allow_unnamed("kerberos")),
        Message::AuthenticationScmCredential => {
            return unsupported(policy.allow_unnamed("scm-credential"))
        }
        Message::ErrorResponse(body) => return Err(db_error(body.fields())),
        _ => return Err(unexpected("authentication")),
    }
    socket.write_all(&buf)?;
    match reader.next(socket)? {
        Message::AuthenticationOk => Ok(()),
        Message::ErrorResponse(body) => Err(db_error(body.fields())),
        _ => Err(unexpected("authentication")),
    }
}

/// A request for a method this driver cannot perform: the policy's refusal
/// when it refuses it, else an authentication error.
fn unsupported(allowed: Result<(), Error>) -> Result<(), Error> {
    allowed?;
    Err(Error::Auth(
        "the server asked for an unsupported authentication method (gss, sspi, kerberos or scm)"
            .to_owned(),
    ))
}

/// Runs a SCRAM exchange: SCRAM-SHA-256, or SCRAM-SHA-256-PLUS bound to the
/// TLS channel, as `choice` says. The server's final signature is checked
/// before its `AuthenticationOk` is believed.
fn scram_sha_256(
    socket: &mut Bounded<'_>,
    reader: &mut MessageReader,
    password: &str,
    choice: ScramChoice,
) -> Result<(), Error> {
    log::debug!(target: "odm::pg", "authenticating with {}", choice.mechanism);
    let mut buf = BytesMut::new();
    let scram = ScramSha256::new(password.as_bytes(), choice.binding);
    frontend::sasl_initial_response(choice.mechanism, scram.message(), &mut buf)?;
    socket.write_all(&buf)?;
    buf.clear();
    let server_first = match reader.next(socket)? {
        Message::AuthenticationSaslContinue(body) => body,
        Message::ErrorResponse(body) => return Err(db_error(body.fields())),
        _ => return Err(unexpected("scram authentication")),
    };
    // The key derivation (PBKDF2, 4096 rounds of HMAC-SHA-256) is a few ms
    // of CPU: not on a scheduler thread.
    let challenge = server_first.data().to_vec();
    let scram = run_off_scheduler(
        "odm-scram",
        socket.deadline,
        "no answer within connect_timeout",
        move || {
            let mut scram = scram;
            scram.update(&challenge).map(|()| scram)
        },
    )?
    .map_err(|e| Error::Auth(format!("invalid scram challenge from the server: {e}")))?;
    let mut scram = scram;
    frontend::sasl_response(scram.message(), &mut buf)?;
    socket.write_all(&buf)?;
    let server_final = match reader.next(socket)? {
        Message::AuthenticationSaslFinal(body) => body,
        Message::ErrorResponse(body) => return Err(db_error(body.fields())),
        _ => return Err(unexpected("scram authentication")),
    };
    scram
        .finish(server_final.data())
        .map_err(|e| Error::Auth(format!("the server's scram signature is invalid: {e}")))?;
    match reader.next(socket)? {
        Message::AuthenticationOk => Ok(()),
        Message::ErrorResponse(body) => Err(db_error(body.fields())),
        _ => Err(unexpected("scram authentication")),
    }
}

/// A startup message whose body does not parse: the server broke the
/// protocol (not an i/o failure of the connection).
fn malformed(error: std::io::Error) -> Error {
    Error::Protocol(format!("during startup: malformed message: {error}"))
}

fn unexpected(phase: &str) -> Error {
    Error::Protocol(format!("unexpected message from the server during {phase}"))
}

/// Reads whole backend messages from a socket during startup.
struct MessageReader {
    buf: BytesMut,
}

impl MessageReader {
    fn new() -> MessageReader {
        MessageReader {
            buf: BytesMut::with_capacity(4096),
        }
    }

    /// The next message, each checked on its 5-byte header before its
    /// body is read ([`check_header`] with [`Phase::Startup`]: nothing
    /// before login may exceed 30,000 bytes, an authentication request
    /// 2,000), so a server — or anyone on the path before TLS — cannot make
    /// the client buffer more.
    fn next(&mut self, socket: &mut Bounded<'_>) -> Result<Message, Error> {
        let mut chunk = [0u8; 4096];
        loop {
            if self.buf.len() >= 5 {
                let word = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                check_header(self.buf[0], word, Phase::Startup)
                    .map_err(|e| Error::Protocol(format!("during startup: {e}")))?;
            }
            if let Some(message) = Message::parse(&mut self.buf)
                .map_err(|e| Error::Protocol(format!("during startup: malformed message: {e}")))?
            {
                return Ok(message);
            }
            let n = socket.read(&mut chunk)?;
            if n == 0 {
                return Err(Error::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
