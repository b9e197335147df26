//! Parking, pipelining on a shared client, the statement cache, cancellation and timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use odm::pg::{Client, Config, TransactionStatus};

use odm::testing::test_database;

use crate::{connect, go, on_coroutine, with_client};

#[test]
fn two_hundred_sleeping_tasks_on_their_own_connections_overlap() {
    let db = test_database().unwrap();
    let config = Arc::new(Config::parse(&db.url()).unwrap());
    // Connecting (SCRAM is CPU work, slow in debug builds) is not timed.
    let connecting: Vec<_> = (0..200)
        .map(|_| {
            let config = config.clone();
            go(move || Client::connect(&config).map_err(|e| format!("{e} ({e:?})")))
        })
        .collect();
    let (clients, errors): (Vec<_>, Vec<_>) = connecting
        .into_iter()
        .map(|h| h.join().unwrap())
        .partition(Result::is_ok);
    let errors: Vec<String> = errors.into_iter().filter_map(Result::err).collect();
    assert!(errors.is_empty(), "connect failed: {errors:?}");
    let clients: Vec<Client> = clients.into_iter().filter_map(Result::ok).collect();
    let started = Instant::now();
    let sleeping: Vec<_> = clients
        .into_iter()
        .map(|c| {
            go(move || {
                c.execute("SELECT pg_sleep(0.2)", &[]).unwrap();
            })
        })
        .collect();
    for h in sleeping {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    // One after the other this takes 40 s; parked waits overlap.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn many_tasks_sharing_one_client_get_their_own_answers_in_order() {
    with_client(|c, _| {
        let c = Arc::new(c);
        let handles: Vec<_> = (0..64i32)
            .map(|task| {
                let c = c.clone();
                go(move || {
                    for i in 0..50i32 {
                        if (task + i) % 17 == 0 {
                            let e = c.query("SELECT 1/0", &[]).unwrap_err();
                            assert_eq!(e.code(), Some("22012"));
                        } else {
                            let v = task * 1000 + i;
                            let row = c.query_one("SELECT $1::int4 + 0", &[&v]).unwrap();
                            assert_eq!(row.get::<_, i32>(0), v);
                            let rows = c
                                .query("SELECT generate_series(1, $1)", &[&(i % 5 + 1)])
                                .unwrap();
                            assert_eq!(rows.len() as i32, i % 5 + 1);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(!c.is_closed());
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
    });
}

#[test]
fn for_each_row_hands_over_a_large_answer_in_order_while_other_tasks_share_the_client() {
    with_client(|c, _| {
        c.set_shared(true);
        let c = Arc::new(c);
        let streamer = {
            let c = c.clone();
            go(move || {
                let mut next = 1i32;
                let n = c
                    .for_each_row(
                        "SELECT i, repeat('x', 100) FROM generate_series(1, $1) AS i",
                        &[&200_000i32],
                        |row| {
                            assert_eq!(row.get::<_, i32>(0), next);
                            assert_eq!(row.get::<_, &str>(1).len(), 100);
                            next += 1;
                            Ok(())
                        },
                    )
                    .unwrap();
                (n, next)
            })
        };
        let others: Vec<_> = (0..16i32)
            .map(|task| {
                let c = c.clone();
                go(move || {
                    for i in 0..50i32 {
                        let v = task * 1000 + i;
                        let row = c.query_one("SELECT $1::int4 + 0", &[&v]).unwrap();
                        assert_eq!(row.get::<_, i32>(0), v);
                    }
                })
            })
            .collect();
        let (n, next) = streamer.join().unwrap();
        assert_eq!(n, 200_000);
        assert_eq!(next, 200_001);
        for h in others {
            h.join().unwrap();
        }
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
    });
}

#[test]
fn an_error_from_the_row_function_stops_the_delivery_and_the_connection_goes_on() {
    with_client(|c, _| {
        let mut seen = 0;
        let e = c
            .for_each_row("SELECT generate_series(1, 1000)", &[], |_| {
                seen += 1;
                if seen == 10 {
                    return Err(odm::pg::Error::RowCount(seen));
                }
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(e, odm::pg::Error::RowCount(10)), "{e:?}");
        assert_eq!(seen, 10, "no row is given after the function's error");
        let row = c.query_one("SELECT 7", &[]).unwrap();
        assert_eq!(row.get::<_, i32>(0), 7);
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
    });
}

#[test]
fn a_server_error_after_some_rows_is_the_answer_of_for_each_row() {
    with_client(|c, _| {
        let mut seen = Vec::new();
        let e = c
            .for_each_row(
                "SELECT 10 / (5 - i) FROM generate_series(1, 10) AS i",
                &[],
                |row| {
                    seen.push(row.get::<_, i32>(0));
                    Ok(())
                },
            )
            .unwrap_err();
        assert_eq!(e.code(), Some("22012"));
        assert!(seen.len() <= 4, "only the rows before the error: {seen:?}");
        assert_eq!(c.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    });
}

#[test]
fn the_statement_cache_can_be_switched_off() {
    let db = test_database().unwrap();
    let url = format!("{}?statement_cache=false", db.url());
    on_coroutine(move || {
        let c = Arc::new(connect(&url));
        assert!(!c.config().statement_cache());
        let handles: Vec<_> = (0..16i64)
            .map(|t| {
                let c = c.clone();
                go(move || {
                    for i in 0..20i64 {
                        let row = c
                            .query_one("SELECT $1::int8 * 2, $2::text", &[&(t * 100 + i), &"x"])
                            .unwrap();
                        assert_eq!(row.get::<_, i64>(0), (t * 100 + i) * 2);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.cached_statements(), 0);
        let named: i64 = c
            .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
            .unwrap()
            .get(0);
        assert_eq!(named, 0);
    });
}

#[test]
fn cached_statements_survive_a_table_being_recreated() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE r (a int4)").unwrap();
        c.execute("INSERT INTO r VALUES (1)", &[]).unwrap();
        assert_eq!(c.query("SELECT * FROM r", &[]).unwrap().len(), 1);
        let st = c.prepare("SELECT * FROM r").unwrap();
        assert_eq!(c.prepare("SELECT * FROM r").unwrap().columns().len(), 1);
        assert_eq!(st.columns()[0].name(), "a");
        c.batch_execute(
            "DROP TABLE r; CREATE TABLE r (a text, b text); INSERT INTO r VALUES ('x', 'y')",
        )
        .unwrap();
        let rows = c.query("SELECT * FROM r", &[]).unwrap();
        assert_eq!(rows[0].get::<_, &str>("b"), "y");
    });
}

#[test]
fn a_statement_prepared_on_one_connection_runs_on_another() {
    with_client(|a, url| {
        let b = connect(url);
        let st = a.prepare("SELECT $1::int4 * 3").unwrap();
        assert_eq!(st.params(), &[odm::pg::Type::INT4]);
        let rows = b.query_statement(&st, &[&5i32]).unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 15);
        assert_eq!(a.execute_statement(&st, &[&1i32]).unwrap(), 1);
    });
}

#[test]
fn a_cancelled_query_reports_57014_and_the_connection_is_reused() {
    with_client(|c, _| {
        let c = Arc::new(c);
        let token = c.cancel_token();
        let started = Instant::now();
        let sleeper = {
            let c = c.clone();
            go(move || c.query("SELECT pg_sleep(30)", &[]).unwrap_err())
        };
        may::coroutine::sleep(Duration::from_millis(200));
        // A request pipelined behind the sleeping one must not be hit.
        let queued = {
            let c = c.clone();
            go(move || {
                c.query_one("SELECT 'after'::text", &[])
                    .map(|r| r.get::<_, String>(0))
            })
        };
        may::coroutine::sleep(Duration::from_millis(100));
        token.cancel_query().unwrap();
        let e = sleeper.join().unwrap();
        assert_eq!(e.code(), Some("57014"), "{e}");
        assert_eq!(
            e.as_db_error().unwrap().message,
            "canceling statement due to user request"
        );
        assert_eq!(queued.join().unwrap().unwrap(), "after");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!c.is_closed());
        // The next queries are not hit by the cancel.
        for i in 0..20i32 {
            assert_eq!(
                c.query_one("SELECT $1::int4", &[&i])
                    .unwrap()
                    .get::<_, i32>(0),
                i
            );
        }
        // A cancel with nothing running is harmless.
        token.cancel_query().unwrap();
        assert_eq!(c.query_one("SELECT 7", &[]).unwrap().get::<_, i32>(0), 7);
    });
}

#[test]
fn statement_timeout_from_the_url_cancels_long_statements() {
    let db = test_database().unwrap();
    let url = format!("{}?statement_timeout=200", db.url());
    on_coroutine(move || {
        let c = connect(&url);
        let shown: String = c.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
        assert_eq!(shown, "200ms");
        let e = c.execute("SELECT pg_sleep(5)", &[]).unwrap_err();
        assert_eq!(e.code(), Some("57014"));
        assert!(e.to_string().contains("statement timeout"), "{e}");
        assert_eq!(c.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    });
}
