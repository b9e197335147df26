//! `odm::testing::FaultProxy`, `SilentListener` and the tests' `InsertSoak`: first the
//! proxy's own behaviour on raw TCP against an echo server, then the faults
//! it injects between the driver, the pool and a real PostgreSQL.
//!
//! Run: `cargo test --test fault_proxy`

mod green_tasks;
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use green_tasks::{green, on_green, spawn};
use odm::pg::{Client, Config};
use odm::pg::{Error, Pool};
use odm::testing::{test_database, Direction, FaultProxy, SilentListener, TestDatabase};
use support::proxy_in_front_of;
use support::soak::InsertSoak;

fn connect(url: &str) -> Result<Client, Error> {
    Client::connect(&Config::parse(url).expect("the test url parses"))
}

/// A fresh database, a proxy in front of it, and the URL through the proxy.
fn proxied_db() -> (TestDatabase, FaultProxy, String) {
    let db = test_database().expect("a test database");
    let proxy = proxy_in_front_of(&db.url());
    let url = proxy.proxied_url(&db.url()).expect("the url is re-aimed");
    (db, proxy, url)
}

/// Polls (from the test thread) until `done` holds, failing after 10 s.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// `count()` once it held still for 100 ms (within 10 s): the proxy counts
/// forwarded bytes right after writing them, so a peer may have read them
/// a moment before they are counted.
fn settled(count: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = count();
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = count();
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "the count never settled");
        last = now;
    }
}

/// An echo server for one connection on a plain thread; reports how the
/// connection ended (`None` for an orderly close by the peer).
fn echo_server() -> (SocketAddr, mpsc::Receiver<Option<ErrorKind>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (ended_tx, ended_rx) = mpsc::channel();
    thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Err(_) => return,
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let ended = loop {
            match stream.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => {
                    if let Err(e) = stream.write_all(&buf[..n]) {
                        break Some(e.kind());
                    }
                }
                Err(e) => break Some(e.kind()),
            }
        };
        let _ = ended_tx.send(ended);
    });
    (addr, ended_rx)
}

/// A raw client of `proxy` with a read timeout.
fn raw_client(proxy: &FaultProxy, read_timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).unwrap();
    stream.set_read_timeout(Some(read_timeout)).unwrap();
    stream
}

/// Reads exactly `n` bytes or fails.
fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

fn is_timeout(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[test]
fn a_reset_reaches_both_ends_as_a_tcp_reset() {
    let (upstream, ended) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut client = raw_client(&proxy, Duration::from_secs(5));
    client.write_all(b"ping").unwrap();
    assert_eq!(read_n(&mut client, 4), b"ping");

    let started = Instant::now();
    proxy.reset();
    let err = client.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(started.elapsed() < Duration::from_secs(1));
    let upstream_end = ended.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(upstream_end, Some(ErrorKind::ConnectionReset));
    assert_eq!(proxy.connections_open(), 0);
}

#[test]
fn a_delay_holds_each_chunk_back_both_ways() {
    let (upstream, _ended) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut client = raw_client(&proxy, Duration::from_secs(5));
    proxy.delay(Duration::from_millis(150));
    let started = Instant::now();
    client.write_all(b"slow").unwrap();
    assert_eq!(read_n(&mut client, 4), b"slow");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    eventually("both directions are counted", || {
        proxy.bytes_to_server() == 4 && proxy.bytes_to_client() == 4
    });
}

#[test]
fn truncate_after_forwards_exactly_that_many_bytes_then_closes() {
    let (upstream, ended) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut client = raw_client(&proxy, Duration::from_secs(5));
    proxy.truncate_after(100);
    client.write_all(&[7u8; 1000]).unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).unwrap();
    assert_eq!(received, vec![7u8; 100]);
    assert_eq!(proxy.bytes_to_client(), 100);
    // The server's side is closed too (how depends on what it had unsent).
    ended
        .recv_timeout(Duration::from_secs(5))
        .expect("the upstream connection ends");
}

