//! Atomic batches (`Mapper::atomic_batch`, `Pool::atomic_batch`) against a
//! real server: the queued writes commit together in one request on a
//! shared connection, or none is stored — also when the implicit commit
//! itself fails; other tasks' statements pipelined beside a batch are
//! never inside its transaction; no exclusive connection is ever taken;
//! what cannot be one transaction is refused before anything is sent.
//!
//! Run: `cargo test --test atomic_batch`

mod green_tasks;
mod orm_common;

use std::time::Duration;

use green_tasks::spawn;
use odm::pg::Param;
use odm::pool::PoolOptions;
use odm::{Error, Mapper, MapperError, Pool};
use orm_common::{
    database_url, green, mapper_with_models, test_database, Employee, Engineer, Task,
};

fn count(pool: &Pool, sql: &str) -> i64 {
    pool.query_one(sql, &[]).unwrap().get(0)
}

fn pool_of(mp: &Mapper) -> Pool {
    mp.engine(None).unwrap().pool().clone()
}

#[test]
fn an_atomic_batch_commits_every_write_together_and_reads_generated_values_back() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let pool = pool_of(&mp);
        let before = pool.stats();
        let mut boss = Employee {
            name: "boss".into(),
            ..Default::default()
        };
        let mut tasks = vec![Task::new("a"), Task::new("b"), Task::new("c")];
        let mut batch = mp.atomic_batch();
        batch.add(&mut boss).unwrap();
        batch.add_all(&mut tasks).unwrap();
        batch
            .execute("UPDATE task SET done = true WHERE subject = $1", &[&"b"])
            .unwrap();
        assert_eq!(batch.len(), 3);
        let counts = batch.commit().unwrap();
        assert_eq!(counts, vec![1, 3, 1]);
        assert!(boss.id.is_some(), "the generated key is read back");
        assert!(
            tasks.iter().all(|t| t.created.is_some()),
            "server defaults too"
        );
        assert!(
            !tasks[1].done,
            "read back at its own insert, before the update"
        );
        assert_eq!(count(&pool, "SELECT count(*) FROM task"), 3);
        assert_eq!(count(&pool, "SELECT count(*) FROM task WHERE done"), 1);
        assert_eq!(count(&pool, "SELECT count(*) FROM employee"), 1);

        let mut deletes = mp.atomic_batch();
        deletes.delete(&tasks[0]).unwrap();
        deletes.delete(&tasks[1]).unwrap();
        assert_eq!(deletes.commit().unwrap(), vec![1, 1]);
        assert_eq!(count(&pool, "SELECT count(*) FROM task"), 1);

        let after = pool.stats();
        assert_eq!(after.acquires, before.acquires, "no exclusive checkout");
        assert!(after.shared_statements > before.shared_statements);
        assert_eq!(mp.atomic_batch().commit().unwrap(), Vec::<u64>::new());
    });
}

#[test]
fn when_the_second_statement_fails_the_first_is_not_stored() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let pool = pool_of(&mp);
        let mut first = Task::new("first");
        let id = first.id;
        let mut batch = mp.atomic_batch();
        batch.add(&mut first).unwrap();
        let params: [Param<'_>; 1] = [&id];
        batch
            .execute(
                "INSERT INTO task (id, subject) VALUES ($1, 'again')",
                &params,
            )
            .unwrap();
        let err = batch.commit().unwrap_err();
        assert!(
            matches!(err, Error::RolledBack { cause: Some(_) }),
            "{err:?}"
        );
        assert_eq!(err.code(), Some("23505"), "{err}");
        assert!(first.created.is_none(), "nothing is read back");
        assert_eq!(count(&pool, "SELECT count(*) FROM task"), 0);
        // The shared connection is healthy for the next statement.
        assert_eq!(count(&pool, "SELECT 1::bigint"), 1);
    });
}

#[test]
fn a_deferred_constraint_failing_at_the_implicit_commit_stores_nothing() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let pool = pool_of(&mp);
        pool.execute(
            "CREATE TABLE slot (n int, CONSTRAINT one_per_n UNIQUE (n) DEFERRABLE INITIALLY DEFERRED)",
            &[],
        )
        .unwrap();
        let mut task = Task::new("kept only with the slots");
        let mut batch = mp.atomic_batch();
        batch.add(&mut task).unwrap();
        batch.execute("INSERT INTO slot VALUES (1)", &[]).unwrap();
        batch.execute("INSERT INTO slot VALUES (1)", &[]).unwrap();
        let err = batch.commit().unwrap_err();
        assert!(matches!(err, Error::RolledBack { .. }), "{err:?}");
        assert_eq!(err.code(), Some("23505"), "{err}");
        assert_eq!(count(&pool, "SELECT count(*) FROM slot"), 0);
        assert_eq!(count(&pool, "SELECT count(*) FROM task"), 0);
    });
}

