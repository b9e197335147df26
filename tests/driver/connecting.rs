//! Connecting: authentication methods, TLS negotiation, timeouts, bad input, and the off-coroutine refusal.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use odm::pg::Error;
use odm::pg::{Client, Config, Host};

use odm::testing::{
    test_database, CLEARTEXT_PASSWORD, CLEARTEXT_USER, MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD,
    SCRAM_USER,
};

use crate::{connect, connect_error, fake_server, on_coroutine};

#[test]
fn a_wrong_password_gives_28p01_without_the_password_for_md5_and_scram() {
    let db = test_database().unwrap();
    for user in [MD5_USER, SCRAM_USER, CLEARTEXT_USER] {
        let e = connect_error(db.url_as(user, "Wr0ngPassw0rd"));
        assert_eq!(e.code(), Some("28P01"), "{user}: {e}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("Wr0ngPassw0rd"), "{shown}");
        assert!(
            e.to_string().contains("password authentication failed"),
            "{e}"
        );
    }
}

#[test]
fn md5_scram_and_cleartext_logins_work() {
    let db = test_database().unwrap();
    for (user, password) in [
        (MD5_USER, MD5_PASSWORD),
        (SCRAM_USER, SCRAM_PASSWORD),
        (CLEARTEXT_USER, CLEARTEXT_PASSWORD),
    ] {
        let url = db.url_as(user, password);
        let who: String = on_coroutine(move || {
            connect(&url)
                .query_one("SELECT current_user::text", &[])
                .unwrap()
                .get(0)
        });
        assert_eq!(who, user);
    }
}

#[test]
fn a_missing_password_is_an_auth_error_naming_the_user() {
    let db = test_database().unwrap();
    let url = db.url_as(SCRAM_USER, "x").replace(":x@", "@");
    let e = connect_error(url);
    assert!(matches!(e, Error::Auth(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "authentication failed: the server asked for a password for user `odm_scram` and none was given"
    );
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    // Find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = connect_error(format!("postgresql://u:secretpw@127.0.0.1:{port}/d"));
    match &e {
        Error::Connect { target, source } => {
            assert_eq!(target, &format!("127.0.0.1:{port}"));
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(e
        .to_string()
        .starts_with(&format!("could not connect to 127.0.0.1:{port}")));
    assert!(!format!("{e} {e:?}").contains("secretpw"));
}

#[test]
fn bad_urls_are_configuration_errors_naming_the_bad_part() {
    let e = Config::parse("postgresql://u:pw@host:70000/db").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: invalid port `70000`: expected a number from 1 to 65535"
    );
    let e = Config::parse("mongodb://u:pw@host/db").unwrap_err();
    assert!(matches!(e, Error::Config(_)));
    assert!(e.to_string().contains("`mongodb`"), "{e}");
    let e = odm::pool::parse_url("postgresql://u:pw@host/db?pool_size=-3").unwrap_err();
    assert!(e.to_string().contains("pool_size `-3`"), "{e}");
    // One URL serves the driver and the pool: Config::parse accepts the
    // pool's settings and leaves them (and their checks) to the pool.
    let config = Config::parse("postgresql://u:pw@host/db?pool_size=3").unwrap();
    assert_eq!(config.dbname(), "db");
}

#[test]
fn sslmode_prefer_goes_plain_and_require_is_refused_by_a_server_without_tls() {
    // The shared test cluster has `ssl=off` (DATABASE_URL may name another
    // server: then only `prefer` is checked).
    let db = test_database().unwrap();
    let prefer = format!("{}?sslmode=prefer", db.url());
    let require = format!("{}?sslmode=require", db.url());
    let plain_server = std::env::var("DATABASE_URL").map_or(true, |url| url.trim().is_empty());
    on_coroutine(move || {
        assert_eq!(
            connect(&prefer)
                .query_one("SELECT 1", &[])
                .unwrap()
                .get::<_, i32>(0),
            1
        );
        if !plain_server {
            return;
        }
        let e = Client::connect(&Config::parse(&require).unwrap()).unwrap_err();
        if cfg!(feature = "tls") {
            assert!(
                matches!(
                    e,
                    Error::Tls {
                        failure: odm::TlsFailure::ServerRefused,
                        ..
                    }
                ),
                "{e:?}"
            );
        } else {
            assert!(matches!(e, Error::TlsUnsupported));
            assert!(e.to_string().contains("sslmode=disable"), "{e}");
        }
    });
}

#[test]
fn sslmode_prefer_never_reconnects_in_plain_text_after_a_failed_handshake() {
    // A server that says yes to TLS and then drops the handshake: a man in
    // the middle trying to push the client down to plain text. libpq's
    // prefer does not retry without TLS here, and neither does odm.
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = connections.clone();
    let port = fake_server(move |_, mut client| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut request = [0u8; 8];
        client.read_exact(&mut request).unwrap();
        assert_eq!(&request[4..], &[0x04, 0xd2, 0x16, 0x2f], "an SSLRequest");
        client.write_all(b"S").unwrap();
        let mut hello = [0u8; 1];
        client.read_exact(&mut hello).unwrap();
        assert_eq!(hello[0], 0x16, "a tls handshake record");
    });
    let url = format!("postgresql+green://u:p@127.0.0.1:{port}/d?sslmode=prefer&connect_timeout=5");
    let e = on_coroutine(move || Client::connect(&Config::parse(&url).unwrap()).unwrap_err());
    if cfg!(feature = "tls") {
        assert!(
            matches!(
                e,
                Error::Tls {
                    failure: odm::TlsFailure::Handshake,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

#[test]
fn connect_timeout_bounds_a_server_that_never_answers() {
    let port = fake_server(|_, mut stream| {
        // Accept, read, never answer.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let url = format!("postgresql://u:pw@127.0.0.1:{port}/d?connect_timeout=0.3&sslmode=disable");
    let started = Instant::now();
    let e = connect_error(url);
    let elapsed = started.elapsed();
    match &e {
        Error::Connect { target, source } => {
            assert_eq!(target, &format!("127.0.0.1:{port}"));
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}");
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn a_unix_socket_connection_works() {
    let db = test_database().unwrap();
    let url = db.url();
    on_coroutine(move || {
        let c = connect(&url);
        let dir: String = c
            .query_one("SELECT current_setting('unix_socket_directories')", &[])
            .unwrap()
            .get(0);
        let port = c.config().port();
        let dir = dir.split(',').next().unwrap().trim().to_owned();
        let config = Config::parse(&format!("{url}&host={dir}"))
            .or_else(|_| Config::parse(&format!("{url}?host={dir}")))
            .unwrap();
        assert_eq!(config.host(), &Host::Unix(dir.into()));
        assert_eq!(config.port(), port);
        let unix = Client::connect(&config).unwrap();
        let addr: Option<String> = unix
            .query_one("SELECT inet_client_addr()::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(addr, None, "a unix socket has no client address");
    });
}

#[test]
fn off_a_coroutine_every_entry_refuses_at_once() {
    let db = test_database().unwrap();
    let config = Config::parse(&db.url()).unwrap();
    let started = Instant::now();
    let e = Client::connect(&config).unwrap_err();
    assert!(e.is_wrong_context());
    assert!(e.to_string().starts_with("acquire in main greenlet"), "{e}");
    // A client made on a coroutine and handed to a plain thread refuses too.
    let c2 = config.clone();
    let client = on_coroutine(move || Client::connect(&c2).unwrap());
    for e in [
        client.query("SELECT 1", &[]).unwrap_err(),
        client.execute("SELECT 1", &[]).unwrap_err(),
        client.batch_execute("SELECT 1").unwrap_err(),
        client.prepare("SELECT 1").unwrap_err(),
        client.copy_out("COPY (SELECT 1) TO STDOUT").unwrap_err(),
        client.notifications().recv().unwrap_err(),
        client.cancel_token().cancel_query().unwrap_err(),
    ] {
        assert!(e.is_wrong_context(), "{e:?}");
        assert!(e.to_string().starts_with("acquire in main greenlet"), "{e}");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!client.is_closed());
}

#[test]
fn application_name_and_options_reach_the_server() {
    let db = test_database().unwrap();
    let url = format!(
        "{}?application_name=odm%20driver%20test&options=-c%20search_path%3Dmy_schema,public",
        db.url()
    );
    on_coroutine(move || {
        let c = connect(&url);
        let row = c
            .query_one(
                "SELECT current_setting('application_name'), current_setting('search_path')",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, &str>(0), "odm driver test");
        assert_eq!(row.get::<_, &str>(1), "my_schema,public");
        assert_eq!(
            c.parameter("application_name").as_deref(),
            Some("odm driver test")
        );
    });
}

#[test]
fn a_changed_client_encoding_closes_the_connection_with_a_clear_error() {
    crate::with_client(|c, _| {
        let e = c
            .batch_execute("SET client_encoding = 'LATIN1'")
            .unwrap_err();
        assert!(e.to_string().contains("client_encoding to LATIN1"), "{e}");
        assert!(e.is_closed(), "{e:?}");
        assert!(c.is_closed());
    });
}
