//! A server — or anyone on the path of a plain connection, which the
//! default `sslmode=prefer` allows when TLS is refused — announcing a huge
//! message: the client refuses it from its 5-byte header, before it
//! buffers any of it, and says it is a protocol error. Against
//! `odm::testing::ScriptedServer`, which counts how much of the stream
//! left it before the client hung up.
//!
//! Run: `cargo test --test hostile_message_size`

mod green_tasks;

use std::time::{Duration, Instant};

use green_tasks::on_green;
use odm::pg::{Client, Config, Error};
use odm::testing::backend_message as msg;
use odm::testing::{ScriptedServer, Step};

/// 1.5 GB: over every bound, and over what PostgreSQL itself can send.
const HUGE: u32 = 1_500_000_000;
/// How much of a refused stream may leave the server before the client
/// hangs up: the socket buffers on both sides, nowhere near the message.
const STREAMED_AT_MOST: u64 = 64 << 20;

fn connect(url: String) -> Result<Client, Error> {
    on_green(move || Client::connect(&Config::parse(&url)?))
}

/// Connects, then runs one query and returns its error.
fn query_error(url: String) -> Error {
    on_green(move || {
        let client = Client::connect(&Config::parse(&url)?)?;
        client.query("SELECT 1", &[]).map(|_| ())
    })
    .expect_err("the scripted answer is refused")
}

#[test]
fn a_huge_authentication_request_is_refused_from_its_header_before_login() {
    let server = ScriptedServer::start(vec![
        Step::ReadStartup,
        Step::Stream {
            bytes: msg::header(b'R', HUGE),
            filler: u64::from(HUGE),
        },
    ])
    .unwrap();
    let started = Instant::now();
    let error = connect(server.url()).expect_err("the login is refused");
    let took = started.elapsed();
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(
        error.to_string().contains("over the limit of 2000"),
        "{error}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        server.bytes_streamed() < STREAMED_AT_MOST,
        "{}",
        server.bytes_streamed()
    );
}

#[test]
fn an_error_message_before_login_is_bounded_too() {
    let server = ScriptedServer::start(vec![
        Step::ReadStartup,
        Step::Stream {
            bytes: msg::header(b'E', 40_000),
            filler: 40_000,
        },
    ])
    .unwrap();
    let error = connect(server.url()).expect_err("the login is refused");
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
}

#[test]
fn a_huge_command_complete_after_login_fails_the_query_at_once_and_closes_the_connection() {
    let server = ScriptedServer::start(vec![
        Step::Login,
        Step::AwaitRequest,
        Step::Stream {
            bytes: msg::header(b'C', HUGE),
            filler: u64::from(HUGE),
        },
    ])
    .unwrap();
    let started = Instant::now();
    let error = query_error(server.url());
    let took = started.elapsed();
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(error.is_closed());
    assert!(error.to_string().contains("'C'"), "{error}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        server.bytes_streamed() < STREAMED_AT_MOST,
        "{}",
        server.bytes_streamed()
    );
}

#[test]
fn a_row_over_max_message_bytes_is_refused_and_the_default_allows_what_postgres_can_send() {
    let script = vec![
        Step::Login,
        Step::AwaitRequest,
        Step::Stream {
            bytes: msg::header(b'D', 2_000_000),
            filler: 2_000_000,
        },
    ];
    let server = ScriptedServer::start(script).unwrap();
    let error = query_error(format!("{}&max_message_bytes=1000000", server.url()));
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(
        error.to_string().contains("over the limit of 1000000"),
        "{error}"
    );

    let config = Config::parse("postgres://u@h/d").unwrap();
    assert_eq!(
        config.max_message_bytes(),
        odm::pg::DEFAULT_MAX_MESSAGE_BYTES
    );
    assert_eq!(odm::pg::DEFAULT_MAX_MESSAGE_BYTES, (1 << 30) - 1);
}

#[test]
fn max_message_bytes_below_the_small_message_bound_is_a_config_error() {
    let error = Config::parse("postgres://u@h/d?max_message_bytes=100").unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert!(error.to_string().contains("max_message_bytes"), "{error}");
    let error = Config::parse("postgres://u@h/d?max_message_bytes=lots").unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let config = Config::parse("postgres://u@h/d?max_message_bytes=65536").unwrap();
    assert_eq!(config.max_message_bytes(), 65_536);
    assert!(config.to_url().contains("max_message_bytes=65536"));
}