#[test]
fn a_thousand_concurrent_batches_store_exactly_the_ones_acknowledged() {
    let (_db, mp) = mapper_with_models();
    let setup = mp.clone();
    let acquires_before = green(move || {
        let pool = pool_of(&setup);
        pool.execute(
            "CREATE TABLE audit (task uuid PRIMARY KEY, n int NOT NULL)",
            &[],
        )
        .unwrap();
        pool.stats().acquires
    });
    let tasks: Vec<_> = (0..1000)
        .map(|n: i32| {
            let mp = mp.clone();
            spawn(move || {
                let mut task = Task::new(&format!("task {n}"));
                let id = task.id;
                // Every seventh batch fails at its last statement.
                let audited = if n % 7 == 0 { None::<i32> } else { Some(n) };
                let mut batch = mp.atomic_batch();
                batch.add(&mut task)?;
                let params: [Param<'_>; 2] = [&id, &audited];
                batch.execute("INSERT INTO audit VALUES ($1, $2)", &params)?;
                batch.commit().map(|_| ())
            })
        })
        .collect();
    let mut acknowledged = 0i64;
    for (n, task) in tasks.into_iter().enumerate() {
        match task.join().expect("the task ran") {
            Ok(()) => acknowledged += 1,
            Err(e) => {
                assert_eq!(n % 7, 0, "batch {n} failed: {e}");
                assert_eq!(e.code(), Some("23502"), "{e}");
            }
        }
    }
    assert_eq!(acknowledged, 1000 - 143);
    green(move || {
        let pool = pool_of(&mp);
        assert_eq!(count(&pool, "SELECT count(*) FROM task"), acknowledged);
        assert_eq!(count(&pool, "SELECT count(*) FROM audit"), acknowledged);
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM task JOIN audit ON audit.task = task.id"
            ),
            acknowledged
        );
        assert_eq!(
            pool.stats().acquires,
            acquires_before,
            "no batch took a connection of its own"
        );
    });
}

#[test]
fn another_tasks_statement_pipelined_behind_a_batch_is_not_inside_its_transaction() {
    let db = test_database().expect("test database");
    let pool = Pool::with_options(
        odm::pg::Config::parse(&database_url(&db)).unwrap(),
        PoolOptions::new().max_size(1),
    );
    let setup = pool.clone();
    green(move || {
        setup
            .execute("CREATE TABLE t (a int PRIMARY KEY)", &[])
            .unwrap();
    });
    let batch_pool = pool.clone();
    let batch = spawn(move || {
        batch_pool.atomic_batch(&[
            ("SELECT txid_current()", &[]),
            ("INSERT INTO t VALUES (1)", &[]),
            ("SELECT pg_sleep(0.3)", &[]),
            ("SELECT txid_current()", &[]),
            ("INSERT INTO t VALUES (1)", &[]),
        ])
    });
    // Behind the batch on the one shared connection (the pool has one).
    std::thread::sleep(Duration::from_millis(100));
    let other_pool = pool.clone();
    let other = spawn(move || -> Result<i64, Error> {
        other_pool.execute("INSERT INTO t VALUES (2)", &[])?;
        Ok(other_pool.query_one("SELECT txid_current()", &[])?.get(0))
    });
    let err = batch.join().unwrap().unwrap_err();
    assert_eq!(err.code(), Some("23505"), "{err}");
    other
        .join()
        .unwrap()
        .expect("the other task's statements run on their own");
    green(move || {
        let rows: Vec<i32> = pool
            .query("SELECT a FROM t ORDER BY a", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            rows,
            vec![2],
            "the batch's insert of 1 went with its rollback"
        );
        let answers = pool
            .atomic_batch(&[
                ("SELECT txid_current()", &[]),
                ("SELECT txid_current()", &[]),
            ])
            .unwrap();
        let txid = |i: usize| answers[i].rows[0].get::<_, i64>(0);
        assert_eq!(txid(0), txid(1), "one transaction for the whole batch");
        let next: i64 = pool.query_one("SELECT txid_current()", &[]).unwrap().get(0);
        assert_ne!(
            next,
            txid(0),
            "the next request runs in a transaction of its own"
        );
        assert_eq!(pool.stats().acquires, 0);
    });
}

