//! A committing session hands its connection to the next task waiting for
//! one as soon as `COMMIT` is sent, before the answer comes back; and a
//! session's `BEGIN` goes out with its first statement. Against a real
//! server: what the committing task is told stays exact, and the task the
//! connection goes to finds it outside any transaction.

mod green_tasks;

use std::time::{Duration, Instant};

use green_tasks::{on_green as green, spawn};
use odm::pg::TransactionStatus;
use odm::testing::{test_database, TestDatabase};
use odm::{Error, Mapper, Model, Pool};

#[derive(Model, Debug, Clone, Default)]
#[odm(table = "handoff_note")]
struct Note {
    #[odm(primary_key)]
    id: i32,
    text: String,
}

/// A fresh database and a mapper on it whose pool has one connection, so
/// that a second task asking for one always waits for the first.
fn one_connection_mapper() -> (TestDatabase, Mapper) {
    let db = test_database().expect("test database");
    let mp = Mapper::new(&format!("{}?pool_size=1&pool_timeout=20", db.url())).expect("mapper");
    mp.register::<Note>().unwrap();
    let created = mp.clone();
    green(move || created.table_create()).expect("table_create");
    (db, mp)
}

/// Parks until `ready` holds (at most 10 s, then fails the test with
/// `what`).
fn until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        may::coroutine::sleep(Duration::from_millis(1));
    }
}

/// Parks until a task waits for one of the pool's connections.
fn until_a_task_waits(pool: &Pool) {
    until("a task waiting for a connection", || pool.waiting() > 0);
}

/// Parks until the pool's one connection is checked out.
fn until_the_connection_is_out(pool: &Pool) {
    until("the connection checked out", || {
        pool.size() == 1 && pool.available() == 0
    });
}

fn note(id: i32, text: &str) -> Note {
    Note {
        id,
        text: text.to_owned(),
    }
}

