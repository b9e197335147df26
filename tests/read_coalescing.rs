//! Read coalescing: reads marked read-only (`Client::read_only`, and the
//! ORM's own `SELECT`s) that many tasks pipeline on one busy connection
//! share one `Sync`, so the server runs each group as one implicit
//! transaction. Each test checks every task's answer: exactly its own rows
//! or its own error, through an error, a cancel, a `statement_timeout`, a
//! `query_timeout` and a dropped connection in the middle of a group.
//!
//! Whether reads were grouped is seen on the server: `txid_current()`
//! names the transaction a statement ran in, so grouped reads share ids.
//!
//! Run: `cargo test --test read_coalescing`

mod green_tasks;

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use green_tasks::{on_green, spawn};
use odm::pg::{Client, Config, Error, Pool};
use odm::testing::{test_database, TestDatabase};
use odm::Mapper;

const TASKS: i32 = 200;
const READS: i32 = 20;

fn client(db: &TestDatabase, settings: &str) -> Arc<Client> {
    let url = format!("{}?{settings}", db.url());
    let config = Config::parse(&url).expect("the url parses");
    Arc::new(on_green(move || {
        Client::connect(&config).expect("connects")
    }))
}

/// `SELECT 100 / n, txid_current()` from `TASKS` tasks at once, `READS`
/// each, through `read` (read-only or not); every task checks its own
/// answers — `100 / n`, or division by zero exactly where `n` is 0 — and
/// the transaction ids are returned.
fn divide_from_many_tasks(
    client: &Arc<Client>,
    read_only: bool,
    divisor: fn(i32, i32) -> i32,
) -> Vec<i64> {
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let client = client.clone();
            spawn(move || {
                let mut txids = Vec::new();
                for read in 0..READS {
                    let n = divisor(task, read);
                    let sql = "SELECT 100 / $1::int4, txid_current()";
                    let rows = if read_only {
                        client.read_only().query(sql, &[&n])
                    } else {
                        client.query(sql, &[&n])
                    };
                    match rows {
                        Ok(rows) => {
                            assert_ne!(n, 0, "task {task} read {read}: no error for 100 / 0");
                            assert_eq!(rows.len(), 1);
                            assert_eq!(rows[0].get::<_, i32>(0), 100 / n, "task {task}");
                            txids.push(rows[0].get::<_, i64>(1));
                        }
                        Err(e) => {
                            assert_eq!(n, 0, "task {task} read {read} got another's error: {e}");
                            assert_eq!(e.code(), Some("22012"), "{e}");
                        }
                    }
                }
                txids
            })
        })
        .collect();
    tasks
        .into_iter()
        .flat_map(|t| t.join().expect("the task ends"))
        .collect()
}

fn distinct(txids: &[i64]) -> usize {
    txids.iter().collect::<HashSet<_>>().len()
}

fn never_zero(task: i32, read: i32) -> i32 {
    1 + (task * READS + read) % 50
}

/// Divides by zero at every 7th read (reads 3, 10 and 17) of every 3rd task.
fn zero_at_every_7th_read_of_every_3rd_task(task: i32, read: i32) -> i32 {
    if task % 3 == 0 && read % 7 == 3 {
        0
    } else {
        never_zero(task, read)
    }
}

#[test]
fn reads_of_many_tasks_share_a_sync_and_each_task_gets_its_own_rows() {
    let db = test_database().unwrap();
    let client = client(&db, "");
    let txids = divide_from_many_tasks(&client, true, never_zero);
    assert_eq!(txids.len(), (TASKS * READS) as usize);
    let transactions = distinct(&txids);
    assert!(
        transactions < txids.len() / 2,
        "{} reads ran in {transactions} transactions: they were not grouped",
        txids.len()
    );
}

#[test]
fn statements_not_marked_read_only_and_reads_with_coalescing_off_each_get_their_own_sync() {
    let db = test_database().unwrap();
    let writes = divide_from_many_tasks(&client(&db, ""), false, never_zero);
    assert_eq!(distinct(&writes), writes.len(), "a statement shared a Sync");
    let reads = divide_from_many_tasks(&client(&db, "coalesce_reads=false"), true, never_zero);
    assert_eq!(distinct(&reads), reads.len(), "a read shared a Sync");
}

#[test]
fn an_error_in_a_group_reaches_only_its_own_task_and_the_reads_skipped_behind_it_are_answered() {
    let db = test_database().unwrap();
    let client = client(&db, "");
    let txids = divide_from_many_tasks(&client, true, zero_at_every_7th_read_of_every_3rd_task);
    let failed = (0..TASKS).filter(|t| t % 3 == 0).count() * 3;
    assert_eq!(txids.len(), (TASKS * READS) as usize - failed);
    assert!(distinct(&txids) < txids.len() / 2, "reads were not grouped");
}

