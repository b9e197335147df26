//! A server that answers with something the protocol does not allow — an
//! unknown message type, random bytes, a row before any description, a
//! description shorter than it claims — and then says nothing more: the
//! request fails at once with a protocol error and the connection closes,
//! instead of waiting for a `ReadyForQuery` that never comes (no
//! `query_timeout` is set here, so before the fix these waited forever).
//!
//! Run: `cargo test --test hostile_malformed`

mod green_tasks;

use std::time::{Duration, Instant};

use green_tasks::on_green;
use odm::pg::{Client, Config, Error};
use odm::testing::backend_message as msg;
use odm::testing::{ScriptedServer, Step};

/// The bound on noticing: the scripted server stalls forever after its
/// answer, so anything near this would mean the client waited.
const AT_ONCE: Duration = Duration::from_secs(5);

/// Logs in, answers the first request with `answer`, then stalls; returns
/// the query's error and how long it took to come.
fn answered_with(answer: Vec<u8>) -> (Error, Duration) {
    let server = ScriptedServer::start(vec![
        Step::Login,
        Step::AwaitRequest,
        Step::Send(answer),
        Step::Stall,
    ])
    .unwrap();
    let url = server.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        let started = Instant::now();
        let error = client
            .query("SELECT 1", &[])
            .expect_err("the answer is refused");
        assert!(client.is_closed(), "the connection is closed after {error}");
        (error, started.elapsed())
    })
}

fn assert_protocol_error_at_once(answer: Vec<u8>, says: &str) {
    let (error, took) = answered_with(answer);
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(error.is_closed());
    assert!(error.to_string().contains(says), "{error}");
    assert!(took < AT_ONCE, "noticed after {took:?}");
}

#[test]
fn an_unknown_message_type_fails_the_request_at_once() {
    assert_protocol_error_at_once(
        msg::message(b'x', b"whatever"),
        "unexpected message type 'x'",
    );
}

#[test]
fn random_bytes_in_answer_fail_the_request_at_once() {
    // 4 KiB from a fixed xorshift seed whose first byte is no message type.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let (error, took) = answered_with(noise);
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(took < AT_ONCE, "noticed after {took:?}");
}

#[test]
fn a_row_before_any_description_fails_the_request_at_once() {
    assert_protocol_error_at_once(
        msg::data_row(&[Some(b"1")]),
        "message 'D' cannot follow message 'Z'",
    );
}

#[test]
fn a_row_description_shorter_than_it_claims_is_a_protocol_error_not_an_io_error() {
    // Claims two columns, holds one.
    let mut description = msg::row_description(&[("a", 23)]);
    description[6] = 2;
    let mut answer = msg::parse_complete();
    answer.extend(msg::parameter_description(&[]));
    answer.extend(description);
    assert_protocol_error_at_once(answer, "shorter than its column count");
}

#[test]
fn a_data_row_whose_value_runs_past_its_end_fails_at_once() {
    let mut answer = msg::row_description(&[("a", 25)]);
    // One value announcing 100 bytes, holding 3.
    let mut row = msg::data_row(&[Some(b"abc")]);
    row[10] = 100;
    answer.extend(row);
    let mut full = msg::parse_complete();
    full.extend(msg::parameter_description(&[]));
    full.extend(answer);
    assert_protocol_error_at_once(full, "longer than the message");
}

#[test]
fn an_authentication_request_after_login_fails_at_once() {
    assert_protocol_error_at_once(msg::authentication_ok(), "unexpected message type 'R'");
}
