//! Every wait is bounded: `query_timeout` (a client-side deadline per
//! request), `connect_timeout`, and what happens to the connection after a
//! request timed out.
//!
//! Run: `cargo test --test timeouts`

mod green_tasks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use green_tasks::{on_green, spawn};
use odm::pg::Error;
use odm::pg::{Client, Config};
use odm::testing::test_database;

fn connect(url: &str, settings: &str) -> Client {
    Client::connect(&Config::parse(&format!("{url}?{settings}")).unwrap()).unwrap()
}

/// Stops (SIGSTOP) or resumes (SIGCONT) a local server process: a backend
/// that is stopped neither answers nor acts on a cancel, like a server
/// behind a dead network path.
fn signal(pid: i32, stop: bool) {
    let signal = if stop { libc::SIGSTOP } else { libc::SIGCONT };
    // SAFETY: kill(2) with a process id and a signal number has no memory
    // effects in this process.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc, 0,
        "cannot signal backend {pid} (the test needs a local server)"
    );
}

#[test]
fn a_slow_query_past_query_timeout_is_cancelled_and_the_connection_is_reused() {
    let db = test_database().unwrap();
    let url = db.url();
    on_green(move || {
        let client = connect(&url, "query_timeout=300");
        let pid = client.backend_pid();
        let started = Instant::now();
        let e = client.query("SELECT pg_sleep(10)", &[]).unwrap_err();
        let took = started.elapsed();
        assert!(e.is_query_timeout(), "{e:?}");
        assert_eq!(
            e.to_string(),
            "query timed out after 300 ms (query_timeout)"
        );
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        // Cancelled, answered, and in step: the next request gets its own
        // answer on the same backend.
        assert!(!client.is_closed());
        assert_eq!(client.backend_pid(), pid);
        let n: i32 = client.query_one("SELECT 7", &[]).unwrap().get(0);
        assert_eq!(n, 7);
    });
}

#[test]
fn a_hung_backend_fails_the_request_within_ten_seconds_and_closes_the_connection() {
    let db = test_database().unwrap();
    let url = db.url();
    let (pid, client) = on_green(move || {
        let client = connect(&url, "query_timeout=2000");
        (client.backend_pid(), Arc::new(client))
    });
    signal(pid, true);
    let c = client.clone();
    // Joined only after the backend is resumed, whatever happened.
    let outcome = spawn(move || {
        let started = Instant::now();
        let e = c.query_one("SELECT 1", &[]).unwrap_err();
        (e, started.elapsed())
    })
    .join();
    signal(pid, false);
    let (e, took) = outcome.expect("the task finished");
    assert!(e.is_query_timeout(), "{e:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The cancel could not be answered, so the connection was closed: a
    // late answer can never reach a later request.
    assert!(client.is_closed());
    let e = on_green(move || client.query_one("SELECT 1", &[]).unwrap_err());
    assert!(e.is_closed(), "{e:?}");
}

#[test]
fn requests_pipelined_behind_a_timed_out_one_fail_and_none_hangs() {
    let db = test_database().unwrap();
    let url = db.url();
    let client = Arc::new(on_green(move || connect(&url, "query_timeout=500")));
    let slow = {
        let c = client.clone();
        spawn(move || c.query("SELECT pg_sleep(10)", &[]).unwrap_err())
    };
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let others: Vec<_> = (0..10)
        .map(|_| {
            let c = client.clone();
            spawn(move || c.query_one("SELECT 1", &[]).map(|r| r.get::<_, i32>(0)))
        })
        .collect();
    let e = slow.join().unwrap();
    assert!(e.is_query_timeout(), "{e:?}");
    for other in others {
        match other.join().unwrap() {
            Ok(n) => assert_eq!(n, 1),
            Err(e) => assert!(e.is_closed() || e.is_query_timeout(), "{e:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn check_alive_fails_within_its_timeout_on_a_hung_backend() {
    let db = test_database().unwrap();
    let url = db.url();
    let client = Arc::new(on_green(move || connect(&url, "")));
    let pid = client.backend_pid();
    let c = client.clone();
    on_green(move || c.check_alive(Duration::from_secs(1)).unwrap());
    signal(pid, true);
    let c = client.clone();
    let outcome = spawn(move || {
        let started = Instant::now();
        (c.check_alive(Duration::from_millis(500)), started.elapsed())
    })
    .join();
    signal(pid, false);
    let (result, took) = outcome.expect("the task finished");
    assert!(
        matches!(result, Err(Error::QueryTimeout { .. })),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn connecting_to_a_server_that_accepts_and_never_answers_fails_within_connect_timeout() {
    let silent = odm::testing::SilentListener::start().unwrap();
    let url = format!(
        "postgresql://odm:secret@127.0.0.1:{}/x?connect_timeout=1&sslmode=disable",
        silent.port()
    );
    let (e, took) = on_green(move || {
        let started = Instant::now();
        let e = Client::connect(&Config::parse(&url).unwrap()).unwrap_err();
        (e, started.elapsed())
    });
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("connect_timeout"), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(silent.connections_held() >= 1);
}

#[test]
fn connect_timeout_bounds_the_whole_startup_not_each_read() {
    // With sslmode=prefer the first read (the TLS answer) already waits:
    // the deadline is shared by every step of the connect.
    let silent = odm::testing::SilentListener::start().unwrap();
    let url = format!(
        "postgresql://odm@127.0.0.1:{}/x?connect_timeout=0.5",
        silent.port()
    );
    let took = on_green(move || {
        let started = Instant::now();
        let e = Client::connect(&Config::parse(&url).unwrap()).unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e:?}");
        started.elapsed()
    });
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_host_name_is_resolved_off_the_scheduler_and_connects() {
    let db = test_database().unwrap();
    let url = db.url().replace("127.0.0.1", "localhost");
    assert!(
        url.contains("localhost"),
        "the test server listens on 127.0.0.1"
    );
    let n: i32 = on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        client.query_one("SELECT 5", &[]).unwrap().get(0)
    });
    assert_eq!(n, 5);
}

#[test]
fn an_unknown_host_name_is_a_connect_error_naming_the_host() {
    let e = on_green(|| {
        Client::connect(&Config::parse("postgresql://u:pw@no-such-host.invalid:5432/x").unwrap())
            .unwrap_err()
    });
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("no-such-host.invalid:5432"), "{e}");
    assert!(!e.to_string().contains("pw"), "{e}");
}