#[test]
fn unnamed_reads_without_a_statement_cache_are_grouped_and_answered_the_same() {
    let db = test_database().unwrap();
    let client = client(&db, "statement_cache=false");
    let txids = divide_from_many_tasks(&client, true, zero_at_every_7th_read_of_every_3rd_task);
    let failed = (0..TASKS).filter(|t| t % 3 == 0).count() * 3;
    assert_eq!(txids.len(), (TASKS * READS) as usize - failed);
    assert!(distinct(&txids) < txids.len() / 2, "reads were not grouped");
}

/// Reads of `TASKS` tasks that run until `stop` passes, each checking its
/// answers; a failed read is handed to `failure`, which says whether the
/// task goes on. Each task ends with how many of its reads were answered.
fn read_until(
    client: &Arc<Client>,
    stop: Instant,
    failure: fn(&Error) -> bool,
) -> Vec<green::Submitted<u64>> {
    (0..TASKS)
        .map(|task| {
            let client = client.clone();
            spawn(move || {
                let mut answered = 0;
                let mut read = 0;
                while Instant::now() < stop {
                    read += 1;
                    let n = task * 1_000 + read;
                    match client.read_only().query_one("SELECT $1::int4 + 1", &[&n]) {
                        Ok(row) => {
                            assert_eq!(row.get::<_, i32>(0), n + 1, "task {task}");
                            answered += 1;
                        }
                        Err(e) => {
                            if !failure(&e) {
                                break;
                            }
                        }
                    }
                }
                answered
            })
        })
        .collect()
}

fn answered(tasks: Vec<green::Submitted<u64>>) -> u64 {
    tasks
        .into_iter()
        .map(|t| t.join().expect("the task ends"))
        .sum()
}

fn unexpected(e: &Error) -> bool {
    panic!("a neighbour's read failed: {e}")
}

#[test]
fn a_cancelled_read_in_a_group_fails_alone_and_its_neighbours_are_answered() {
    let db = test_database().unwrap();
    let client = client(&db, "");
    let stop = Instant::now() + Duration::from_secs(3);
    let readers = read_until(&client, stop, unexpected);
    let sleeper = {
        let client = client.clone();
        spawn(move || client.read_only().query("SELECT pg_sleep(30)", &[]))
    };
    sleep(Duration::from_millis(800));
    let token = client.cancel_token();
    on_green(move || token.cancel_query().expect("the cancel is sent"));
    let e = sleeper.join().unwrap().unwrap_err();
    assert_eq!(e.code(), Some("57014"), "{e}");
    assert!(answered(readers) > 0);
    assert!(!client.is_closed());
}

#[test]
fn a_read_past_its_statement_timeout_fails_alone_and_its_neighbours_are_answered() {
    let db = test_database().unwrap();
    let client = client(&db, "options=-c%20statement_timeout%3D700");
    let stop = Instant::now() + Duration::from_secs(3);
    let readers = read_until(&client, stop, unexpected);
    let sleeper = read_among_the_readers(&client, "SELECT pg_sleep(5)");
    let e = sleeper.join().unwrap().unwrap_err();
    assert_eq!(e.code(), Some("57014"), "{e}");
    assert!(answered(readers) > 0);
    assert!(!client.is_closed());
}

/// Sends the read-only `sql` from a task of its own once the readers have
/// filled the connection (300 ms), so it runs in the middle of their groups.
fn read_among_the_readers(
    client: &Arc<Client>,
    sql: &'static str,
) -> green::Submitted<Result<Vec<odm::pg::Row>, Error>> {
    let client = client.clone();
    spawn(move || {
        may::coroutine::sleep(Duration::from_millis(300));
        client.read_only().query(sql, &[])
    })
}

/// A failure a read may see when its connection closes under it: closed,
/// never an outcome in doubt (a read changes nothing).
fn closed(e: &Error) -> bool {
    assert!(e.is_closed(), "not a closed-connection error: {e}");
    assert!(
        !e.is_commit_outcome_unknown(),
        "a read's outcome in doubt: {e}"
    );
    false
}

/// [`closed`], or a `query_timeout` of its own: a read queued behind a
/// slow one waits for it, grouped or not.
fn closed_or_timed_out(e: &Error) -> bool {
    if e.is_query_timeout() {
        return true;
    }
    closed(e)
}

