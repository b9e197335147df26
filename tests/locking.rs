//! Locking reads against a real server: `for_update`, `for_share`,
//! `skip_locked`, `nowait`, the transaction they start, and the job-queue
//! example (`examples/job_queue.rs`) with many green workers.

mod green_tasks;

#[path = "../examples/job_queue.rs"]
#[allow(dead_code)] // its `main` is for `cargo run --example job_queue`
mod job_queue;

use std::collections::HashSet;

use green_tasks::{on_green as green, spawn};
use job_queue::Job;
use odm::testing::TestDatabase;
use odm::{sqlstate, Mapper, Session};

/// A fresh database with the `job` table and `jobs` pending jobs.
fn queue_with(jobs: usize) -> (TestDatabase, Mapper) {
    let db = odm::testing::test_database().expect("test database");
    let mp = Mapper::new(&db.url()).expect("mapper");
    mp.register::<Job>().unwrap();
    let setup = mp.clone();
    green(move || {
        setup.table_create()?;
        job_queue::enqueue(&setup, jobs)
    })
    .unwrap();
    (db, mp)
}

#[test]
fn every_job_is_taken_exactly_once_by_many_skip_locked_workers() {
    const JOBS: usize = 300;
    const WORKERS: usize = 30;
    let (_db, mp) = queue_with(JOBS);
    let done = job_queue::run_workers(green_tasks::green(), &mp, WORKERS).unwrap();
    assert_eq!(done.len(), WORKERS);
    let taken: Vec<i32> = done.into_iter().flatten().collect();
    let distinct: HashSet<i32> = taken.iter().copied().collect();
    assert_eq!(taken.len(), JOBS, "jobs taken in all");
    assert_eq!(distinct.len(), JOBS, "no job taken twice");
    let jobs = green(move || mp.begin(|s| s.query::<Job>().all())).unwrap();
    assert_eq!(jobs.len(), JOBS);
    for job in jobs {
        assert!(job.done, "{job:?} is done");
        assert_eq!(job.takes, 1, "{job:?} was taken once");
        assert!(distinct.contains(&job.id.unwrap()));
    }
}

#[test]
fn a_locking_read_starts_the_transaction_and_a_plain_read_does_not() {
    let (_db, mp) = queue_with(2);
    green(move || {
        let mut s = mp.session()?;
        assert_eq!(s.query::<Job>().count()?, 2);
        assert!(!s.in_transaction(), "a plain read runs on the shared path");
        let job = s.query::<Job>().for_update().first()?.expect("a job");
        assert!(s.in_transaction(), "the locking read began the transaction");
        assert!(job.id.is_some());
        s.commit()
    })
    .unwrap();
}

/// A transaction, on its own green task, that ran `lock` and keeps its
/// locks until [`Holder::commit`].
struct Holder {
    release: may::sync::mpsc::Sender<()>,
    task: green::Submitted<odm::Result<()>>,
}

impl Holder {
    fn start(
        mp: &Mapper,
        lock: impl FnOnce(&mut Session) -> odm::Result<()> + Send + 'static,
    ) -> Holder {
        let (locked_tx, locked) = std::sync::mpsc::channel();
        let (release, released) = may::sync::mpsc::channel::<()>();
        let mp = mp.clone();
        let task = spawn(move || {
            let mut s = mp.session()?;
            let outcome = lock(&mut s);
            assert!(s.in_transaction(), "the locking read began the transaction");
            locked_tx.send(()).unwrap();
            outcome?;
            let _ = released.recv();
            s.commit()
        });
        locked.recv().unwrap();
        Holder { release, task }
    }

    fn commit(self) {
        self.release.send(()).unwrap();
        self.task.join().unwrap().unwrap();
    }
}

#[test]
fn nowait_on_a_row_locked_by_another_transaction_fails_with_lock_not_available() {
    let (_db, mp) = queue_with(1);
    let holder = Holder::start(&mp, |s| s.query::<Job>().for_update().one().map(drop));
    let other = mp.clone();
    let err = green(move || {
        other.begin(|s| {
            s.query::<Job>()
                .filter(Job::DONE.eq(false))
                .for_update()
                .nowait()
                .all()
        })
    })
    .unwrap_err();
    assert!(err.is_lock_not_available(), "{err}");
    assert_eq!(err.code(), Some(sqlstate::LOCK_NOT_AVAILABLE));
    // skip_locked sees no row; a shared lock cannot be had at once either
    let other = mp.clone();
    let skipped =
        green(move || other.begin(|s| s.query::<Job>().for_update().skip_locked().all())).unwrap();
    assert!(skipped.is_empty());
    let other = mp.clone();
    let err =
        green(move || other.begin(|s| s.query::<Job>().for_share().nowait().all())).unwrap_err();
    assert!(err.is_lock_not_available(), "{err}");
    // the lock ends with the transaction
    holder.commit();
    let after = green(move || mp.begin(|s| s.query::<Job>().for_update().nowait().all())).unwrap();
    assert_eq!(after.len(), 1);
}

#[test]
fn shared_locks_let_other_readers_share_but_keep_writers_out() {
    let (_db, mp) = queue_with(1);
    let holder = Holder::start(&mp, |s| s.query::<Job>().for_share().one().map(drop));
    let other = mp.clone();
    let shared =
        green(move || other.begin(|s| s.query::<Job>().for_key_share().nowait().all())).unwrap();
    assert_eq!(shared.len(), 1);
    let other = mp.clone();
    let err = green(move || other.begin(|s| s.query::<Job>().for_no_key_update().nowait().all()))
        .unwrap_err();
    assert!(err.is_lock_not_available(), "{err}");
    holder.commit();
}

#[test]
fn the_locking_clause_comes_last_after_limit() {
    let (_db, mp) = queue_with(0);
    green(move || {
        let mut s = mp.session()?;
        let sql = s
            .query::<Job>()
            .filter(Job::DONE.eq(false))
            .for_update()
            .skip_locked()
            .limit(1)
            .to_sql();
        assert!(
            sql.ends_with(r#"WHERE "job"."done" = $1 LIMIT $2 FOR UPDATE SKIP LOCKED"#),
            "{sql}"
        );
        let sql = s.query::<Job>().for_no_key_update().nowait().to_sql();
        assert!(
            sql.ends_with(r#"FROM "job" FOR NO KEY UPDATE NOWAIT"#),
            "{sql}"
        );
        Ok::<_, odm::Error>(())
    })
    .unwrap();
}