fn note_ids(mp: &Mapper) -> Vec<i32> {
    let mut ids: Vec<i32> = mp
        .begin(|s| s.query::<Note>().all())
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn a_task_handed_the_connection_at_commit_finds_it_idle_and_the_commit_done() {
    let (_db, mp) = one_connection_mapper();
    let pool = mp.engine(None).unwrap().pool().clone();
    let (committing, waiting) = (pool.clone(), pool.clone());
    let first = spawn(move || {
        let mut s = mp.session().unwrap();
        s.add(&mut note(1, "committed before the next task runs"))
            .unwrap();
        until_a_task_waits(&committing);
        s.commit().unwrap();
    });
    let next = spawn(
        move || -> Result<(TransactionStatus, i64, TransactionStatus), Error> {
            until_the_connection_is_out(&waiting);
            let conn = waiting.acquire()?;
            let status_on_hand_out = conn.transaction_status();
            let seen: i64 = conn
                .query_one("SELECT count(*) FROM handoff_note", &[])?
                .try_get(0)?;
            Ok((status_on_hand_out, seen, conn.transaction_status()))
        },
    );
    first.join().unwrap();
    let (on_hand_out, seen, after) = next.join().unwrap().unwrap();
    assert_eq!(on_hand_out, TransactionStatus::Idle);
    assert_eq!(seen, 1, "the next task's statement ran after the commit");
    assert_eq!(after, TransactionStatus::Idle);
    let stats = pool.stats();
    assert_eq!(stats.handed_on_at_commit, 1);
    assert_eq!(stats.rollbacks_on_return, 0);
    assert_eq!(stats.connections_discarded, 0);
}

#[test]
fn a_commit_refused_by_a_deferred_constraint_after_the_hand_over_is_rolled_back() {
    let (_db, mp) = one_connection_mapper();
    let pool = mp.engine(None).unwrap().pool().clone();
    let setup = mp.clone();
    green(move || {
        setup.begin(|s| {
            s.execute(
                "CREATE TABLE handoff_deferred (k integer UNIQUE DEFERRABLE INITIALLY DEFERRED)",
                &[],
            )
        })
    })
    .unwrap();
    let (committing, waiting) = (mp.clone(), mp.clone());
    let waiting_pool = pool.clone();
    let first = spawn(move || {
        let mut s = committing.session().unwrap();
        s.add(&mut note(1, "lost with the failed commit")).unwrap();
        s.execute("INSERT INTO handoff_deferred VALUES (1), (1)", &[])
            .unwrap();
        until_a_task_waits(committing.engine(None).unwrap().pool());
        s.commit()
    });
    let next = spawn(move || {
        until_the_connection_is_out(&waiting_pool);
        waiting.begin(|s| {
            s.add(&mut note(2, "the next task's"))?;
            s.query::<Note>().count()
        })
    });
    let err = first.join().unwrap().unwrap_err();
    match &err {
        Error::RolledBack { cause: Some(cause) } => assert_eq!(cause.code(), "23505", "{err}"),
        other => panic!("expected RolledBack with the unique violation, got {other:?}"),
    }
    assert_eq!(next.join().unwrap().unwrap(), 1);
    assert_eq!(pool.stats().handed_on_at_commit, 1);
    assert_eq!(green(move || note_ids(&mp)), [2]);
}

#[test]
fn transactions_queued_for_one_connection_all_commit_once_each() {
    let (_db, mp) = one_connection_mapper();
    let pool = mp.engine(None).unwrap().pool().clone();
    let tasks = 8;
    let each = 25;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let mp = mp.clone();
            spawn(move || -> Result<(), Error> {
                for i in 0..each {
                    let mut s = mp.session()?;
                    s.add(&mut note(t * 1000 + i, "queued"))?;
                    let mut extra = note(t * 1000 + i + 500, "second statement");
                    s.add(&mut extra)?;
                    s.commit()?;
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap().unwrap();
    }
    let ids = green(move || note_ids(&mp));
    let mut expected: Vec<i32> = (0..tasks)
        .flat_map(|t| (0..each).flat_map(move |i| [t * 1000 + i, t * 1000 + i + 500]))
        .collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let stats = pool.stats();
    assert!(
        stats.handed_on_at_commit > 0,
        "with 8 tasks queued for one connection, commits hand it on: {stats:?}"
    );
    assert_eq!(stats.rollbacks_on_return, 0, "{stats:?}");
    assert_eq!(stats.connections_discarded, 0, "{stats:?}");
}

#[test]
fn a_statement_refused_before_it_was_sent_leaves_begin_to_the_next_one() {
    let (_db, mp) = one_connection_mapper();
    let pool = mp.engine(None).unwrap().pool().clone();
    green(move || {
        let sql = "INSERT INTO handoff_note (id, text) VALUES ($1, $2)";
        // Prepared once, so that next time nothing is sent before the
        // parameters are encoded.
        mp.begin(|s| s.execute(sql, &[&1i32, &"prepared"])).unwrap();

        let mut s = mp.session().unwrap();
        let refused = s.execute(sql, &[&2i64, &"an int8 for an int4"]);
        assert!(matches!(refused, Err(Error::ToSql { .. })), "{refused:?}");
        s.execute(sql, &[&3i32, &"after the refusal"]).unwrap();
        s.commit().unwrap();

        let mut s = mp.session().unwrap();
        let refused = s.execute(sql, &[&4i64, &"refused, then committed"]);
        assert!(matches!(refused, Err(Error::ToSql { .. })), "{refused:?}");
        s.commit().unwrap();

        let mut s = mp.session().unwrap();
        let refused = s.execute(sql, &[&5i64, &"refused, then dropped"]);
        assert!(matches!(refused, Err(Error::ToSql { .. })), "{refused:?}");
        drop(s);

        let conn = pool.acquire().unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        conn.execute(sql, &[&6i32, &"outside any transaction"])
            .unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        drop(conn);
        assert_eq!(note_ids(&mp), [1, 3, 6]);
        assert_eq!(pool.stats().connections_discarded, 0);
    });
}
