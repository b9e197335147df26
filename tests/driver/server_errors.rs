//! Server errors, notices, and connections the server ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{connect, go, with_client};

#[test]
fn a_syntax_error_reports_42601_with_its_position() {
    with_client(|c, _| {
        let e = c.query("SELECT * FORM t", &[]).unwrap_err();
        let db = e.as_db_error().expect("a server error");
        assert_eq!(db.code, "42601");
        assert_eq!(db.severity, "ERROR");
        assert_eq!(db.position, Some(10));
        assert!(e.to_string().contains("42601"), "{e}");
        assert!(!e.is_closed());
        let e = c.batch_execute("SELEC 1").unwrap_err();
        assert_eq!(e.code(), Some("42601"));
        assert_eq!(e.as_db_error().unwrap().position, Some(1));
        c.batch_execute("SELECT 1").unwrap();
    });
}

#[test]
fn a_unique_violation_reports_23505_with_its_detail() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE u (id int PRIMARY KEY)")
            .unwrap();
        c.execute("INSERT INTO u VALUES ($1)", &[&1i32]).unwrap();
        let e = c
            .execute("INSERT INTO u VALUES ($1)", &[&1i32])
            .unwrap_err();
        let db = e.as_db_error().unwrap();
        assert_eq!(db.code, "23505");
        assert_eq!(db.detail.as_deref(), Some("Key (id)=(1) already exists."));
        assert_eq!(db.table.as_deref(), Some("u"));
        assert_eq!(db.constraint.as_deref(), Some("u_pkey"));
        assert!(
            e.to_string()
                .contains("(detail: Key (id)=(1) already exists.)"),
            "{e}"
        );
    });
}

#[test]
fn a_terminated_backend_fails_the_next_query_with_a_closed_error() {
    with_client(|c, url| {
        let killer = connect(url);
        let pid = c.backend_pid();
        let killed: bool = killer
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(killed);
        // The server's FATAL message and end-of-file reach the reader.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !c.is_closed() && Instant::now() < deadline {
            may::coroutine::sleep(Duration::from_millis(10));
        }
        assert!(c.is_closed());
        let e = c.query("SELECT 1", &[]).unwrap_err();
        assert!(e.is_closed(), "{e:?}");
        assert_eq!(e.code(), Some("57P01"), "{e}");
        let e = c.batch_execute("SELECT 1").unwrap_err();
        assert!(e.is_closed(), "{e:?}");
        let e = c.notifications().recv().unwrap_err();
        assert!(e.is_closed(), "{e:?}");
        assert!(c.notifications().next().is_none());
    });
}

#[test]
fn a_query_in_flight_when_the_backend_dies_fails_without_hanging() {
    with_client(|c, url| {
        let c = Arc::new(c);
        let pid = c.backend_pid();
        let sleeper = {
            let c = c.clone();
            go(move || c.query("SELECT pg_sleep(30)", &[]).unwrap_err())
        };
        let killer = connect(url);
        may::coroutine::sleep(Duration::from_millis(200));
        killer
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        let e = sleeper.join().unwrap();
        assert!(e.is_closed(), "{e:?}");
        assert!(c.is_closed());
    });
}

#[test]
fn close_terminates_and_later_use_fails() {
    with_client(|c, url| {
        let pid = c.backend_pid();
        let watcher = connect(url);
        c.close().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .unwrap()
                .get(0);
            if n == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "backend {pid} still there");
            may::coroutine::sleep(Duration::from_millis(20));
        }
    });
}

#[test]
fn notices_are_kept_and_parameters_reported() {
    with_client(|c, _| {
        c.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
            .unwrap();
        let notices = c.notices();
        let last = notices.last().expect("a notice");
        assert_eq!(last.message, "hello 42");
        assert_eq!(last.severity, "NOTICE");
        assert!(c.parameter("server_version").is_some());
        assert_eq!(c.parameter("client_encoding").as_deref(), Some("UTF8"));
        c.batch_execute("SET application_name = 'renamed'").unwrap();
        assert_eq!(c.parameter("application_name").as_deref(), Some("renamed"));
        let params: HashMap<&str, i32> = [("pid", c.backend_pid())].into_iter().collect();
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        assert_eq!(params["pid"], pid);
    });
}
