//! Multi-host URLs on the real engines (`odm::testing::ReplicatedCluster`):
//! `target_session_attrs` picks the primary or the standby whatever the
//! order of the hosts, `prefer-standby` falls back, the error when no host
//! fits names every host, and a pool writing through a two-host
//! `read-write` URL finds the promoted standby by itself after the primary
//! stops, losing no acknowledged write.
//!
//! Run: `cargo test --test multi_host -- --nocapture` (the failover test
//! prints the measured recovery time).

mod green_tasks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use green_tasks::{on_green, spawn};
use odm::pg::{Client, Config};
use odm::testing::ReplicatedCluster;
use odm::{Error, Pool};

/// A URL naming the given ports on 127.0.0.1, in order, with `params`.
fn url(ports: &[u16], params: &str) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!(
        "postgresql+green://odm:odmtest@{}/postgres?connect_timeout=5&{params}",
        hosts.join(",")
    )
}

/// The port and recovery state of the server a connect through `url`
/// lands on.
fn landing(url: &str) -> Result<(u16, bool), Error> {
    let config = Config::parse(url).expect("the url parses");
    on_green(move || {
        let client = Client::connect(&config)?;
        let row = client.query_one("SELECT inet_server_port(), pg_is_in_recovery()", &[])?;
        let port: i32 = row.try_get(0)?;
        Ok((u16::try_from(port).unwrap(), row.try_get(1)?))
    })
}

/// A TCP port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn read_write_and_primary_land_on_the_primary_and_read_only_and_standby_on_the_standby_whatever_the_order(
) {
    let pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().port();
    let standby = pair.standby().port();
    for attrs in ["read-write", "primary"] {
        let params = format!("target_session_attrs={attrs}");
        assert_eq!(
            landing(&url(&[standby, primary], &params)).unwrap(),
            (primary, false)
        );
        assert_eq!(
            landing(&url(&[primary, standby], &params)).unwrap(),
            (primary, false)
        );
    }
    for attrs in ["read-only", "standby", "prefer-standby"] {
        let params = format!("target_session_attrs={attrs}");
        assert_eq!(
            landing(&url(&[primary, standby], &params)).unwrap(),
            (standby, true)
        );
        assert_eq!(
            landing(&url(&[standby, primary], &params)).unwrap(),
            (standby, true)
        );
    }
    assert_eq!(
        landing(&url(&[standby, primary], "")).unwrap(),
        (standby, true)
    );
}

#[test]
fn prefer_standby_falls_back_to_the_primary_and_a_dead_first_host_is_skipped() {
    let pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().port();
    let dead = closed_port();
    let prefer = "target_session_attrs=prefer-standby";
    assert_eq!(
        landing(&url(&[dead, primary], prefer)).unwrap(),
        (primary, false)
    );
    assert_eq!(
        landing(&url(&[dead, primary], "")).unwrap(),
        (primary, false)
    );
    let random = "load_balance_hosts=random&target_session_attrs=read-write";
    for _ in 0..4 {
        let hosts = [pair.standby().port(), dead, primary];
        assert_eq!(landing(&url(&hosts, random)).unwrap(), (primary, false));
    }
}

#[test]
fn when_no_host_fits_the_error_names_every_host_tried_and_why_but_not_the_password() {
    let pair = ReplicatedCluster::start().unwrap();
    let standby = pair.standby().port();
    let dead = closed_port();
    let err = landing(&url(&[dead, standby], "target_session_attrs=read-write")).unwrap_err();
    let message = err.to_string();
    assert!(err.is_connection_error(), "{err:?}");
    assert!(
        message.contains("target_session_attrs=read-write"),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{dead}: ")),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{standby} is a standby")),
        "{message}"
    );
    assert!(!message.contains("odmtest"), "{message}");
}

#[test]
fn a_pool_on_standby_drops_its_connection_once_the_standby_is_promoted_and_says_why_it_opens_none()
{
    let pair = ReplicatedCluster::start().unwrap();
    let standby = pair.standby().port();
    let pool = Pool::from_url(&format!(
        "{}&pool_size=1&pool_timeout=5",
        url(&[standby], "target_session_attrs=standby")
    ))
    .unwrap();
    let p = pool.clone();
    let in_recovery: bool =
        on_green(move || p.query("SELECT pg_is_in_recovery()", &[])?[0].try_get(0)).unwrap();
    assert!(in_recovery);

    pair.promote().unwrap();
    // The server reports `in_hot_standby=off` with its next answer; the
    // pool then retires the connection, and a new connect finds no
    // standby. The statement that carried the report may have run on the
    // promoted server; the one after it may not.
    let p = pool.clone();
    let err = on_green(move || {
        let _ = p.query("SELECT 1", &[]);
        p.query("SELECT pg_is_in_recovery()", &[]).map(drop)
    })
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("target_session_attrs=standby"),
        "{message}"
    );
    assert!(message.contains("is a read-write primary"), "{message}");
    pool.close();
}