#[test]
fn what_an_atomic_batch_cannot_hold_is_refused_before_anything_is_sent() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let pool = pool_of(&mp);
        let mut batch = mp.atomic_batch();
        for sql in [
            "BEGIN",
            "COMMIT",
            "VACUUM task",
            "CREATE DATABASE other",
            "SET search_path = x",
        ] {
            let err = batch.execute(sql, &[]).unwrap_err();
            assert!(matches!(err, Error::NotShareable { .. }), "{sql}: {err:?}");
        }
        let mut engineer = Engineer::default();
        let err = batch.add(&mut engineer).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Mapper(MapperError::ChildModelInAtomicBatch { model: "Engineer" })
            ),
            "{err:?}"
        );
        assert!(batch.is_empty());
        let err = pool
            .atomic_batch(&[
                (
                    "INSERT INTO task (id, subject) VALUES (gen_random_uuid(), 'x')",
                    &[],
                ),
                ("VACUUM", &[]),
            ])
            .unwrap_err();
        assert!(
            matches!(err, odm::pg::Error::NotShareable { .. }),
            "{err:?}"
        );
        assert_eq!(
            count(&pool, "SELECT count(*) FROM task"),
            0,
            "nothing was sent"
        );

        // Inside a transaction of this task, a batch could not be part of it.
        let inside: Result<(), Error> = mp.begin(|s| {
            s.add(&mut Task::new("in the transaction"))?;
            let mut task = Task::new("in a batch");
            let mut batch = s.mapper().atomic_batch();
            batch.add(&mut task)?;
            let err = batch.commit().unwrap_err();
            assert!(matches!(err, Error::NestedAcquire), "{err:?}");
            Ok(())
        });
        inside.unwrap();
        assert_eq!(count(&pool, "SELECT count(*) FROM task"), 1);
    });
    let off_green = Mapper::new("postgresql://odm:x@127.0.0.1:1/none").unwrap();
    off_green.register::<Task>().unwrap();
    let mut task = Task::new("off a green worker");
    let mut batch = off_green.atomic_batch();
    batch.add(&mut task).unwrap();
    let err = batch.commit().unwrap_err();
    assert!(
        err.to_string().contains("acquire in main greenlet"),
        "{err}"
    );
}

#[test]
fn a_batch_whose_cached_statement_went_stale_is_sent_once_more_and_stores_once() {
    let db = test_database().expect("test database");
    let pool = Pool::with_options(
        odm::pg::Config::parse(&database_url(&db)).unwrap(),
        PoolOptions::new().max_size(1),
    );
    green(move || {
        pool.execute("CREATE TABLE t (a int)", &[]).unwrap();
        pool.execute("CREATE TABLE log (n int)", &[]).unwrap();
        pool.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
        let batch: [(&str, &[Param<'_>]); 2] = [
            ("INSERT INTO log VALUES (1)", &[]),
            ("SELECT * FROM t", &[]),
        ];
        let first = pool.atomic_batch(&batch).unwrap();
        assert_eq!(first[1].rows[0].len(), 1);
        // The cached plan of `SELECT *` no longer fits the table.
        pool.execute("ALTER TABLE t ADD COLUMN b int", &[]).unwrap();
        let second = pool.atomic_batch(&batch).unwrap();
        assert_eq!(second[0].rows_affected, 1);
        assert_eq!(second[1].rows[0].len(), 2, "prepared again");
        assert_eq!(
            count(&pool, "SELECT count(*) FROM log"),
            2,
            "once per batch"
        );
    });
}

#[test]
fn a_batch_without_the_statement_cache_decodes_returned_rows_with_this_runs_columns() {
    let db = test_database().unwrap();
    let url = database_url(&db);
    let separator = if url.contains('?') { '&' } else { '?' };
    let pool = Pool::from_url(&format!("{url}{separator}statement_cache=false")).unwrap();
    green(move || {
        pool.execute("CREATE TABLE reading (id serial PRIMARY KEY, v int4)", &[])
            .unwrap();
        let insert = "INSERT INTO reading (v) VALUES (2) RETURNING v";
        let answers = pool.atomic_batch(&[(insert, &[]), (insert, &[])]).unwrap();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[1].rows[0].get::<_, i32>(0), 2);

        // Same width, other type: a cached int4 description would decode
        // the float's bits as a wrong integer without an error.
        pool.execute("ALTER TABLE reading ALTER v TYPE float4", &[])
            .unwrap();
        let answers = pool.atomic_batch(&[(insert, &[]), (insert, &[])]).unwrap();
        for answer in &answers {
            assert_eq!(answer.rows[0].get::<_, f32>(0), 2.0);
        }
        assert_eq!(count(&pool, "SELECT count(*) FROM reading"), 4);
        assert_eq!(
            count(&pool, "SELECT count(*) FROM pg_prepared_statements"),
            0,
            "nothing named on the server"
        );
    });
}
