//! The bounded statement cache: evicted, stale and forgotten statements are
//! closed on the server, and statements callers hold keep working.

use std::sync::Arc;
use std::time::Instant;

use odm::pg::{Client, TransactionStatus};
use odm::testing::test_database;

use super::{connect, go, on_coroutine, with_client};

/// The statements the server holds for this session (asked on the same
/// connection, so every `Close` queued before has been processed).
fn prepared_on_server(c: &Client) -> i64 {
    c.query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .unwrap()
        .get(0)
}

/// A statement whose SQL text is unique to `n`.
fn distinct_sql(n: i32) -> String {
    format!("SELECT {n}::int4 + $1")
}

#[test]
fn three_thousand_distinct_statements_leave_at_most_the_capacity_prepared() {
    with_client(|c, _| {
        let capacity = c.config().statement_cache_capacity();
        assert_eq!(capacity, 256);
        let started = Instant::now();
        for n in 0..3000 {
            let row = c.query_one(&distinct_sql(n), &[&1i32]).unwrap();
            assert_eq!(row.get::<_, i32>(0), n + 1);
        }
        let elapsed = started.elapsed();
        assert!(
            c.cached_statements() <= capacity,
            "{}",
            c.cached_statements()
        );
        let on_server = prepared_on_server(&c);
        // The cache, plus the count query itself when it was not cached yet.
        assert!(on_server <= capacity as i64 + 1, "{on_server} prepared");
        assert!(on_server >= capacity as i64 - 1, "{on_server} prepared");
        eprintln!("3000 distinct statements in {elapsed:?}, {on_server} left prepared");
    });
}

#[test]
fn a_statement_handle_held_across_its_eviction_still_runs() {
    let db = test_database().unwrap();
    let url = format!("{}?statement_cache_capacity=4", db.url());
    on_coroutine(move || {
        let c = connect(&url);
        let held = c.prepare("SELECT $1::int4 * 7").unwrap();
        for n in 0..50 {
            c.query_one(&distinct_sql(n), &[&1i32]).unwrap();
        }
        let still_prepared: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                &[&"SELECT $1::int4 * 7"],
            )
            .unwrap()
            .get(0);
        assert_eq!(still_prepared, 1);
        let rows = c.query_statement(&held, &[&6i32]).unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 42);
        assert_eq!(c.execute_statement(&held, &[&1i32]).unwrap(), 1);
        // Held statements stay; the rest is within the capacity.
        assert!(c.cached_statements() <= 5, "{}", c.cached_statements());
        assert!(prepared_on_server(&c) <= 6);
        // Let go, it is evicted like any other.
        drop(held);
        for n in 50..60 {
            c.query_one(&distinct_sql(n), &[&1i32]).unwrap();
        }
        assert!(c.cached_statements() <= 4, "{}", c.cached_statements());
        assert!(prepared_on_server(&c) <= 5);
    });
}

#[test]
fn a_cached_statement_still_runs_after_discard_all() {
    with_client(|c, _| {
        let sql = "SELECT $1::int4 + 1";
        let held = c.prepare(sql).unwrap();
        assert_eq!(c.query_one(sql, &[&1i32]).unwrap().get::<_, i32>(0), 2);
        assert!(prepared_on_server(&c) >= 2);
        c.batch_execute("DISCARD ALL").unwrap();
        assert_eq!(c.cached_statements(), 0);
        assert_eq!(c.query_one(sql, &[&2i32]).unwrap().get::<_, i32>(0), 3);
        assert_eq!(
            c.query_statement(&held, &[&3i32]).unwrap()[0].get::<_, i32>(0),
            4
        );
        // The same through the extended protocol.
        c.execute("DISCARD ALL", &[]).unwrap();
        assert_eq!(c.cached_statements(), 0);
        assert_eq!(c.query_one(sql, &[&4i32]).unwrap().get::<_, i32>(0), 5);
        assert_eq!(
            c.query_statement(&held, &[&5i32]).unwrap()[0].get::<_, i32>(0),
            6
        );
    });
}

