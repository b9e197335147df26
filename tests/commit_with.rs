//! `Session::commit_with`: a transaction's last write and its `COMMIT` leave
//! in one write and are answered in one round trip, and the answer stays
//! exact — `Ok` when both succeeded; the write's own error, with nothing
//! stored, when it failed; `Error::CommitOutcomeUnknown` when the
//! connection broke after both left. Each test checks what is stored over
//! a separate connection.
//!
//! Run: `cargo test --test commit_with`

mod green_tasks;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use green_tasks::on_green;

use odm::pg::{Client, Config};
use odm::testing::{test_database, Direction, FaultProxy, TestDatabase};
use odm::{Error, Mapper, MapperError};
use support::proxy_in_front_of;

#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Entry {
    #[odm(primary_key)]
    id: Option<i32>,
    amount: i32,
}

/// A child model: writing one is two statements (its parent's row, then
/// its own).
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Bonus {
    #[odm(parent)]
    entry: Entry,
    points: i32,
}

/// A fresh database with the `entry` table (amounts must not be negative)
/// and a mapper on it.
fn database(url_of: impl FnOnce(&TestDatabase) -> String) -> (TestDatabase, Mapper) {
    let db = test_database().unwrap();
    let url = url_of(&db);
    database_behind(db, url)
}

/// [`database`] for `db`, the mapper connecting through `url` (a proxy's
/// in front of it).
fn database_behind(db: TestDatabase, url: String) -> (TestDatabase, Mapper) {
    let mapper = Mapper::new(&url).unwrap();
    mapper.register::<Entry>().unwrap();
    mapper.register::<Bonus>().unwrap();
    let setup = mapper.clone();
    on_green(move || {
        setup.table_create().unwrap();
        setup
            .begin(|s| {
                s.execute("ALTER TABLE entry ADD CHECK (amount >= 0)", &[])?;
                s.execute("ALTER TABLE bonus ADD CHECK (points >= 0)", &[])
            })
            .unwrap();
    });
    (db, mapper)
}

