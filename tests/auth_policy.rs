//! Authentication that cannot be downgraded: `require_auth` and
//! `channel_binding` against the real test server's roles (md5, cleartext,
//! SCRAM, trust over the unix socket), against a fake server that asks
//! for a password the policy refuses, which must never receive it, and
//! SCRAM-SHA-256-PLUS over TLS against the TLS test cluster.
//!
//! Run: `cargo test --test auth_policy`

mod green_tasks;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use green_tasks::on_green;
use odm::pg::Error;
use odm::pg::{Client, Config};
use odm::testing::{
    shared_cluster, shared_tls_cluster, TestDatabase, CLEARTEXT_PASSWORD, CLEARTEXT_USER,
    MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, SUPERUSER_PASSWORD,
    TLS_ONLY_PASSWORD, TLS_ONLY_USER, TLS_SERVER_NAME,
};

/// A fresh database on the process's test cluster, whose roles
/// authenticate with the method their name says.
fn database() -> TestDatabase {
    TestDatabase::create_on(shared_cluster().unwrap()).unwrap()
}

/// Connects with `settings` appended to `url`, runs `SELECT current_user`.
fn login(url: &str, settings: &str) -> Result<String, Error> {
    let separator = if url.contains('?') { "&" } else { "?" };
    let separator = if settings.is_empty() { "" } else { separator };
    let config = Config::parse(&format!("{url}{separator}{settings}")).unwrap();
    on_green(move || {
        let client = Client::connect(&config)?;
        client
            .query_one("SELECT current_user::text", &[])
            .map(|row| row.get(0))
    })
}

/// The method of an [`Error::AuthMethodRefused`]; panics on anything else.
fn refused_method(result: Result<String, Error>) -> &'static str {
    match result {
        Err(Error::AuthMethodRefused { method, host }) => {
            assert!(!host.is_empty());
            method
        }
        other => panic!("expected AuthMethodRefused, got {other:?}"),
    }
}

fn assert_channel_binding_required(result: Result<String, Error>) {
    match result {
        Err(Error::ChannelBindingRequired { host }) => assert!(host.starts_with("127.0.0.1:")),
        other => panic!("expected ChannelBindingRequired, got {other:?}"),
    }
}