#[test]
fn a_standby_pools_checkouts_after_the_promotion_land_on_no_promoted_server() {
    let pair = ReplicatedCluster::start().unwrap();
    let standby = pair.standby().port();
    let pool = Pool::from_url(&format!(
        "{}&pool_size=1&pool_timeout=5",
        url(&[standby], "target_session_attrs=standby")
    ))
    .unwrap();
    let in_recovery = |pool: &Pool| {
        let p = pool.clone();
        on_green(move || {
            let conn = p.acquire()?;
            conn.query_one("SELECT pg_is_in_recovery()", &[])?
                .try_get::<_, bool>(0)
        })
    };
    assert!(in_recovery(&pool).unwrap());

    pair.promote().unwrap();
    // 14+ report the promotion with the next answer (so the first checkout
    // may still run on the promoted server); on 13 the pool asks at each
    // checkout. Either way the one after it finds no standby.
    let _ = in_recovery(&pool);
    let err = in_recovery(&pool).unwrap_err();
    assert!(
        err.to_string().contains("target_session_attrs=standby"),
        "{err}"
    );
    pool.close();
}

/// What one writing task saw: the rows acknowledged, with when.
#[derive(Debug, Default)]
struct Writes {
    acknowledged: Vec<(i32, i64, Instant)>,
    failed: u64,
}

/// Inserts `(task, 0), (task, 1), ...` through `pool` until `stop`,
/// pausing briefly after an error and never reusing a failed number.
fn write_until(pool: &Pool, task: i32, stop: &AtomicBool) -> Writes {
    let mut writes = Writes::default();
    let mut seq: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        match pool.execute(
            "INSERT INTO writes (task, seq) VALUES ($1, $2)",
            &[&task, &seq],
        ) {
            Ok(_) => writes.acknowledged.push((task, seq, Instant::now())),
            Err(_) => {
                writes.failed += 1;
                may::coroutine::sleep(Duration::from_millis(20));
            }
        }
        seq += 1;
    }
    writes
}

#[test]
fn tasks_writing_through_a_two_host_read_write_url_resume_on_the_promoted_standby_with_every_acknowledged_write_present(
) {
    const TASKS: i32 = 16;
    let mut pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().port();
    let standby = pair.standby().port();
    let url = url(&[primary, standby], "target_session_attrs=read-write");
    let setup = Config::parse(&url).unwrap();
    on_green(move || {
        Client::connect(&setup)?.batch_execute(
            "CREATE TABLE writes (task int4 NOT NULL, seq int8 NOT NULL, PRIMARY KEY (task, seq))",
        )
    })
    .unwrap();

    let pool = Pool::from_url(&format!("{url}&pool_size=8&query_timeout=5000")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (pool, stop) = (pool.clone(), stop.clone());
            spawn(move || write_until(&pool, task, &stop))
        })
        .collect();

    std::thread::sleep(Duration::from_secs(1));
    // Synchronous replication is off: what the standby has not replayed
    // when the primary stops is lost. Wait until it caught up with the
    // acknowledged writes, then stop the primary (the tasks keep writing:
    // a fast shutdown ends the transactions in flight, unacknowledged).
    pair.wait_caught_up().unwrap();
    let stopped_at = Instant::now();
    pair.stop_primary();
    pair.promote().unwrap();
    let promoted_at = Instant::now();
    // Let the tasks write on the new primary for a while.
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let writes: Vec<Writes> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
    pool.close();

    // Every task resumed on the new primary, within the bound.
    let mut slowest = Duration::ZERO;
    for (task, w) in writes.iter().enumerate() {
        let resumed = w
            .acknowledged
            .iter()
            .map(|(_, _, at)| *at)
            .find(|at| *at > promoted_at)
            .unwrap_or_else(|| panic!("task {task} never wrote after the promotion: {w:?}"));
        slowest = slowest.max(resumed - stopped_at);
    }
    assert!(slowest < Duration::from_secs(30), "{slowest:?}");

    // Every acknowledged write is on the new primary.
    let acknowledged: Vec<(i32, i64)> = writes
        .iter()
        .flat_map(|w| w.acknowledged.iter().map(|(t, s, _)| (*t, *s)))
        .collect();
    let check = Config::parse(&url_of_standby(standby)).unwrap();
    let present: std::collections::HashSet<(i32, i64)> = on_green(move || {
        Client::connect(&check)?
            .query("SELECT task, seq FROM writes", &[])?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, Error>>()
    })
    .unwrap();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|r| !present.contains(r))
        .collect();
    let failed: u64 = writes.iter().map(|w| w.failed).sum();
    println!(
        "failover: {} writes acknowledged, {failed} failed, {} lost; every task wrote again \
         {:.2} s after the primary stopped ({:.2} s after the promotion returned)",
        acknowledged.len(),
        lost.len(),
        slowest.as_secs_f64(),
        slowest
            .saturating_sub(promoted_at - stopped_at)
            .as_secs_f64(),
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:?}",
        lost.len()
    );
}

