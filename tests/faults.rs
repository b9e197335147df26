//! Faults against the public API: a black-holed, reset, slowed or cut
//! connection (through `odm::testing::FaultProxy`), terminated backends and
//! a crash restart of the server. For each: the caller gets a typed error
//! within a bound, the mapper or pool serves again afterwards, and every
//! write acknowledged with `Ok` is in the table.
//!
//! Each test prints one line `fault: ...` with what the caller got and how
//! long it took (`cargo test --test faults -- --nocapture`).
//!
//! Run: `cargo test --test faults`

mod green_tasks;
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use green_tasks::{green, on_green, spawn};
use odm::pg::{Client, Config};
use odm::testing::{test_database, FaultProxy, TempCluster, TestDatabase};
use odm::{Error, Mapper};
use support::proxy_in_front_of;
use support::soak::InsertSoak;

/// A fresh database with table `t (id int4 primary key)`, a proxy in front
/// of it, and a mapper through the proxy with `settings`.
fn proxied_mapper(settings: &str) -> (TestDatabase, FaultProxy, Mapper) {
    let db = test_database().unwrap();
    let direct = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&direct).unwrap()).unwrap();
        client
            .batch_execute("CREATE TABLE t (id int4 PRIMARY KEY)")
            .unwrap();
    });
    let proxy = proxy_in_front_of(&db.url());
    let url = format!("{}?{settings}", proxy.proxied_url(&db.url()).unwrap());
    let mapper = Mapper::new(&url).unwrap();
    (db, proxy, mapper)
}

/// Inserts `id` in a mapper transaction.
fn insert(mapper: &Mapper, id: i32) -> Result<(), Error> {
    let mapper = mapper.clone();
    on_green(move || {
        mapper.begin(|s| {
            s.execute("INSERT INTO t VALUES ($1)", &[&id])?;
            Ok(())
        })
    })
}

/// The ids in table `t`, read over a direct connection.
fn present(db: &TestDatabase) -> Vec<i32> {
    let url = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        client
            .query("SELECT id FROM t ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
}

/// Retries `insert` until it succeeds (the pool heals after a fault),
/// failing after 15 s.
fn insert_eventually(mapper: &Mapper, id: i32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match insert(mapper, id) {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the mapper does not serve again: {e}"),
        }
    }
}

