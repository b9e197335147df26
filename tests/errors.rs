//! The error predicates and `odm::sqlstate` against a real server: each
//! failure a caller acts on is provoked for real and recognised by its
//! predicate, and by no unrelated one.

use green::GreenPool;
use odm::pg::Error;
use odm::pg::{Client, Config};
use odm::sqlstate;
use odm::testing::test_database;

/// Runs `f` with a fresh database's URL on a green worker.
fn on_fresh_database<T: Send + 'static>(f: impl FnOnce(&str) -> T + Send + 'static) -> T {
    let db = test_database().unwrap();
    let url = db.url();
    let pool = GreenPool::new();
    let out = pool.submit(move || f(&url)).unwrap().join().unwrap();
    drop(db);
    out
}

fn connect(url: &str) -> Client {
    Client::connect(&Config::parse(url).unwrap()).unwrap()
}

/// Asserts that `e` is a statement's error and no connection or timeout
/// error: the connection that answered it is still usable.
fn assert_statement_error(e: &Error) {
    assert!(!e.is_closed(), "{e:?}");
    assert!(!e.is_connection_error(), "{e:?}");
    assert!(!e.is_timeout(), "{e:?}");
}

#[test]
fn a_duplicate_key_is_a_unique_violation_and_not_retryable() {
    on_fresh_database(|url| {
        let c = connect(url);
        c.batch_execute("CREATE TABLE person (id int PRIMARY KEY)")
            .unwrap();
        c.execute("INSERT INTO person VALUES (1)", &[]).unwrap();
        let e = c.execute("INSERT INTO person VALUES (1)", &[]).unwrap_err();
        assert!(e.is_unique_violation(), "{e:?}");
        assert_eq!(e.code(), Some(sqlstate::UNIQUE_VIOLATION));
        let db = e.as_db_error().unwrap();
        assert!(db.is_unique_violation());
        assert_eq!(db.constraint.as_deref(), Some("person_pkey"));
        assert!(!e.is_foreign_key_violation());
        assert!(!e.is_retryable());
        assert_statement_error(&e);
        c.batch_execute("SELECT 1").unwrap();
    });
}

#[test]
fn a_missing_parent_row_is_a_foreign_key_violation_also_when_deferred_to_commit() {
    on_fresh_database(|url| {
        let mut c = connect(url);
        c.batch_execute(
            "CREATE TABLE parent (id int PRIMARY KEY);
             CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY IMMEDIATE)",
        )
        .unwrap();
        let e = c.execute("INSERT INTO child VALUES (7)", &[]).unwrap_err();
        assert!(e.is_foreign_key_violation(), "{e:?}");
        assert_eq!(e.code(), Some(sqlstate::FOREIGN_KEY_VIOLATION));
        assert!(!e.is_unique_violation());
        assert_statement_error(&e);

        let tx = c.transaction().unwrap();
        tx.batch_execute("SET CONSTRAINTS ALL DEFERRED").unwrap();
        tx.execute("INSERT INTO child VALUES (7)", &[]).unwrap();
        let e = tx.commit().unwrap_err();
        assert!(e.is_rolled_back(), "{e:?}");
        assert!(e.is_foreign_key_violation(), "{e:?}");
        assert!(!e.is_retryable());
    });
}

#[test]
fn null_and_check_failures_have_their_own_predicates() {
    on_fresh_database(|url| {
        let c = connect(url);
        c.batch_execute("CREATE TABLE item (name text NOT NULL, price int CHECK (price > 0))")
            .unwrap();
        let e = c
            .execute("INSERT INTO item VALUES (NULL, 1)", &[])
            .unwrap_err();
        assert!(e.is_not_null_violation(), "{e:?}");
        assert!(!e.is_check_violation());
        assert_eq!(e.as_db_error().unwrap().column.as_deref(), Some("name"));
        let e = c
            .execute("INSERT INTO item VALUES ('pen', -1)", &[])
            .unwrap_err();
        assert!(e.is_check_violation(), "{e:?}");
        assert!(!e.is_not_null_violation());
        assert_statement_error(&e);
    });
}

#[test]
fn write_skew_under_serializable_is_a_retryable_serialization_failure() {
    on_fresh_database(|url| {
        let mut first = connect(url);
        let mut second = connect(url);
        first
            .batch_execute(
                "CREATE TABLE skew (class int NOT NULL, value int NOT NULL);
                 INSERT INTO skew VALUES (1, 10), (2, 20)",
            )
            .unwrap();
        // each reads the class the other writes
        let copy_sum = "INSERT INTO skew SELECT $2, sum(value) FROM skew WHERE class = $1";
        let a = first.transaction().unwrap();
        a.batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .unwrap();
        a.execute(copy_sum, &[&1i32, &2i32]).unwrap();
        let b = second.transaction().unwrap();
        b.batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .unwrap();
        b.execute(copy_sum, &[&2i32, &1i32]).unwrap();
        b.commit().unwrap();
        let e = a.commit().unwrap_err();
        assert!(e.is_rolled_back(), "{e:?}");
        assert!(e.is_serialization_failure(), "{e:?}");
        assert_eq!(e.code(), Some(sqlstate::SERIALIZATION_FAILURE));
        assert!(e.is_retryable());
        assert!(!e.is_deadlock());
        assert!(!e.is_unique_violation());
        assert_statement_error(&e);
    });
}

#[test]
fn a_statement_timeout_is_a_canceled_query_and_not_odms_timeout() {
    on_fresh_database(|url| {
        let c = connect(url);
        c.batch_execute("SET statement_timeout = '50ms'").unwrap();
        let e = c.batch_execute("SELECT pg_sleep(10)").unwrap_err();
        assert!(e.is_query_canceled(), "{e:?}");
        assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED));
        assert!(!e.is_retryable());
        assert_statement_error(&e);
    });
}