/// The roles of the cluster with their password and the method that
/// checks it over TCP.
fn password_roles() -> [(&'static str, &'static str, &'static str); 3] {
    [
        (MD5_USER, MD5_PASSWORD, "md5"),
        (CLEARTEXT_USER, CLEARTEXT_PASSWORD, "password"),
        (SCRAM_USER, SCRAM_PASSWORD, "scram-sha-256"),
    ]
}

#[test]
fn require_auth_scram_refuses_the_md5_and_cleartext_users_and_lets_scram_in() {
    let db = database();
    for (user, password, method) in password_roles() {
        let result = login(&db.url_as(user, password), "require_auth=scram-sha-256");
        if method == "scram-sha-256" {
            assert_eq!(result.unwrap(), user);
        } else {
            assert_eq!(refused_method(result), method, "{user}");
        }
    }
}

#[test]
fn require_auth_not_md5_refuses_only_the_md5_user() {
    let db = database();
    for (user, password, method) in password_roles() {
        let result = login(&db.url_as(user, password), "require_auth=!md5");
        if method == "md5" {
            assert_eq!(refused_method(result), "md5");
        } else {
            assert_eq!(result.unwrap(), user);
        }
    }
}

#[test]
fn require_auth_none_refuses_every_password_method() {
    let db = database();
    for (user, password, method) in password_roles() {
        let result = login(&db.url_as(user, password), "require_auth=none");
        assert_eq!(refused_method(result), method, "{user}");
    }
}

#[test]
fn unix_socket_trust_is_let_in_by_require_auth_none_and_refused_by_scram() {
    let cluster = shared_cluster().unwrap();
    let db = TestDatabase::create_on(cluster).unwrap();
    let url = format!(
        "host='{}' port={} user={SUPERUSER} dbname={}",
        cluster.socket_dir().display(),
        cluster.port(),
        db.name()
    );
    let with = |settings: &str| login_key_values(&url, settings);
    assert_eq!(with("require_auth=none").unwrap(), SUPERUSER);
    assert_eq!(with("require_auth=!password").unwrap(), SUPERUSER);
    assert_eq!(refused_method(with("require_auth=scram-sha-256")), "none");
    assert_eq!(refused_method(with("require_auth=!none")), "none");
    // A server that asks for nothing proves nothing: binding cannot happen.
    match with("channel_binding=require") {
        Err(Error::ChannelBindingRequired { host }) => {
            let socket = cluster
                .socket_dir()
                .join(format!(".s.PGSQL.{}", cluster.port()));
            assert_eq!(host, socket.display().to_string());
        }
        other => panic!("expected ChannelBindingRequired, got {other:?}"),
    }
}

/// [`login`] for a libpq `key=value` string.
fn login_key_values(conninfo: &str, settings: &str) -> Result<String, Error> {
    let config = Config::parse(&format!("{conninfo} {settings}")).unwrap();
    on_green(move || {
        let client = Client::connect(&config)?;
        client
            .query_one("SELECT current_user::text", &[])
            .map(|row| row.get(0))
    })
}

#[test]
fn channel_binding_require_without_tls_is_refused_for_every_method() {
    let db = database();
    let roles = [(SUPERUSER, SUPERUSER_PASSWORD)]
        .into_iter()
        .chain(password_roles().map(|(user, password, _)| (user, password)));
    for (user, password) in roles {
        let result = login(
            &db.url_as(user, password),
            "sslmode=disable&channel_binding=require",
        );
        assert_channel_binding_required(result);
    }
}

#[test]
fn channel_binding_disable_and_prefer_log_in_without_tls() {
    let db = database();
    for settings in ["channel_binding=disable", "channel_binding=prefer"] {
        for (user, password, _) in password_roles() {
            assert_eq!(login(&db.url_as(user, password), settings).unwrap(), user);
        }
    }
}

/// What a fake server received after the startup message.
struct Received {
    /// Each frontend message as (type byte, body).
    messages: Vec<(u8, Vec<u8>)>,
    /// Every byte after the startup message.
    raw: Vec<u8>,
}

impl Received {
    fn types(&self) -> Vec<char> {
        self.messages.iter().map(|(t, _)| *t as char).collect()
    }
}

/// A fake PostgreSQL server on 127.0.0.1 for one connection, on a plain
/// thread: it declines TLS, reads the startup message, sends `request`
/// (an authentication request), answers the client's first message with
/// a `28P01` error and reports what it received once the client closed.
fn fake_server(request: Vec<u8>) -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut startup = read_startup(&mut stream);
        if startup == [0x04, 0xd2, 0x16, 0x2f] {
            // SSLRequest: no TLS here.
            stream.write_all(b"N").unwrap();
            startup = read_startup(&mut stream);
        }
        assert_eq!(&startup[..4], &[0, 3, 0, 0], "protocol 3.0 startup");
        stream.write_all(&request).unwrap();
        let mut received = Received {
            messages: Vec::new(),
            raw: Vec::new(),
        };
        while let Some((kind, body)) = read_message(&mut stream, &mut received.raw) {
            received.messages.push((kind, body));
            if kind == b'X' {
                break;
            }
            let _ = stream.write_all(&wrong_password_error());
        }
        let _ = sender.send(received);
    });
    (port, receiver)
}

fn read_startup(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
    stream.read_exact(&mut body).unwrap();
    body
}

/// One typed frontend message, `None` at end of stream.
fn read_message(stream: &mut TcpStream, raw: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).ok()?;
    raw.extend_from_slice(&header);
    let len = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len.checked_sub(4)?];
    stream.read_exact(&mut body).ok()?;
    raw.extend_from_slice(&body);
    Some((header[0], body))
}

/// A backend message: type, length, body.
fn backend_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![kind];
    message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(body);
    message
}

fn cleartext_request() -> Vec<u8> {
    backend_message(b'R', &3u32.to_be_bytes())
}

/// `AuthenticationSASL` offering `mechanisms`.
fn sasl_request(mechanisms: &[&str]) -> Vec<u8> {
    let mut body = 10u32.to_be_bytes().to_vec();
    for mechanism in mechanisms {
        body.extend_from_slice(mechanism.as_bytes());
        body.push(0);
    }
    body.push(0);
    backend_message(b'R', &body)
}

fn wrong_password_error() -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'C', "28P01"),
        (b'M', "password authentication failed"),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    backend_message(b'E', &body)
}

const FAKE_PASSWORD: &str = "Fake5ecretPw";

