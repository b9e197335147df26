//! A commit whose outcome is unknown says so. When the connection breaks
//! after a `COMMIT` (or an autocommit write) left the client and before
//! its answer came, the server may have committed it: the caller gets
//! `Error::CommitOutcomeUnknown` (`is_commit_outcome_unknown()`), never a
//! plain connection error it might retry into a duplicate write; a
//! statement inside a transaction that breaks gets the plain error — that
//! transaction is rolled back. Each test counts what was acknowledged
//! against what is stored.
//!
//! Run: `cargo test --test commit_outcome`

mod green_tasks;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use green_tasks::on_green;
use odm::pg::{Client, Config};
use odm::testing::{test_database, Direction, FaultProxy, TestDatabase};
use odm::Mapper;
use support::proxy_in_front_of;

/// How long the answers are held before the connection is reset: long
/// enough for the server to have run what reached it.
const HELD: Duration = Duration::from_millis(400);

/// A fresh database with table `t (id int4 primary key)` and a proxy in
/// front of it.
fn database() -> (TestDatabase, Arc<FaultProxy>) {
    let db = test_database().unwrap();
    let url = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        client
            .batch_execute("CREATE TABLE t (id int4 PRIMARY KEY)")
            .unwrap();
    });
    let proxy = Arc::new(proxy_in_front_of(&db.url()));
    (db, proxy)
}

fn proxied(db: &TestDatabase, proxy: &FaultProxy) -> String {
    proxy.proxied_url(&db.url()).unwrap()
}

/// Whether row `id` is stored, over a direct connection.
fn stored(db: &TestDatabase, id: i32) -> bool {
    let url = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        let rows = client
            .query("SELECT 1 FROM t WHERE id = $1", &[&id])
            .unwrap();
        rows.len() == 1
    })
}

/// Holds the server's answers, then resets the connection `HELD` later,
/// from a plain thread, while the caller waits for an answer.
fn hold_answers_then_reset(proxy: &Arc<FaultProxy>) -> thread::JoinHandle<()> {
    proxy.black_hole_one_way(Direction::ToClient);
    let proxy = proxy.clone();
    thread::spawn(move || {
        thread::sleep(HELD);
        proxy.reset();
    })
}

#[test]
fn a_commit_whose_answer_never_comes_is_reported_as_outcome_unknown_and_it_did_commit() {
    let (db, proxy) = database();
    let url = proxied(&db, &proxy);
    let resetter = {
        let proxy = proxy.clone();
        on_green(move || {
            let mut client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
            let tx = client.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
            let resetter = hold_answers_then_reset(&proxy);
            let error = tx.commit().expect_err("the answer never comes");
            assert!(error.is_commit_outcome_unknown(), "{error:?}");
            assert!(error.is_closed());
            assert!(!error.is_retryable());
            assert!(
                error.to_string().contains("may or may not have committed"),
                "{error}"
            );
            resetter
        })
    };
    resetter.join().unwrap();
    assert!(
        stored(&db, 1),
        "the server committed what the caller could not confirm"
    );
}

#[test]
fn an_autocommit_write_whose_answer_never_comes_is_reported_as_outcome_unknown() {
    let (db, proxy) = database();
    let url = proxied(&db, &proxy);
    let resetter = {
        let proxy = proxy.clone();
        on_green(move || {
            let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
            // Prepared first, so the write itself is one request.
            let insert = client.prepare("INSERT INTO t VALUES ($1)").unwrap();
            let resetter = hold_answers_then_reset(&proxy);
            let error = client
                .execute_statement(&insert, &[&7i32])
                .expect_err("the answer never comes");
            assert!(error.is_commit_outcome_unknown(), "{error:?}");
            resetter
        })
    };
    resetter.join().unwrap();
    assert!(stored(&db, 7));
}

#[test]
fn a_statement_inside_a_transaction_that_breaks_is_a_plain_connection_error_and_nothing_is_stored()
{
    let (db, proxy) = database();
    let url = proxied(&db, &proxy);
    let resetter = {
        let proxy = proxy.clone();
        on_green(move || {
            let mut client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
            let tx = client.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
            let resetter = hold_answers_then_reset(&proxy);
            let error = tx
                .execute("INSERT INTO t VALUES (2)", &[])
                .expect_err("the answer never comes");
            assert!(error.is_closed(), "{error:?}");
            assert!(!error.is_commit_outcome_unknown(), "{error:?}");
            resetter
        })
    };
    resetter.join().unwrap();
    assert!(!stored(&db, 1) && !stored(&db, 2));
}

#[test]
fn begin_with_retry_never_retries_a_commit_whose_outcome_is_unknown() {
    let (db, proxy) = database();
    let mapper = Mapper::new(&proxied(&db, &proxy)).unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let resetter = {
        let proxy = proxy.clone();
        let attempts = attempts.clone();
        on_green(move || {
            let mut resetter = None;
            let outcome = mapper.begin_with_retry(3, |s| {
                attempts.fetch_add(1, Ordering::SeqCst);
                s.execute("INSERT INTO t VALUES (5)", &[])?;
                // The answers of what follows — the commit — are held.
                if resetter.is_none() {
                    resetter = Some(hold_answers_then_reset(&proxy));
                }
                Ok(())
            });
            let error = outcome.expect_err("the commit's answer never comes");
            assert!(error.is_commit_outcome_unknown(), "{error:?}");
            resetter.expect("the work ran")
        })
    };
    resetter.join().unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert!(stored(&db, 5));
}
