//! Example (a), `examples/green_api.rs`, served in-process on a free port
//! against a fresh database: every endpoint and its errors, a short bounded
//! load without errors, and the green pool's queue bound answering 503.

#[allow(dead_code)] // its main is the example's, not the test's
#[path = "../examples/green_api.rs"]
mod green_api;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use green::GreenPool;
use odm::testing::{test_database, TestDatabase};
use odm::Mapper;
use serde_json::json;
use support::{bounded_load, check_endpoints, free_port, Client};

/// Starts the example on a free port with `green`; the database lives as
/// long as the returned handle.
fn start(green: GreenPool) -> (u16, TestDatabase) {
    let db = test_database().expect("a test database");
    let mapper = Mapper::new(&format!("{}?pool_size=8", db.url())).expect("the mapper");
    let port = free_port();
    let server =
        green_api::serve(&format!("127.0.0.1:{port}"), green, mapper).expect("the server starts");
    // the accept loop runs until the test process exits
    std::mem::forget(server);
    (port, db)
}

/// One server for the endpoint and load tests, bounded as in the example.
fn served() -> u16 {
    static SERVED: OnceLock<(u16, TestDatabase)> = OnceLock::new();
    SERVED
        .get_or_init(|| {
            let green = GreenPool::builder()
                .max_workers(64)
                .max_queued(256)
                .build()
                .unwrap();
            start(green)
        })
        .0
}

#[test]
fn every_endpoint_answers_and_bad_input_is_a_4xx_with_a_json_reason() {
    check_endpoints(served());
}

#[test]
fn a_short_bounded_load_runs_without_an_error() {
    let load = bounded_load(served(), 8, 25);
    eprintln!(
        "green_api: {} requests from 8 keep-alive clients in {:?} ({:.0} requests/s, debug build)",
        load.requests,
        load.elapsed,
        load.requests as f64 / load.elapsed.as_secs_f64()
    );
}

#[test]
fn a_full_green_queue_answers_503_with_retry_after_then_recovers() {
    let green = GreenPool::builder()
        .max_workers(1)
        .max_queued(1)
        .build()
        .unwrap();
    let (port, _db) = start(green.clone());
    let mut c = Client::connect(port);
    assert_eq!(
        c.send_json("POST", "/todos", &json!({"title": "before"}))
            .status,
        201
    );

    // the only worker busy, the one queue slot taken
    let release = Arc::new(AtomicBool::new(false));
    let gate = Arc::clone(&release);
    let busy = green
        .submit(move || {
            while !gate.load(Ordering::SeqCst) {
                may::coroutine::sleep(Duration::from_millis(2));
            }
        })
        .unwrap();
    let queued = green.submit(|| ()).unwrap();
    assert_eq!(green.queued(), 1);
    for _ in 0..3 {
        let refused = c.send("GET", "/todos/1", None);
        assert_eq!(refused.status, 503, "{refused:?}");
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert!(refused.json()["error"].as_str().unwrap().contains("busy"));
    }
    // validation needs no worker: still a 422 while the pool is full
    assert_eq!(
        c.send_json("POST", "/todos", &json!({"title": ""})).status,
        422
    );

    release.store(true, Ordering::SeqCst);
    busy.join().unwrap();
    queued.join().unwrap();
    let after = c.send("GET", "/todos/1", None);
    assert_eq!(
        (after.status, after.json()["title"].clone()),
        (200, json!("before"))
    );
}