/// Logs in to a fake server on `port` with `settings`; the error and how
/// long it took.
fn login_to_fake(port: u16, settings: &str) -> (Error, Duration) {
    let url = format!("postgresql://app:{FAKE_PASSWORD}@127.0.0.1:{port}/app?{settings}");
    let started = Instant::now();
    let error = login(&url, "").unwrap_err();
    (error, started.elapsed())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_server_asking_for_cleartext_under_require_auth_scram_never_gets_the_password() {
    let (port, received) = fake_server(cleartext_request());
    let (error, elapsed) = login_to_fake(port, "require_auth=scram-sha-256");
    match &error {
        Error::AuthMethodRefused { host, method } => {
            assert_eq!(host, &format!("127.0.0.1:{port}"));
            assert_eq!(*method, "password");
        }
        other => panic!("expected AuthMethodRefused, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(!error.to_string().contains(FAKE_PASSWORD), "{error}");
    let received = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(!received.types().contains(&'p'), "{:?}", received.types());
    assert!(!contains(&received.raw, FAKE_PASSWORD));
}

#[test]
fn the_same_fake_server_does_get_the_password_without_require_auth() {
    let (port, received) = fake_server(cleartext_request());
    let (error, _) = login_to_fake(port, "");
    assert_eq!(error.code(), Some("28P01"), "{error}");
    let received = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(received.types().first(), Some(&'p'));
    assert!(contains(&received.raw, FAKE_PASSWORD));
}

#[test]
fn channel_binding_require_answers_no_password_request_of_a_plain_server() {
    for request in [cleartext_request(), sasl_request(&["SCRAM-SHA-256"])] {
        let (port, received) = fake_server(request);
        let (error, elapsed) = login_to_fake(port, "channel_binding=require");
        assert!(
            matches!(error, Error::ChannelBindingRequired { .. }),
            "{error:?}"
        );
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
        let received = received.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!received.types().contains(&'p'), "{:?}", received.types());
        assert!(!contains(&received.raw, FAKE_PASSWORD));
    }
}

#[test]
fn a_plain_connection_offered_plus_answers_plain_scram_saying_it_cannot_bind() {
    let (port, received) = fake_server(sasl_request(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]));
    let (error, _) = login_to_fake(port, "channel_binding=prefer");
    assert_eq!(error.code(), Some("28P01"), "{error}");
    let received = received.recv_timeout(Duration::from_secs(5)).unwrap();
    let (kind, body) = &received.messages[0];
    assert_eq!(*kind, b'p');
    // SASLInitialResponse: mechanism, NUL, length, then the client-first
    // message whose GS2 header is `n,,` (no binding possible).
    let mechanism_end = body.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&body[..mechanism_end], b"SCRAM-SHA-256");
    assert!(body[mechanism_end + 5..].starts_with(b"n,,n=,r="));
}

/// Logs in over TLS to the process's TLS cluster (host `localhost`, which
/// its certificate names) as `user`; the user and whether the server sees
/// the session encrypted.
fn login_over_tls(user: &str, password: &str, settings: &str) -> Result<(String, bool), Error> {
    let cluster = shared_tls_cluster().unwrap();
    let url = format!(
        "postgresql+green://{user}:{password}@{TLS_SERVER_NAME}:{}/postgres?{settings}",
        cluster.port()
    );
    let config = Config::parse(&url).unwrap();
    on_green(move || {
        let client = Client::connect(&config)?;
        let row = client.query_one(
            "SELECT current_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )?;
        Ok((row.get(0), row.get(1)))
    })
}

/// `sslmode=verify-full` against the TLS cluster's own CA.
fn verify_full() -> String {
    let files = shared_tls_cluster().unwrap().tls().unwrap().clone();
    format!(
        "sslmode=verify-full&sslrootcert={}",
        files.root_cert.display()
    )
}

/// Under `channel_binding=require` the client answers nothing but
/// SCRAM-SHA-256-PLUS, and the server checks the `tls-server-end-point`
/// data against its own certificate: a login proves the binding was made
/// and was right.
#[test]
fn channel_binding_require_over_tls_logs_in_with_scram_sha_256_plus() {
    for settings in [
        format!("{}&channel_binding=require", verify_full()),
        "sslmode=require&channel_binding=require&require_auth=scram-sha-256".to_owned(),
    ] {
        for (user, password) in [
            (SUPERUSER, SUPERUSER_PASSWORD),
            (TLS_ONLY_USER, TLS_ONLY_PASSWORD),
        ] {
            let (who, ssl) = login_over_tls(user, password, &settings)
                .unwrap_or_else(|e| panic!("{user} with {settings}: {e}"));
            assert_eq!((who.as_str(), ssl), (user, true), "{settings}");
        }
    }
}

#[test]
fn tls_does_not_make_md5_or_cleartext_acceptable_under_channel_binding_require() {
    for (user, password) in [
        (MD5_USER, MD5_PASSWORD),
        (CLEARTEXT_USER, CLEARTEXT_PASSWORD),
    ] {
        match login_over_tls(
            user,
            password,
            &format!("{}&channel_binding=require", verify_full()),
        ) {
            Err(Error::ChannelBindingRequired { host }) => {
                assert!(host.starts_with(TLS_SERVER_NAME), "{host}")
            }
            other => panic!("{user}: expected ChannelBindingRequired, got {other:?}"),
        }
    }
}

#[test]
fn channel_binding_disable_and_prefer_log_in_over_tls() {
    for binding in ["disable", "prefer"] {
        let settings = format!("{}&channel_binding={binding}", verify_full());
        let (who, ssl) = login_over_tls(SCRAM_USER, SCRAM_PASSWORD, &settings).unwrap();
        assert_eq!((who.as_str(), ssl), (SCRAM_USER, true), "{settings}");
    }
}