/// The promoted standby, as a read-write single-host URL.
fn url_of_standby(port: u16) -> String {
    url(&[port], "target_session_attrs=read-write")
}

/// What the calls of 100 tasks saw while no host fitted: the slowest
/// failed call, how many failed, and when each task wrote again.
fn calls_while_no_host_fits(fail_fast: bool) -> (Duration, u64, Duration) {
    const TASKS: i32 = 100;
    let mut pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().port();
    let standby = pair.standby().port();
    let url = url(&[primary, standby], "target_session_attrs=read-write");
    let setup = Config::parse(&url).unwrap();
    on_green(move || {
        Client::connect(&setup)?.batch_execute(
            "CREATE TABLE writes (task int4 NOT NULL, seq int8 NOT NULL, PRIMARY KEY (task, seq))",
        )
    })
    .unwrap();
    let pool = Pool::from_url(&format!(
        "{url}&pool_size=10&pool_timeout=20&pool_fail_fast={fail_fast}"
    ))
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let promoted = Arc::new(std::sync::OnceLock::<Instant>::new());
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (pool, stop, promoted) = (pool.clone(), stop.clone(), promoted.clone());
            spawn(move || {
                let (mut slowest_failure, mut failed) = (Duration::ZERO, 0u64);
                let mut resumed = None;
                let mut seq: i64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let outcome = pool.acquire().and_then(|conn| {
                        conn.execute(
                            "INSERT INTO writes (task, seq) VALUES ($1, $2)",
                            &[&task, &seq],
                        )
                    });
                    seq += 1;
                    match outcome {
                        Ok(_) => {
                            if let Some(at) = promoted.get().filter(|at| began > **at) {
                                resumed.get_or_insert(began.elapsed() + (began - *at));
                            }
                        }
                        Err(_) => {
                            failed += 1;
                            slowest_failure = slowest_failure.max(began.elapsed());
                            may::coroutine::sleep(Duration::from_millis(20));
                        }
                    }
                }
                (slowest_failure, failed, resumed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    // No host fits for 5 s: the primary is gone, the standby not promoted
    // yet (as while an HA engine decides).
    pair.stop_primary();
    std::thread::sleep(Duration::from_secs(5));
    pair.promote().unwrap();
    promoted.set(Instant::now()).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let (mut slowest_failure, mut failed, mut resumed) = (Duration::ZERO, 0, Duration::ZERO);
    for (task, t) in tasks.into_iter().enumerate() {
        let (slowest, f, r) = t.join().unwrap();
        slowest_failure = slowest_failure.max(slowest);
        failed += f;
        let r = r.unwrap_or_else(|| panic!("task {task} never wrote after the promotion"));
        resumed = resumed.max(r);
    }
    pool.close();
    println!(
        "pool_fail_fast={fail_fast}: slowest failed call {:.2} s, {failed} failed calls; every \
         task wrote again {:.2} s after the promotion",
        slowest_failure.as_secs_f64(),
        resumed.as_secs_f64()
    );
    (slowest_failure, failed, resumed)
}

#[test]
fn with_pool_fail_fast_100_tasks_fail_at_once_while_no_host_fits_and_resume_once_one_does() {
    let (slowest_failure, failed, resumed) = calls_while_no_host_fits(true);
    assert!(failed > 0);
    // The probe's own connect attempt (both hosts) is the longest a call
    // waits; the others fail at once with its error.
    assert!(
        slowest_failure < Duration::from_secs(3),
        "{slowest_failure:?}"
    );
    assert!(resumed < Duration::from_secs(5), "{resumed:?}");
}

#[test]
fn without_pool_fail_fast_calls_wait_behind_the_connect_backoff_up_to_pool_timeout() {
    let (slowest_failure, _, resumed) = calls_while_no_host_fits(false);
    // One probe per backoff delay (up to 2 s) goes through; the other
    // callers park behind it, each for a delay or more.
    assert!(
        slowest_failure > Duration::from_secs(1),
        "{slowest_failure:?}"
    );
    assert!(resumed < Duration::from_secs(25), "{resumed:?}");
}