#[test]
fn a_cached_statement_still_runs_after_deallocate_all_inside_a_transaction() {
    with_client(|mut c, _| {
        let sql = "SELECT $1::int4 + 1";
        let held = c.prepare(sql).unwrap();
        let tx = c.transaction().unwrap();
        assert_eq!(tx.query(sql, &[&1i32]).unwrap()[0].get::<_, i32>(0), 2);
        // Inside a transaction a statement the server forgot could not be
        // prepared again after the fact: the cache must know beforehand.
        tx.execute("DEALLOCATE ALL", &[]).unwrap();
        assert_eq!(tx.query(sql, &[&2i32]).unwrap()[0].get::<_, i32>(0), 3);
        tx.batch_execute("DEALLOCATE ALL").unwrap();
        assert_eq!(
            tx.query_statement(&held, &[&3i32]).unwrap()[0].get::<_, i32>(0),
            4
        );
        tx.commit().unwrap();
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
    });
}

#[test]
fn a_statement_cache_capacity_of_zero_prepares_nothing_named() {
    let db = test_database().unwrap();
    let url = format!("{}?statement_cache_capacity=0", db.url());
    on_coroutine(move || {
        let c = connect(&url);
        assert_eq!(c.config().statement_cache_capacity(), 0);
        let held = c.prepare("SELECT $1::int4 * 2").unwrap();
        for n in 0..20 {
            c.query_one(&distinct_sql(n), &[&1i32]).unwrap();
        }
        assert_eq!(
            c.query_statement(&held, &[&4i32]).unwrap()[0].get::<_, i32>(0),
            8
        );
        assert_eq!(c.cached_statements(), 0);
        assert_eq!(prepared_on_server(&c), 0);
    });
}

#[test]
fn a_stale_cached_statement_is_closed_on_the_server() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE s (a int4); INSERT INTO s VALUES (1)")
            .unwrap();
        let held = c.prepare("SELECT * FROM s").unwrap();
        assert_eq!(c.query("SELECT * FROM s", &[]).unwrap().len(), 1);
        c.batch_execute("ALTER TABLE s ALTER a TYPE int8").unwrap();
        // "cached plan must not change result type": closed, prepared again.
        let rows = c.query("SELECT * FROM s", &[]).unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 1);
        let rows = c.query_statement(&held, &[]).unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 1);
        let names: Vec<String> = c
            .query("SELECT statement FROM pg_prepared_statements", &[])
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect();
        let copies = names.iter().filter(|s| *s == "SELECT * FROM s").count();
        assert_eq!(copies, 1, "{names:?}");
    });
}

#[test]
fn tasks_sharing_a_connection_with_a_tiny_cache_never_see_a_closed_statement() {
    let db = test_database().unwrap();
    let url = format!("{}?statement_cache_capacity=2", db.url());
    on_coroutine(move || {
        let c = Arc::new(connect(&url));
        // Inside a transaction a statement closed under a task could not be
        // prepared again: its run would fail.
        c.batch_execute("BEGIN").unwrap();
        let tasks: Vec<_> = (0..8i32)
            .map(|t| {
                let c = c.clone();
                go(move || {
                    for n in 0..100i32 {
                        // Half the statements are shared between the tasks,
                        // so one task evicts what another is about to run.
                        let sql = distinct_sql(if n % 2 == 0 { n } else { t * 1000 + n });
                        let row = c.query_one(&sql, &[&1i32]).unwrap();
                        assert_eq!(
                            row.get::<_, i32>(0),
                            if n % 2 == 0 { n } else { t * 1000 + n } + 1
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.join().unwrap();
        }
        c.batch_execute("COMMIT").unwrap();
        // Statements held while the tasks ran kept the cache above its
        // capacity; the next new statement (the count) sheds the excess.
        let on_server = prepared_on_server(&c);
        assert!(on_server <= 2, "{on_server} prepared");
        assert!(c.cached_statements() <= 2, "{}", c.cached_statements());
    });
}