#[test]
fn a_read_past_its_query_timeout_fails_and_every_neighbour_gets_its_own_answer_or_a_closed_error() {
    let db = test_database().unwrap();
    let client = client(&db, "query_timeout=1000");
    let stop = Instant::now() + Duration::from_secs(6);
    let readers = read_until(&client, stop, closed_or_timed_out);
    let sleeper = read_among_the_readers(&client, "SELECT pg_sleep(30)");
    let started = Instant::now();
    let e = sleeper.join().unwrap().unwrap_err();
    assert!(e.is_query_timeout() || e.is_closed(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "{e}");
    assert!(answered(readers) > 0);
}

#[test]
fn a_connection_dropped_in_the_middle_of_groups_fails_each_read_as_closed_and_none_wrongly() {
    let db = test_database().unwrap();
    let client = client(&db, "");
    let pid = client.backend_pid();
    let stop = Instant::now() + Duration::from_secs(6);
    let readers = read_until(&client, stop, closed);
    sleep(Duration::from_millis(500));
    let killer = client_for(&db);
    on_green(move || {
        killer
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .expect("the backend is terminated");
    });
    assert!(answered(readers) > 0);
    assert!(client.is_closed());
}

fn client_for(db: &TestDatabase) -> Client {
    let config = Config::parse(&db.url()).expect("the url parses");
    on_green(move || Client::connect(&config).expect("connects"))
}

#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "numbered")]
struct Numbered {
    #[odm(primary_key)]
    id: Option<i32>,
    /// The transaction the row was read in (a view column).
    tx: i64,
}

#[test]
fn the_orms_reads_of_many_sessions_share_a_sync_and_each_gets_its_own_object() {
    let db = test_database().unwrap();
    // One shared connection, so that every read queues behind the slow
    // statement below and finds the connection busy.
    let url = format!("{}?pool_max_shared=1", db.url());
    let mapper = on_green(move || {
        let mapper = Mapper::new(&url).expect("mapper");
        mapper.register::<Numbered>().expect("registers");
        mapper
            .autocommit(|s| {
                s.execute(
                    "CREATE VIEW numbered AS \
                     SELECT g AS id, txid_current() AS tx FROM generate_series(1, 100000) g",
                    &[],
                )
            })
            .expect("the view is created");
        mapper
    });
    let slow = {
        let mapper = mapper.clone();
        spawn(move || {
            let pool = mapper
                .engine(None)
                .expect("the default bind")
                .pool()
                .clone();
            pool.query("SELECT pg_sleep(1)", &[]).expect("sleeps");
        })
    };
    sleep(Duration::from_millis(300));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let mapper = mapper.clone();
            spawn(move || {
                let mut txids = Vec::new();
                for read in 0..5 {
                    let id = 1 + task * 5 + read;
                    let mut session = mapper.session().expect("a session");
                    let row: Numbered = session.get(id).expect("read").expect("found");
                    assert_eq!(row.id, Some(id));
                    txids.push(row.tx);
                }
                txids
            })
        })
        .collect();
    slow.join().expect("the slow statement ends");
    let txids: Vec<i64> = tasks
        .into_iter()
        .flat_map(|t| t.join().expect("the task ends"))
        .collect();
    assert!(
        distinct(&txids) < txids.len() / 2,
        "{} ORM reads ran in {} transactions: they were not grouped",
        txids.len(),
        distinct(&txids)
    );
}

#[test]
fn the_pools_shared_reads_share_a_sync_and_state_changing_statements_are_still_refused() {
    let db = test_database().unwrap();
    let pool = Pool::from_url(&format!("{}?pool_max_shared=1", db.url())).expect("the url parses");
    let p = pool.clone();
    on_green(move || {
        let e = p
            .read_only()
            .query("SET search_path = nowhere", &[])
            .unwrap_err();
        assert!(matches!(e, Error::NotShareable { .. }), "{e:?}");
    });
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = pool.clone();
            spawn(move || {
                (0..READS)
                    .map(|read| {
                        let n = task * READS + read;
                        let row = pool
                            .read_only()
                            .query_one("SELECT $1::int4, txid_current()", &[&n])
                            .expect("read");
                        assert_eq!(row.get::<_, i32>(0), n);
                        row.get::<_, i64>(1)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let txids: Vec<i64> = tasks
        .into_iter()
        .flat_map(|t| t.join().expect("the task ends"))
        .collect();
    assert!(
        distinct(&txids) < txids.len() / 2,
        "{} pool reads ran in {} transactions: they were not grouped",
        txids.len(),
        distinct(&txids)
    );
}
