//! `pool_max_shared`: shared (pipelined) statements spread over at most that
//! many connections at once, while exclusive checkouts still use the rest
//! of the pool. Against a real PostgreSQL, on a fresh database each.
//!
//! Run: `cargo test --test pool_shared_cap`

mod green_tasks;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use green_tasks::{on_green, spawn};
use may::sync::{mpsc, SyncFlag};
use odm::testing::{test_database, TestDatabase};
use odm::Pool;

fn pool(db: &TestDatabase, settings: &str) -> Pool {
    Pool::from_url(&format!("{}?{settings}", db.url())).expect("the url parses")
}

/// Polls (from the test thread) until `done` holds, failing after 30 s.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Exclusive transactions, each on its own checked-out connection, held
/// open (after their insert) until released; each returns its backend pid.
struct Transactions {
    release: Arc<SyncFlag>,
    tasks: Vec<green::Submitted<i32>>,
}

impl Transactions {
    /// Starts `n` transactions; returns once each has inserted its row and
    /// holds its connection.
    fn start(pool: &Pool, n: usize) -> Transactions {
        let release = Arc::new(SyncFlag::new());
        let (ready_tx, ready_rx) = mpsc::channel();
        let tasks = (0..n)
            .map(|_| {
                let pool = pool.clone();
                let release = Arc::clone(&release);
                let ready = ready_tx.clone();
                spawn(move || {
                    let conn = pool.acquire().expect("a transaction gets a connection");
                    let pid = conn.backend_pid();
                    conn.batch_execute("BEGIN").expect("begin");
                    conn.execute("INSERT INTO tx_row (pid) VALUES ($1)", &[&pid])
                        .expect("the transaction's insert");
                    ready.send(()).expect("the test listens");
                    release.wait();
                    conn.batch_execute("COMMIT").expect("commit");
                    pid
                })
            })
            .collect();
        for _ in 0..n {
            ready_rx.recv().expect("every transaction reports");
        }
        Transactions { release, tasks }
    }

    /// Commits them all; their backend pids.
    fn commit(self) -> Vec<i32> {
        self.release.fire();
        self.tasks
            .into_iter()
            .map(|t| t.join().expect("a transaction task"))
            .collect()
    }
}

#[test]
fn shared_statements_of_256_tasks_on_a_pool_of_8_with_max_shared_2_run_on_2_connections_while_transactions_get_their_own(
) {
    let db = test_database().expect("a test database");
    let pool = pool(&db, "pool_size=8&pool_max_shared=2");
    assert_eq!(pool.max_shared(), 2);
    let setup = pool.clone();
    on_green(move || {
        setup
            .execute("CREATE TABLE shared_row (task int4, pid int4)", &[])
            .unwrap();
        setup
            .execute("CREATE TABLE tx_row (pid int4)", &[])
            .unwrap();
    });
    // Three transactions hold connections before the shared load starts,
    // three more start in the middle of it.
    let early = Transactions::start(&pool, 3);

    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(SyncFlag::new());
    let shared: Vec<_> = (0..256)
        .map(|task: i32| {
            let pool = pool.clone();
            let done = Arc::clone(&done);
            let stop = Arc::clone(&stop);
            spawn(move || {
                let mut pids = HashSet::new();
                let mut acknowledged = 0u64;
                // at least 10 statements each, then until told to stop
                while acknowledged < 10 || !stop.is_fired() {
                    let row = pool
                        .query_one(
                            "INSERT INTO shared_row (task, pid) VALUES ($1, pg_backend_pid()) \
                             RETURNING pid",
                            &[&task],
                        )
                        .expect("a shared insert");
                    pids.insert(row.get::<_, i32>(0));
                    acknowledged += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (pids, acknowledged)
            })
        })
        .collect();
    eventually("the shared load runs", || {
        done.load(Ordering::Relaxed) >= 500
    });
    let middle = Transactions::start(&pool, 3);
    let during = pool.size();
    let late_pids = middle.commit();
    let early_pids = early.commit();
    stop.fire();

    let mut shared_pids = HashSet::new();
    let mut acknowledged = 0u64;
    for task in shared {
        let (pids, n) = task.join().expect("a shared task");
        shared_pids.extend(pids);
        acknowledged += n;
    }
    assert!(
        shared_pids.len() <= 2,
        "shared statements ran on {} connections: {shared_pids:?}",
        shared_pids.len()
    );
    let tx_pids: HashSet<i32> = early_pids.iter().chain(&late_pids).copied().collect();
    assert_eq!(tx_pids.len(), 6, "six transactions held six connections");
    assert!(
        tx_pids.is_disjoint(&shared_pids),
        "a transaction ran on a shared connection: {tx_pids:?} / {shared_pids:?}"
    );
    assert!(during <= 8, "the pool opened {during} connections");

    let check = pool.clone();
    let (stored, stored_pids, committed): (i64, i64, i64) = on_green(move || {
        let row = check
            .query_one(
                "SELECT count(*), count(DISTINCT pid), (SELECT count(*) FROM tx_row) \
                 FROM shared_row",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    });
    assert_eq!(
        stored as u64, acknowledged,
        "every acknowledged insert is stored"
    );
    assert!(acknowledged >= 2_560);
    assert_eq!(stored_pids as usize, shared_pids.len());
    assert_eq!(committed, 6);
}

#[test]
fn the_default_cap_is_one_connection_per_scheduler_thread_within_pool_size() {
    let db = test_database().expect("a test database");
    let threads = green::runtime::settings().scheduler_threads;
    let pool = pool(&db, "pool_size=8");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            spawn(move || {
                (0..20)
                    .map(|_| {
                        let row = pool.query_one("SELECT pg_backend_pid()", &[]).unwrap();
                        row.get::<_, i32>(0)
                    })
                    .collect::<HashSet<i32>>()
            })
        })
        .collect();
    let mut pids = HashSet::new();
    for task in tasks {
        pids.extend(task.join().expect("a shared task"));
    }
    let cap = threads.clamp(1, 8);
    assert_eq!(pool.max_shared(), cap);
    assert!(
        !pids.is_empty() && pids.len() <= cap,
        "{} connections for a cap of {cap}",
        pids.len()
    );
    assert!(pool.size() <= cap);
}

#[test]
fn a_max_shared_above_pool_size_is_clamped_to_it() {
    let db = test_database().expect("a test database");
    let pool = pool(&db, "pool_size=3&pool_max_shared=20");
    assert_eq!(pool.options().get_max_shared(), Some(20));
    assert_eq!(pool.max_shared(), 3);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let pool = pool.clone();
            spawn(move || {
                for _ in 0..20 {
                    pool.query_one("SELECT pg_sleep(0.001)", &[]).unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.join().expect("a shared task");
    }
    assert!(pool.size() <= 3);
}

#[test]
fn a_bad_pool_max_shared_in_the_url_is_a_config_error_naming_it() {
    let db = test_database().expect("a test database");
    for bad in ["0", "abc"] {
        let err = Pool::from_url(&format!("{}?pool_max_shared={bad}", db.url())).unwrap_err();
        assert!(matches!(err, odm::pg::Error::Config(_)), "{err:?}");
        assert!(err.to_string().contains("pool_max_shared"), "{err}");
    }
}
