//! Transactions, savepoints, and LISTEN/NOTIFY.

use std::time::{Duration, Instant};

use odm::pg::{Client, TransactionStatus};

use crate::{connect, go, with_client};

#[test]
fn listen_notify_between_two_tasks() {
    with_client(|listener, url| {
        listener.batch_execute("LISTEN jobs").unwrap();
        let url = url.to_owned();
        let sender = go(move || {
            let c = connect(&url);
            for i in 0..3 {
                c.execute(&format!("NOTIFY jobs, 'job {i}'"), &[]).unwrap();
            }
            c.backend_pid()
        });
        let mut notifications = listener.notifications();
        let received: Vec<_> = notifications.by_ref().take(3).collect();
        let sender_pid = sender.join().unwrap();
        assert_eq!(received.len(), 3);
        for (i, n) in received.iter().enumerate() {
            assert_eq!(n.channel(), "jobs");
            assert_eq!(n.payload(), format!("job {i}"));
            assert_eq!(n.process_id(), sender_pid);
        }
        assert_eq!(notifications.try_recv().unwrap(), None);
        let started = Instant::now();
        assert_eq!(
            notifications
                .recv_timeout(Duration::from_millis(100))
                .unwrap(),
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(90));
    });
}

#[test]
fn transactions_commit_roll_back_and_nest_savepoints() {
    with_client(|mut c, _| {
        c.batch_execute("CREATE TABLE tx (v text)").unwrap();
        let count =
            |c: &Client| -> i64 { c.query_one("SELECT count(*) FROM tx", &[]).unwrap().get(0) };
        let t = c.transaction().unwrap();
        t.execute("INSERT INTO tx VALUES ('committed')", &[])
            .unwrap();
        assert_eq!(
            t.client().transaction_status(),
            TransactionStatus::InTransaction
        );
        t.commit().unwrap();
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
        assert_eq!(count(&c), 1);

        let t = c.transaction().unwrap();
        t.execute("INSERT INTO tx VALUES ('rolled back')", &[])
            .unwrap();
        t.rollback().unwrap();
        assert_eq!(count(&c), 1);

        {
            let t = c.transaction().unwrap();
            t.execute("INSERT INTO tx VALUES ('dropped')", &[]).unwrap();
        }
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
        assert_eq!(count(&c), 1);

        let mut t = c.transaction().unwrap();
        t.execute("INSERT INTO tx VALUES ('outer')", &[]).unwrap();
        {
            let mut s = t.savepoint("inner one").unwrap();
            s.execute("INSERT INTO tx VALUES ('inner kept')", &[])
                .unwrap();
            {
                let s2 = s.savepoint("deeper").unwrap();
                s2.execute("INSERT INTO tx VALUES ('deeper dropped')", &[])
                    .unwrap();
            }
            s.commit().unwrap();
        }
        {
            let s = t.savepoint("failing").unwrap();
            assert_eq!(
                s.execute("SELECT 1/0", &[]).unwrap_err().code(),
                Some("22012")
            );
            assert_eq!(s.client().transaction_status(), TransactionStatus::Failed);
            s.rollback().unwrap();
        }
        assert_eq!(
            t.client().transaction_status(),
            TransactionStatus::InTransaction
        );
        t.commit().unwrap();
        let rows = c.query("SELECT v FROM tx ORDER BY v", &[]).unwrap();
        let values: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(values, ["committed", "inner kept", "outer"]);
    });
}

fn count(c: &Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

#[test]
fn a_transaction_commit_after_an_ignored_failure_is_rolled_back() {
    with_client(|mut c, _| {
        c.batch_execute("CREATE TABLE kept (id int PRIMARY KEY)")
            .unwrap();
        let t = c.transaction().unwrap();
        t.execute("INSERT INTO kept VALUES (1)", &[]).unwrap();
        let _ = t.execute("INSERT INTO kept VALUES (NULL)", &[]);
        let err = t.commit().unwrap_err();
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("23502"), "{err}");
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
        assert_eq!(count(&c, "kept"), 0);
    });
}

#[test]
fn the_statement_after_a_failure_in_a_transaction_is_refused_naming_the_cause() {
    with_client(|mut c, _| {
        c.batch_execute("CREATE TABLE kept (id int PRIMARY KEY)")
            .unwrap();
        let mut t = c.transaction().unwrap();
        t.execute("INSERT INTO kept VALUES (1)", &[]).unwrap();
        let failed = t.execute("SELECT 1/0", &[]).unwrap_err();
        assert_eq!(failed.code(), Some("22012"));
        let refused = t.execute("INSERT INTO kept VALUES (2)", &[]).unwrap_err();
        assert!(refused.is_transaction_aborted(), "{refused}");
        assert_eq!(refused.code(), Some("25P02"));
        assert!(
            refused
                .to_string()
                .ends_with("aborted by error 22012: division by zero"),
            "{refused}"
        );
        assert!(t
            .query("SELECT 1", &[])
            .unwrap_err()
            .is_transaction_aborted());
        assert!(t.savepoint("late").unwrap_err().is_transaction_aborted());
        let err = t.commit().unwrap_err();
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("22012"), "{err}");
        assert_eq!(count(&c, "kept"), 0);
    });
}

#[test]
fn a_raw_rollback_to_a_savepoint_is_sent_in_an_aborted_transaction_and_heals_it() {
    with_client(|mut c, _| {
        c.batch_execute("CREATE TABLE kept (id int PRIMARY KEY)")
            .unwrap();
        let t = c.transaction().unwrap();
        t.execute("INSERT INTO kept VALUES (1)", &[]).unwrap();
        t.batch_execute("SAVEPOINT manual").unwrap();
        let _ = t.execute("INSERT INTO kept VALUES (1)", &[]);
        t.batch_execute("rollback to savepoint manual").unwrap();
        t.execute("INSERT INTO kept VALUES (2)", &[]).unwrap();
        t.commit().unwrap();
        assert_eq!(count(&c, "kept"), 2);
    });
}

#[test]
fn a_savepoint_committed_after_a_failed_statement_is_rolled_back_to_and_the_transaction_goes_on() {
    with_client(|mut c, _| {
        c.batch_execute("CREATE TABLE kept (v text)").unwrap();
        let mut t = c.transaction().unwrap();
        t.execute("INSERT INTO kept VALUES ('outer')", &[]).unwrap();
        {
            let s = t.savepoint("inner").unwrap();
            s.execute("INSERT INTO kept VALUES ('inner')", &[]).unwrap();
            let _ = s.execute("SELECT 1/0", &[]);
            let err = s.commit().unwrap_err();
            assert!(err.is_rolled_back(), "{err}");
            assert_eq!(err.code(), Some("22012"), "{err}");
        }
        assert_eq!(
            t.client().transaction_status(),
            TransactionStatus::InTransaction
        );
        t.execute("INSERT INTO kept VALUES ('after')", &[]).unwrap();
        t.commit().unwrap();
        let rows = c.query("SELECT v FROM kept ORDER BY v", &[]).unwrap();
        let values: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(values, ["after", "outer"]);
    });
}

#[test]
fn a_deferred_foreign_key_violated_at_commit_is_a_rolled_back_transaction() {
    with_client(|mut c, _| {
        c.batch_execute(
            "CREATE TABLE parent (id int PRIMARY KEY);
             CREATE TABLE child (parent_id int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .unwrap();
        let t = c.transaction().unwrap();
        t.execute("INSERT INTO child VALUES (42)", &[]).unwrap();
        let err = t.commit().unwrap_err();
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("23503"), "{err}");
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
        assert_eq!(count(&c, "child"), 0);
    });
}
