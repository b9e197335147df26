//! Autocommit sessions (`Mapper::autocommit`) against a real server: each
//! write commits on its own on a shared connection, before it returns; a
//! failed write is reported and changes nothing; an acknowledged write
//! survives a server restart; nothing that needs a transaction is accepted.
//!
//! Run: `cargo test --test autocommit`

mod green_tasks;
mod orm_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use green_tasks::{on_green, spawn};
use odm::pg::{Client, Config};
use odm::testing::{TempCluster, TestDatabase};
use odm::{Error, Isolation, Mapper, MapperError};
use orm_common::{green, mapper_with_models, Task};

/// Tasks in the table, counted by a shared statement outside any session.
fn stored_tasks(mp: &Mapper) -> i64 {
    mp.engine(None)
        .unwrap()
        .pool()
        .query_one("SELECT count(*) FROM task", &[])
        .unwrap()
        .get(0)
}

#[test]
fn an_autocommit_write_is_committed_before_it_returns_and_a_later_error_undoes_nothing() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let outcome: Result<(), Error> = mp.autocommit(|s| {
            assert!(s.is_autocommit());
            let mut task = Task::new("kept");
            s.add(&mut task)?;
            assert!(task.created.is_some(), "the server default is read back");
            assert_eq!(stored_tasks(s.mapper()), 1, "visible before the work ends");
            s.execute("SELECT 1/0", &[])?;
            Ok(())
        });
        let err = outcome.unwrap_err();
        assert_eq!(err.code(), Some("22012"), "{err}");
        assert_eq!(stored_tasks(&mp), 1);
    });
}

#[test]
fn a_failed_autocommit_write_is_reported_changes_nothing_and_the_next_write_runs() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.autocommit_session().unwrap();
        let mut first = Task::new("first");
        s.add(&mut first).unwrap();
        let duplicate = s.execute(
            "INSERT INTO task (id, subject) VALUES ($1, 'a'), (gen_random_uuid(), 'b'), ($1, 'c')",
            &[&first.id],
        );
        let err = duplicate.unwrap_err();
        assert_eq!(err.code(), Some("23505"), "{err}");
        assert_eq!(
            stored_tasks(&mp),
            1,
            "no row of the failed statement is kept"
        );
        s.add(&mut Task::new("second")).unwrap();
        let updated = s
            .query::<Task>()
            .filter(Task::ID.eq(first.id))
            .update([Task::SUBJECT.set("first, updated")])
            .unwrap();
        assert_eq!(updated, 1);
        let got = s.get::<Task>(first.id).unwrap().unwrap();
        assert_eq!(got.subject, "first, updated");
        s.commit().unwrap();
        assert_eq!(stored_tasks(&mp), 2);
    });
}

#[test]
fn an_autocommit_session_holds_no_connection_between_its_writes() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.autocommit_session().unwrap();
        s.add(&mut Task::new("written")).unwrap();
        // A session holding a connection of this pool would make this a
        // nested acquire.
        let conn = mp.engine(None).unwrap().pool().acquire().unwrap();
        drop(conn);
        assert!(!s.in_transaction());
        drop(s);
        assert_eq!(stored_tasks(&mp), 1, "dropping the session undoes nothing");
    });
}

#[test]
fn what_needs_a_transaction_is_refused_in_an_autocommit_session_before_anything_is_sent() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.autocommit_session().unwrap();
        let begin = s.execute("BEGIN", &[]).unwrap_err();
        assert!(matches!(begin, Error::NotShareable { .. }), "{begin:?}");
        let nested = s
            .nested(|s| s.add(&mut Task::new("never written")))
            .unwrap_err();
        assert!(
            matches!(
                nested,
                Error::Mapper(MapperError::NoTransactionInAutocommit {
                    operation: "nested"
                })
            ),
            "{nested:?}"
        );
        assert!(nested.to_string().contains("Mapper::begin"), "{nested}");
        let isolation = s.set_isolation(Isolation::Serializable).unwrap_err();
        assert!(
            matches!(
                isolation,
                Error::Mapper(MapperError::NoTransactionInAutocommit {
                    operation: "set_isolation"
                })
            ),
            "{isolation:?}"
        );
        assert_eq!(stored_tasks(&mp), 0);
    });
}

#[test]
fn autocommit_writers_keep_every_acknowledged_write_through_a_server_restart() {
    // A cluster of its own: the restart ends every connection on it.
    let mut cluster = TempCluster::start().unwrap();
    let db = TestDatabase::create_on(&cluster).unwrap();
    let direct = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&direct).unwrap()).unwrap();
        client
            .batch_execute("CREATE TABLE r (task int4, seq int4, PRIMARY KEY (task, seq))")
            .unwrap();
    });
    let mapper = Mapper::new(&format!("{}?pool_size=4&pool_timeout=20", db.url())).unwrap();
    let restarted = Arc::new(AtomicBool::new(false));
    let stop_at = Instant::now() + Duration::from_secs(4);
    let tasks: Vec<_> = (0..40)
        .map(|task| {
            let (mapper, restarted) = (mapper.clone(), restarted.clone());
            spawn(move || {
                let mut acknowledged = Vec::new();
                let mut ok_after_restart = 0;
                let mut seq = 0;
                while Instant::now() < stop_at {
                    seq += 1;
                    let after = restarted.load(Ordering::SeqCst);
                    let done = mapper
                        .autocommit(|s| s.execute("INSERT INTO r VALUES ($1, $2)", &[&task, &seq]));
                    match done {
                        Ok(1) => {
                            acknowledged.push(seq);
                            if after {
                                ok_after_restart += 1;
                            }
                        }
                        Ok(n) => panic!("one insert reported {n} rows"),
                        Err(e) => assert!(
                            e.is_closed() || matches!(e, Error::Connect { .. }),
                            "an unexpected error: {e:?}"
                        ),
                    }
                }
                (task, acknowledged, ok_after_restart)
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1200));
    cluster.restart().unwrap();
    restarted.store(true, Ordering::SeqCst);
    let results: Vec<_> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
    for (task, _, after) in &results {
        assert!(
            *after > 0,
            "task {task} never succeeded again after the restart"
        );
    }
    let url = db.url();
    let present: std::collections::HashSet<(i32, i32)> = on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        client
            .query("SELECT task, seq FROM r", &[])
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    });
    let acknowledged: usize = results.iter().map(|(_, a, _)| a.len()).sum();
    let lost: Vec<(i32, i32)> = results
        .iter()
        .flat_map(|(task, seqs, _)| seqs.iter().map(move |seq| (*task, *seq)))
        .filter(|row| !present.contains(row))
        .collect();
    assert!(acknowledged > 0);
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}