#[test]
fn a_black_hole_holds_the_bytes_and_forward_delivers_them_in_order() {
    let (upstream, _ended) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut client = raw_client(&proxy, Duration::from_millis(300));
    client.write_all(b"one").unwrap();
    assert_eq!(read_n(&mut client, 3), b"one");

    proxy.black_hole();
    client.write_all(b"two").unwrap();
    let err = client.read(&mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(err.kind()), "{err}");
    // A connection opened meanwhile is completed by the kernel, unseen.
    let mut late = raw_client(&proxy, Duration::from_millis(200));
    let err = late.read(&mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(err.kind()), "{err}");
    assert_eq!(proxy.connections_accepted(), 1);

    proxy.forward();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(read_n(&mut client, 3), b"two");
    eventually("the late connection is accepted", || {
        proxy.connections_accepted() == 2
    });
}

#[test]
fn queries_run_through_the_proxy_in_forward_mode() {
    let (_db, proxy, url) = proxied_db();
    let total: i64 = on_green(move || {
        let client = connect(&url).unwrap();
        client
            .query_one(
                "SELECT sum(n)::int8 FROM generate_series(1, 1000) AS n",
                &[],
            )
            .unwrap()
            .get(0)
    });
    assert_eq!(total, 500_500);
    assert_eq!(proxy.connections_accepted(), 1);
    assert!(proxy.bytes_to_server() > 0);
    assert!(proxy.bytes_to_client() > 0);
}