/// The stored amounts, ordered, over a direct connection.
fn stored(db: &TestDatabase) -> Vec<i32> {
    let url = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        client
            .query("SELECT amount FROM entry ORDER BY amount", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
}

fn entry(amount: i32) -> Entry {
    Entry { id: None, amount }
}

#[test]
fn the_last_write_and_the_commit_succeed_together_and_the_keys_are_read_back() {
    let (db, mapper) = database(|db| db.url());
    let ids = on_green(move || {
        let mut session = mapper.session().unwrap();
        let mut first = entry(1);
        session.add(&mut first).unwrap();
        let mut rest = vec![entry(2), entry(3)];
        let added = session
            .commit_with(|s| {
                s.add_all(&mut rest)?;
                Ok(rest.len())
            })
            .unwrap();
        assert_eq!(added, 2);
        // the connection went back to the pool healthy: the next session
        // reads what was committed
        let count = mapper.begin(|s| s.query::<Entry>().count()).unwrap();
        assert_eq!(count, 3);
        [first.id, rest[0].id, rest[1].id]
    });
    assert!(ids.iter().all(Option::is_some), "{ids:?}");
    assert_eq!(stored(&db), [1, 2, 3]);
}

#[test]
fn a_last_write_that_breaks_a_constraint_is_its_own_error_and_nothing_is_stored() {
    let (db, mapper) = database(|db| db.url());
    on_green(move || {
        let mut session = mapper.session().unwrap();
        session.add(&mut entry(5)).unwrap();
        let error = session
            .commit_with(|s| s.add(&mut entry(-1)))
            .expect_err("the check constraint refuses a negative amount");
        assert_eq!(error.code(), Some("23514"), "{error:?}");
        assert!(!error.is_commit_outcome_unknown());
        // the pool's connection is healthy afterwards
        let mut again = entry(6);
        mapper
            .session()
            .unwrap()
            .commit_with(|s| s.add(&mut again))
            .unwrap();
    });
    assert_eq!(stored(&db), [6], "the failed transaction stored nothing");
}

#[test]
fn a_step_without_a_write_commits_the_usual_way() {
    let (db, mapper) = database(|db| db.url());
    on_green(move || {
        let mut session = mapper.session().unwrap();
        session.add(&mut entry(7)).unwrap();
        let count = session.commit_with(|s| s.query::<Entry>().count()).unwrap();
        assert_eq!(count, 1);
    });
    assert_eq!(stored(&db), [7]);
}

#[test]
fn a_statement_after_the_write_that_carried_the_commit_is_refused() {
    let (db, mapper) = database(|db| db.url());
    on_green(move || {
        let session = mapper.session().unwrap();
        let error = session
            .commit_with(|s| {
                s.add(&mut entry(8))?;
                s.add(&mut entry(9))
            })
            .expect_err("the transaction ended with the first write");
        assert!(
            matches!(error, Error::Mapper(MapperError::TransactionEnded)),
            "{error:?}"
        );
    });
    // documented: the first write was committed with the COMMIT behind it
    assert_eq!(stored(&db), [8]);
}

#[test]
fn the_commit_leaves_with_the_write_before_the_write_is_answered() {
    let db = test_database().unwrap();
    let proxy = Arc::new(proxy_in_front_of(&db.url()));
    let (db, mapper) = {
        let url = proxy.proxied_url(&db.url()).unwrap();
        let mapper = Mapper::new(&url).unwrap();
        mapper.register::<Entry>().unwrap();
        let setup = mapper.clone();
        on_green(move || setup.table_create().unwrap());
        (db, mapper)
    };
    // Answers take 600 ms to come back; a watcher on a direct connection
    // sees whether the row is committed while the write still waits for
    // its answer (a COMMIT sent after that answer would commit 600 ms
    // after it).
    let answered = Arc::new(AtomicBool::new(false));
    let seen_before_answer = Arc::new(AtomicBool::new(false));
    let watcher = {
        let url = db.url();
        let answered = answered.clone();
        let seen = seen_before_answer.clone();
        thread::spawn(move || {
            on_green(move || {
                let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
                while !answered.load(Ordering::SeqCst) {
                    let n = client.query("SELECT 1 FROM entry", &[]).unwrap().len();
                    if n == 1 && !answered.load(Ordering::SeqCst) {
                        seen.store(true, Ordering::SeqCst);
                    }
                    may::coroutine::sleep(Duration::from_millis(10));
                }
            })
        })
    };
    {
        let proxy = proxy.clone();
        let answered = answered.clone();
        on_green(move || {
            let session = mapper.session().unwrap();
            proxy.delay_one_way(Direction::ToClient, Duration::from_millis(600));
            session
                .commit_with(|s| {
                    let added = s.add(&mut entry(4));
                    // the write's answer is in (the commit's may not be)
                    answered.store(true, Ordering::SeqCst);
                    added
                })
                .unwrap();
            proxy.forward();
        });
    }
    watcher.join().unwrap();
    assert!(
        seen_before_answer.load(Ordering::SeqCst),
        "the row was committed before the write's answer reached the client"
    );
    assert_eq!(stored(&db), [4]);
}

#[test]
fn a_connection_that_breaks_after_the_write_and_the_commit_left_is_outcome_unknown() {
    let db = test_database().unwrap();
    let proxy: Arc<FaultProxy> = Arc::new(proxy_in_front_of(&db.url()));
    let url = proxy.proxied_url(&db.url()).unwrap();
    let (db, mapper) = database_behind(db, url);
    let resetter = {
        let proxy = proxy.clone();
        on_green(move || {
            let mut session = mapper.session().unwrap();
            session.add(&mut entry(1)).unwrap();
            let mut resetter = None;
            let error = session
                .commit_with(|s| {
                    // The answers of the write and the commit are held,
                    // then the connection is reset.
                    proxy.black_hole_one_way(Direction::ToClient);
                    let proxy = proxy.clone();
                    resetter = Some(thread::spawn(move || {
                        thread::sleep(Duration::from_millis(400));
                        proxy.reset();
                    }));
                    s.add(&mut entry(2))
                })
                .expect_err("no answer comes");
            assert!(error.is_commit_outcome_unknown(), "{error:?}");
            assert!(!error.is_retryable());
            resetter.expect("the step ran")
        })
    };
    resetter.join().unwrap();
    assert_eq!(
        stored(&db),
        [1, 2],
        "the server committed what the caller could not confirm"
    );
}

#[test]
fn a_write_armed_to_carry_the_commit_is_confirmed_by_commit_and_a_failed_one_rolls_back() {
    let (db, mapper) = database(|db| db.url());
    on_green(move || {
        let mut session = mapper.session().unwrap();
        session.add(&mut entry(10)).unwrap();
        session.commit_behind_next_write();
        session.add(&mut entry(11)).unwrap();
        session.commit().unwrap();

        let mut session = mapper.session().unwrap();
        session.add(&mut entry(12)).unwrap();
        session.commit_behind_next_write();
        let error = session.add(&mut entry(-2)).unwrap_err();
        assert_eq!(error.code(), Some("23514"), "{error:?}");
        let error = session.commit().unwrap_err();
        assert!(
            matches!(&error, Error::RolledBack { cause: Some(cause) } if cause.code == "23514"),
            "{error:?}"
        );
    });
    assert_eq!(stored(&db), [10, 11]);
}

#[test]
fn a_write_of_several_statements_carries_the_commit_behind_its_last_one_only() {
    let (db, mapper) = database(|db| db.url());
    on_green(move || {
        let mut bonus = Bonus {
            entry: entry(20),
            points: 3,
        };
        mapper
            .session()
            .unwrap()
            .commit_with(|s| s.add(&mut bonus))
            .unwrap();
        assert!(bonus.entry.id.is_some());
        // the child's own row fails after its parent's was written: neither
        // is stored
        let mut refused = Bonus {
            entry: entry(21),
            points: -1,
        };
        let error = mapper
            .session()
            .unwrap()
            .commit_with(|s| s.add(&mut refused))
            .unwrap_err();
        assert_eq!(error.code(), Some("23514"), "{error:?}");
        // several rows of a child model in one add_all: parents, then
        // children
        let mut many = vec![
            Bonus {
                entry: entry(22),
                points: 1,
            },
            Bonus {
                entry: entry(23),
                points: 2,
            },
        ];
        mapper
            .session()
            .unwrap()
            .commit_with(|s| s.add_all(&mut many))
            .unwrap();
        let bonuses = mapper.begin(|s| s.query::<Bonus>().count()).unwrap();
        assert_eq!(bonuses, 3);
    });
    assert_eq!(stored(&db), [20, 22, 23]);
}
