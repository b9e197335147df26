//! Shared mode carries no state: statements that would leave state on a
//! shared, pipelined connection are refused before they are sent, and a
//! shared request that ends inside a transaction never reports `Ok`.
//!
//! Run: `cargo test --test shared_mode`

mod green_tasks;

use std::sync::Arc;

use green_tasks::{on_green, spawn};
use odm::pg::{Client, Config};
use odm::pg::{Error, Pool};
use odm::testing::{test_database, TestDatabase};

fn pool(db: &TestDatabase, settings: &str) -> Pool {
    Pool::from_url(&format!("{}?{settings}", db.url())).expect("the url parses")
}

fn count(pool: &Pool, table: &str) -> i64 {
    let pool = pool.clone();
    let sql = format!("SELECT count(*) FROM {table}");
    on_green(move || pool.query_one(&sql, &[]).unwrap().get(0))
}

#[test]
fn a_stray_begin_in_shared_mode_is_refused_and_every_acknowledged_insert_is_stored() {
    let db = test_database().unwrap();
    let pool = pool(&db, "pool_size=1");
    let setup = pool.clone();
    on_green(move || setup.execute("CREATE TABLE t (id int4)", &[]).unwrap());
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let pool = pool.clone();
            spawn(move || {
                let mut acknowledged = 0u64;
                for j in 0..100 {
                    if i == 7 && j == 50 {
                        let e = pool.execute("BEGIN", &[]).unwrap_err();
                        assert!(matches!(e, Error::NotShareable { .. }), "{e:?}");
                        assert!(e.to_string().contains("pool.acquire()"), "{e}");
                    }
                    if pool.execute("INSERT INTO t VALUES (1)", &[]).is_ok() {
                        acknowledged += 1;
                    }
                }
                acknowledged
            })
        })
        .collect();
    let acknowledged: u64 = tasks.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(acknowledged, 2_000);
    assert_eq!(count(&pool, "t"), 2_000);
}

#[test]
fn state_changing_statements_are_refused_on_shared_connections_before_they_are_sent() {
    let db = test_database().unwrap();
    let pool = pool(&db, "pool_size=2");
    let p = pool.clone();
    on_green(move || {
        p.execute("CREATE TABLE c (id int4)", &[]).unwrap();
        for sql in [
            "BEGIN",
            "start transaction",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT s",
            "COPY c FROM STDIN",
            "LISTEN jobs",
            "SET search_path = nowhere",
            "RESET ALL",
            "PREPARE p AS SELECT 1",
            "DEALLOCATE ALL",
            "DISCARD ALL",
            "DECLARE cur CURSOR FOR SELECT 1",
            "CREATE TEMP TABLE tmp (a int)",
        ] {
            let e = p.execute(sql, &[]).unwrap_err();
            assert!(matches!(e, Error::NotShareable { .. }), "{sql}: {e:?}");
            let e = p.query(sql, &[]).unwrap_err();
            assert!(matches!(e, Error::NotShareable { .. }), "{sql}: {e:?}");
        }
        let e = p.execute("COPY c FROM STDIN", &[]).unwrap_err();
        assert!(e.to_string().contains("copy_in()"), "{e}");
        // Nothing was sent: the connections are as they were.
        let path: String = p.query_one("SHOW search_path", &[]).unwrap().get(0);
        assert!(!path.contains("nowhere"));
        assert_eq!(p.execute("INSERT INTO c VALUES (1)", &[]).unwrap(), 1);
    });
    assert_eq!(pool.stats().connections_discarded, 0);
}

#[test]
fn copy_from_stdin_through_an_acquired_connection_fails_at_once_and_the_connection_is_reused() {
    let db = test_database().unwrap();
    let pool = pool(&db, "pool_size=1");
    let p = pool.clone();
    on_green(move || {
        let conn = p.acquire().unwrap();
        conn.batch_execute("CREATE TABLE c (id int4)").unwrap();
        let pid = conn.backend_pid();
        let started = std::time::Instant::now();
        let e = conn.execute("COPY c FROM STDIN", &[]).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(e, Error::CopyNotAllowed(_)), "{e:?}");
        assert_eq!(conn.execute("INSERT INTO c VALUES (1)", &[]).unwrap(), 1);
        drop(conn);
        let again = p.acquire().unwrap();
        assert_eq!(again.backend_pid(), pid);
    });
}

#[test]
fn a_shared_client_request_that_leaves_a_transaction_open_fails_with_everything_pipelined_behind_it(
) {
    let db = test_database().unwrap();
    let url = db.url();
    let (acknowledged, present) = on_green(move || {
        let config = Config::parse(&url).unwrap();
        let setup = Client::connect(&config).unwrap();
        setup.batch_execute("CREATE TABLE s (id int4)").unwrap();
        let client = Arc::new(Client::connect(&config).unwrap());
        client.set_shared(true);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let client = client.clone();
                spawn(move || {
                    let mut acknowledged = 0u64;
                    for j in 0..50 {
                        if i == 3 && j == 10 {
                            // Not through the pool, so nothing parses it:
                            // the backstop must catch it.
                            let e = client.batch_execute("BEGIN").unwrap_err();
                            assert!(e.is_closed(), "{e:?}");
                            assert!(e.to_string().contains("left a transaction open"), "{e}");
                        }
                        if client.execute("INSERT INTO s VALUES (1)", &[]).is_ok() {
                            acknowledged += 1;
                        }
                    }
                    acknowledged
                })
            })
            .collect();
        let acknowledged: u64 = tasks.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(client.is_closed());
        let present: i64 = setup
            .query_one("SELECT count(*) FROM s", &[])
            .unwrap()
            .get(0);
        (acknowledged, present)
    });
    assert!(acknowledged < 1_000, "the connection was closed");
    assert_eq!(present as u64, acknowledged);
}
