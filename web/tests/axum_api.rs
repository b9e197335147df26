//! Example (b), `examples/axum_api.rs`: the same endpoints in axum, served
//! on a tokio runtime in the test process against a fresh database, with
//! the database work awaited on a bounded green pool: every endpoint and
//! its errors, a short bounded load without errors, and 503 when the green
//! queue is full.

#[allow(dead_code)] // its main is the example's, not the test's
#[path = "../examples/axum_api.rs"]
mod axum_api;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum_api::{prepare, router, AppState};
use green::GreenPool;
use odm::testing::{test_database, TestDatabase};
use odm::Mapper;
use serde_json::json;
use support::{bounded_load, check_endpoints, Client};

/// Serves the example with `green` on a runtime thread of its own; the
/// database lives as long as the returned handle.
fn start(green: GreenPool) -> (u16, TestDatabase) {
    let db = test_database().expect("a test database");
    let mapper = Mapper::new(&format!("{}?pool_size=8", db.url())).expect("the mapper");
    let (ready, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async move {
            prepare(&green, &mapper).await.expect("the schema");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            ready.send(listener.local_addr().unwrap().port()).unwrap();
            axum::serve(listener, router(AppState::new(green, mapper)))
                .await
                .expect("serving");
        });
    });
    (port.recv().expect("the server starts"), db)
}

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
        "axum_api: {} requests from 8 keep-alive clients in {:?} ({:.0} requests/s, debug build)",
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
    for _ in 0..3 {
        let refused = c.send("GET", "/todos/1", None);
        assert_eq!(refused.status, 503, "{refused:?}");
        assert_eq!(refused.header("retry-after"), Some("1"));
    }
    release.store(true, Ordering::SeqCst);
    busy.join().unwrap();
    queued.join().unwrap();
    assert_eq!(c.send("GET", "/todos/1", None).status, 200);
}