#[test]
fn a_black_holed_connection_with_query_timeout_fails_within_ten_seconds_and_the_mapper_serves_again(
) {
    let (db, proxy, mapper) = proxied_mapper("query_timeout=2000&connect_timeout=3&pool_size=2");
    // 1. A connection in use moments ago: handed out without a check, the
    //    statement's own deadline fails it.
    insert(&mapper, 1).unwrap();
    proxy.black_hole();
    let started = Instant::now();
    let e = insert(&mapper, 2).unwrap_err();
    let took = started.elapsed();
    eprintln!("fault: black hole, query_timeout=2000, connection just used: {e} after {took:.2?}");
    assert!(e.is_query_timeout(), "{e:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    proxy.forward();
    insert_eventually(&mapper, 3);
    // 2. A connection idle past the liveness window: its check times out
    //    and the caller hears it (no fresh connect into the black hole).
    proxy.black_hole();
    thread::sleep(Duration::from_millis(1200));
    let started = Instant::now();
    let e = insert(&mapper, 4).unwrap_err();
    let took = started.elapsed();
    eprintln!("fault: black hole, query_timeout=2000, connection idle 1.2 s: {e} after {took:.2?}");
    assert!(e.is_query_timeout(), "{e:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // 3. No connection left: opening one waits out connect_timeout.
    let started = Instant::now();
    let e = insert(&mapper, 5).unwrap_err();
    let took = started.elapsed();
    eprintln!("fault: black hole, no open connection, connect_timeout=3: {e} after {took:.2?}");
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    proxy.forward();
    let started = Instant::now();
    insert_eventually(&mapper, 6);
    eprintln!(
        "fault: black hole lifted: served again after {:.2?}",
        started.elapsed()
    );
    // 2, 4 and 5 were never committed (no COMMIT was sent for them).
    assert_eq!(present(&db), vec![1, 3, 6]);
}

#[test]
fn a_black_holed_shared_read_with_query_timeout_fails_within_ten_seconds() {
    let (_db, proxy, mapper) = proxied_mapper("query_timeout=2000&pool_size=2");
    let mp = mapper.clone();
    on_green(move || mp.begin(|s| s.query_raw("SELECT 1", &[]).map(drop))).unwrap();
    proxy.black_hole();
    let mp = mapper.clone();
    let (result, took) = on_green(move || {
        let started = Instant::now();
        let pool = mp.engine(None).unwrap().pool().clone();
        (pool.query("SELECT 1", &[]).map(drop), started.elapsed())
    });
    let e = result.unwrap_err();
    eprintln!("fault: black hole, shared read, query_timeout=2000: {e} after {took:.2?}");
    assert!(e.is_query_timeout(), "{e:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    proxy.forward();
}

#[test]
fn a_reset_connection_fails_the_transaction_at_once_and_the_next_one_is_stored() {
    let (db, proxy, mapper) = proxied_mapper("pool_size=2");
    insert(&mapper, 1).unwrap();
    proxy.reset();
    let started = Instant::now();
    let e = insert(&mapper, 2).unwrap_err();
    let took = started.elapsed();
    eprintln!("fault: reset: {e} after {took:.2?}");
    assert!(e.is_closed() || matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    proxy.forward();
    insert_eventually(&mapper, 3);
    assert_eq!(present(&db), vec![1, 3]);
}

#[test]
fn an_answer_cut_short_fails_the_request_as_closed_and_the_next_one_reconnects() {
    let (db, proxy, mapper) = proxied_mapper("pool_size=1");
    insert(&mapper, 1).unwrap();
    proxy.truncate_after(3);
    let mp = mapper.clone();
    let started = Instant::now();
    let e =
        on_green(move || mp.begin(|s| s.query_raw("SELECT * FROM t", &[]).map(drop))).unwrap_err();
    let took = started.elapsed();
    eprintln!("fault: answer truncated: {e} after {took:.2?}");
    assert!(e.is_closed(), "{e:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    proxy.forward();
    insert_eventually(&mapper, 2);
    assert_eq!(present(&db), vec![1, 2]);
}

#[test]
fn a_slow_network_serves_every_request_and_query_timeout_catches_a_slower_one() {
    let (db, proxy, mapper) = proxied_mapper("query_timeout=1000&pool_size=2");
    proxy.delay(Duration::from_millis(30));
    for id in 1..=5 {
        insert(&mapper, id).unwrap();
    }
    proxy.delay(Duration::from_millis(1500));
    let started = Instant::now();
    let e = insert(&mapper, 6).unwrap_err();
    let took = started.elapsed();
    eprintln!("fault: 1.5 s delay per chunk, query_timeout=1000: {e} after {took:.2?}");
    assert!(e.is_query_timeout() || e.is_closed(), "{e:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    proxy.forward();
    insert_eventually(&mapper, 7);
    let ids = present(&db);
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 7]);
}

#[test]
fn a_backend_terminated_mid_transaction_fails_it_and_nothing_of_it_is_stored() {
    let db = test_database().unwrap();
    let url = format!("{}?pool_size=2", db.url());
    let mapper = Mapper::new(&url).unwrap();
    let mp = mapper.clone();
    let direct = db.url();
    let (e, took) = on_green(move || {
        mp.begin(|s| s.execute("CREATE TABLE t (id int4)", &[]).map(drop))
            .unwrap();
        let started = Instant::now();
        let result = mp.begin(|s| {
            s.execute("INSERT INTO t VALUES (1)", &[])?;
            let pid: i32 = s.query_raw("SELECT pg_backend_pid()", &[])?[0].get(0);
            let killer = Client::connect(&Config::parse(&direct).unwrap())?;
            killer.execute("SELECT pg_terminate_backend($1)", &[&pid])?;
            s.execute("INSERT INTO t VALUES (2)", &[])?;
            Ok(())
        });
        (result.unwrap_err(), started.elapsed())
    });
    eprintln!("fault: pg_terminate_backend mid-transaction: {e} after {took:.2?}");
    assert!(e.is_closed(), "{e:?}");
    let mp = mapper.clone();
    let rows = on_green(move || {
        mp.begin(|s| s.query_raw("SELECT count(*) FROM t", &[]))
            .unwrap()[0]
            .get::<_, i64>(0)
    });
    assert_eq!(rows, 0, "the terminated transaction left nothing behind");
}

/// Sends SIGKILL to one client backend of `cluster`: the postmaster then
/// ends every other backend and restarts the server (crash recovery).
fn crash_restart(url: &str) {
    let url = url.to_owned();
    let pid: i32 = on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        client
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' \
                 AND pid <> pg_backend_pid() ORDER BY pid LIMIT 1",
                &[],
            )
            .map(|row| row.get(0))
            .unwrap_or_else(|_| client.backend_pid())
    });
    // SAFETY: kill(2) has no memory effects in this process.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "cannot kill backend {pid}");
}

#[test]
fn writers_keep_every_acknowledged_row_through_terminated_backends_and_a_crash_restart() {
    // A cluster of its own: the crash restart ends every connection on it.
    let cluster = TempCluster::start().unwrap();
    let db = TestDatabase::create_on(&cluster).unwrap();
    let url = db.url();
    let soak = InsertSoak::new("soak")
        .tasks(40)
        .duration(Duration::from_secs(6));
    soak.create_table(green(), &url).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicU64::new(0));
    let report = thread::scope(|s| {
        // The test server runs with synchronous_commit=off for speed, which
        // may lose the last commits in a crash: these writers ask for
        // durable commits, as a production server gives them.
        let run = s.spawn(|| {
            soak.run(
                green(),
                &format!("{url}?pool_size=6&pool_timeout=10&options=-c%20synchronous_commit%3Don"),
            )
        });
        // Terminate random backends every 200 ms, with one crash restart in
        // the middle.
        let killer = {
            let (stop, terminated, url) = (stop.clone(), terminated.clone(), url.clone());
            s.spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(200));
                    round += 1;
                    if round == 12 {
                        crash_restart(&url);
                        continue;
                    }
                    let url = url.clone();
                    let killed = spawn(move || -> Result<i64, Error> {
                        let client = Client::connect(&Config::parse(&url)?)?;
                        let row = client.query_one(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
                             AND random() < 0.3",
                            &[],
                        )?;
                        Ok(row.try_get(0)?)
                    })
                    .join()
                    .expect("the killer task finishes");
                    if let Ok(n) = killed {
                        terminated.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            })
        };
        let report = run.join().expect("the soak does not panic");
        stop.store(true, Ordering::Relaxed);
        killer.join().expect("the killer does not panic");
        report
    })
    .unwrap();
    // The server is back: read what is there (retrying while it recovers).
    let deadline = Instant::now() + Duration::from_secs(20);
    let lost = loop {
        match soak.lost(green(), &url, &report) {
            Ok(lost) => break lost,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the server: {e}");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the server did not come back: {e}"),
        }
    };
    let present = soak.rows_present(green(), &url).unwrap();
    eprintln!(
        "fault: soak, 40 tasks 6 s, {} backends terminated + 1 crash restart: \
         acknowledged {}, failed {}, present {present}, lost {}; errors: {:?}",
        terminated.load(Ordering::Relaxed),
        report.acknowledged(),
        report.failed(),
        lost.len(),
        report.errors()
    );
    assert!(lost.is_empty(), "acknowledged but missing: {lost:?}");
    assert!(report.acknowledged() > 0);
    assert!(report.failed() > 0, "the faults failed some inserts");
    assert!(present >= report.acknowledged());
    assert!(present - report.acknowledged() <= report.failed());
}

#[test]
fn a_hundred_orm_tasks_keep_every_acknowledged_write_through_a_server_restart() {
    support::restart::writes_survive_a_restart(
        100,
        10,
        5,
        Duration::from_millis(1500),
        |mapper, task, seq| {
            mapper.begin(|s| {
                s.execute("INSERT INTO r VALUES ($1, $2)", &[&task, &seq])?;
                Ok(())
            })
        },
    );
}