#[test]
fn a_reset_fails_the_next_query_as_closed_within_five_seconds() {
    let (_db, proxy, url) = proxied_db();
    let client = on_green(move || {
        let client = connect(&url).unwrap();
        client.query("SELECT 1", &[]).unwrap();
        client
    });
    proxy.reset();
    let (err, took) = on_green(move || {
        let started = Instant::now();
        let err = client.query("SELECT 1", &[]).unwrap_err();
        (err, started.elapsed())
    });
    assert!(err.is_closed(), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn after_a_reset_the_pool_serves_again_through_the_proxy_once_it_forwards() {
    let (_db, proxy, url) = proxied_db();
    let pool = Pool::from_url(&format!("{url}?pool_size=2&pool_timeout=5")).unwrap();
    let serving = pool.clone();
    on_green(move || serving.execute("SELECT 1", &[]).unwrap());

    proxy.reset();
    let failing = pool.clone();
    let (err, took) = on_green(move || {
        let started = Instant::now();
        let err = failing.execute("SELECT 1", &[]).unwrap_err();
        (err, started.elapsed())
    });
    assert!(
        err.is_closed() || matches!(err, Error::Connect { .. }),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");

    proxy.forward();
    let healed = pool.clone();
    let one: i32 = on_green(move || healed.query_one("SELECT 1", &[]).unwrap().get(0));
    assert_eq!(one, 1);
}

#[test]
fn an_answer_truncated_midway_fails_as_closed_without_hanging() {
    let (_db, proxy, url) = proxied_db();
    let client = on_green(move || connect(&url).unwrap());
    // The startup's last answer may reach the client before the proxy
    // counts it.
    let before = settled(|| proxy.bytes_to_client());
    proxy.truncate_after(100);
    let (err, took) = on_green(move || {
        let started = Instant::now();
        let err = client.query("SELECT repeat('x', 100000)", &[]).unwrap_err();
        (err, started.elapsed())
    });
    assert!(err.is_closed(), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(proxy.bytes_to_client() - before, 100);
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let (_db, proxy, url) = proxied_db();
    proxy.refuse();
    let refused_url = url.clone();
    let (err, took) = on_green(move || {
        let started = Instant::now();
        (connect(&refused_url).unwrap_err(), started.elapsed())
    });
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    proxy.forward();
    on_green(move || connect(&url).unwrap().query("SELECT 1", &[]).unwrap());
}

#[test]
fn dropping_the_proxy_returns_within_two_seconds_with_black_holed_connections_open() {
    let (_db, proxy, url) = proxied_db();
    let client = on_green(move || connect(&url).unwrap());
    proxy.black_hole();
    let waiting = spawn(move || client.query("SELECT 1", &[]).map(|_| ()));
    let late = raw_client(&proxy, Duration::from_secs(5));
    thread::sleep(Duration::from_millis(200));
    assert!(!waiting.is_finished(), "a black hole answers nothing");

    let started = Instant::now();
    drop(proxy);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "drop took {took:?}");
    eventually("the waiting query fails", || waiting.is_finished());
    let err = waiting.join().unwrap().unwrap_err();
    assert!(err.is_closed(), "{err}");
    // The connection the kernel completed during the black hole is gone too.
    let mut late = late;
    let ended = late.read(&mut [0u8; 16]);
    assert!(matches!(ended, Ok(0)) || ended.is_err_and(|e| !is_timeout(e.kind())));
}

#[test]
fn a_one_way_black_hole_runs_the_insert_but_holds_its_acknowledgement() {
    let (db, proxy, url) = proxied_db();
    let direct = db.url();
    let count_rows = move || -> i64 {
        let direct = direct.clone();
        on_green(move || {
            connect(&direct)
                .unwrap()
                .query_one("SELECT count(*) FROM acked", &[])
                .unwrap()
                .get(0)
        })
    };
    let client = on_green(move || {
        let client = connect(&url).unwrap();
        client.batch_execute("CREATE TABLE acked (n int)").unwrap();
        client
    });
    proxy.black_hole_one_way(Direction::ToClient);
    // A simple query: one round trip (a prepared statement's first answer
    // would be held before the insert ran).
    let insert = spawn(move || client.batch_execute("INSERT INTO acked VALUES (1)"));
    eventually("the insert has run on the server", || count_rows() == 1);
    assert!(!insert.is_finished(), "the acknowledgement is held");

    proxy.forward();
    insert.join().unwrap().unwrap();
    assert_eq!(count_rows(), 1);
}

#[test]
fn the_silent_listener_accepts_and_holds_connections_until_dropped() {
    let silent = SilentListener::start().unwrap();
    let mut stream = TcpStream::connect(silent.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    stream.write_all(b"\0\0\0\x08\x04\xd2\x16\x2f").unwrap();
    eventually("the connection is accepted", || {
        silent.connections_held() == 1
    });
    let err = stream.read(&mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(err.kind()), "no answer and no close: {err}");

    let started = Instant::now();
    drop(silent);
    assert!(started.elapsed() < Duration::from_secs(1));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ended = stream.read(&mut [0u8; 16]);
    assert!(
        matches!(ended, Ok(0)) || ended.is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
        "dropping the listener closes what it held"
    );
}

#[test]
fn every_acknowledged_insert_is_present_after_resets_through_the_proxy() {
    let (db, proxy, url) = proxied_db();
    let soak = InsertSoak::new("soak")
        .tasks(6)
        .duration(Duration::from_millis(1500));
    soak.create_table(green(), &db.url()).unwrap();
    let report = thread::scope(|s| {
        let run = s.spawn(|| soak.run(green(), &format!("{url}?pool_size=3&pool_timeout=5")));
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(300));
            proxy.reset();
            thread::sleep(Duration::from_millis(20));
            proxy.forward();
        }
        run.join().expect("the soak does not panic")
    })
    .unwrap();

    let lost = soak.lost(green(), &db.url(), &report).unwrap();
    let present = soak.rows_present(green(), &db.url()).unwrap();
    assert!(lost.is_empty(), "acknowledged but missing: {lost:?}");
    assert!(report.acknowledged() > 0, "errors: {:?}", report.errors());
    assert!(report.failed() > 0, "the resets failed some inserts");
    assert!(present >= report.acknowledged());
    assert!(present - report.acknowledged() <= report.failed());
}
