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
