//! `statement_cache=false`: every statement runs unnamed, parsed in the
//! same request as its execution, and only its description is kept on
//! the client. Nothing named is left on the server, a schema change
//! between two runs of the same SQL never mis-decodes a value, and errors
//! keep their SQLSTATE and leave the connection usable.

use std::sync::Arc;

use odm::pg::Error;
use odm::pg::{Client, TransactionStatus};
use odm::testing::test_database;

use super::{connect, go, on_coroutine};

/// A fresh database and a connection to it with the statement cache off,
/// on a coroutine.
fn with_uncached_client<T: Send + 'static>(f: impl FnOnce(Client) -> T + Send + 'static) -> T {
    let db = test_database().unwrap();
    let url = format!("{}?statement_cache=false", db.url());
    let out = on_coroutine(move || {
        let client = connect(&url);
        assert!(!client.config().statement_cache());
        f(client)
    });
    drop(db);
    out
}

fn prepared_on_server(c: &Client) -> i64 {
    c.query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .unwrap()
        .get(0)
}

#[test]
fn tasks_sharing_an_uncached_connection_get_their_own_rows_and_nothing_is_prepared_on_the_server() {
    with_uncached_client(|c| {
        let c = Arc::new(c);
        let tasks: Vec<_> = (0..16i64)
            .map(|t| {
                let c = c.clone();
                go(move || {
                    for n in 0..200i64 {
                        let row = c
                            .query_one("SELECT $1::int8 * 2, $2::text", &[&(t * n), &t.to_string()])
                            .unwrap();
                        assert_eq!(row.get::<_, i64>(0), t * n * 2);
                        assert_eq!(row.get::<_, String>(1), t.to_string());
                        let statement = c.prepare("SELECT $1::int4 + 1").unwrap();
                        let rows = c.query_statement(&statement, &[&(n as i32)]).unwrap();
                        assert_eq!(rows[0].get::<_, i32>(0), n as i32 + 1);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.join().unwrap();
        }
        assert_eq!(c.cached_statements(), 0);
        assert_eq!(prepared_on_server(&c), 0);
    });
}

#[test]
fn a_column_altered_to_a_type_of_the_same_width_is_decoded_with_its_new_type() {
    with_uncached_client(|c| {
        c.batch_execute("CREATE TABLE t (a int4, b text); INSERT INTO t VALUES (7, 'x')")
            .unwrap();
        let sql = "SELECT a, b FROM t WHERE a = $1";
        let row = c.query_one(sql, &[&7i32]).unwrap();
        assert_eq!(row.get::<_, i32>("a"), 7);
        // float4 is four bytes too: decoded with the old description its
        // bits would read as a wrong integer.
        c.batch_execute("ALTER TABLE t ALTER a TYPE float4")
            .unwrap();
        let row = c.query_one(sql, &[&7i32]).unwrap();
        assert_eq!(row.columns()[0].type_(), &odm::pg::Type::FLOAT4);
        assert_eq!(row.get::<_, f32>("a"), 7.0);
        let e = row.try_get::<_, i32>("a").unwrap_err();
        assert!(matches!(e, Error::FromSql { .. }), "{e:?}");
        // The new columns are kept for the next run too.
        let statement = c.prepare(sql).unwrap();
        assert_eq!(statement.columns()[0].type_(), &odm::pg::Type::FLOAT4);
        assert_eq!(prepared_on_server(&c), 0);
    });
}

#[test]
fn a_table_recreated_with_other_column_types_is_described_again_and_run_once() {
    with_uncached_client(|c| {
        c.batch_execute(
            "CREATE TABLE u (id int4, v int4); INSERT INTO u VALUES (1, 10);
             CREATE SEQUENCE runs",
        )
        .unwrap();
        let sql = "SELECT v, nextval('runs') FROM u WHERE id = $1";
        assert_eq!(c.query_one(sql, &[&1i32]).unwrap().get::<_, i32>(0), 10);
        c.batch_execute(
            "DROP TABLE u; CREATE TABLE u (id text, v text); INSERT INTO u VALUES ('one', 'ten')",
        )
        .unwrap();
        // A value of the new type does not fit the cached int4: nothing is
        // sent, the statement is described again and run.
        let row = c.query_one(sql, &[&"one"]).unwrap();
        assert_eq!(row.get::<_, String>(0), "ten");
        assert_eq!(row.get::<_, i64>(1), 2, "the statement ran once");

        c.batch_execute(
            "DROP TABLE u; CREATE TABLE u (id int8, v float8); INSERT INTO u VALUES (3, 0.5)",
        )
        .unwrap();
        // A text value fits the cached description, but int8 = text does
        // not exist (42883): the statement is described again, and the
        // value does not fit the new int8 either: a client-side error.
        let e = c.query_one(sql, &[&"3"]).unwrap_err();
        assert!(matches!(e, Error::ToSql { index: 1, .. }), "{e:?}");
        // The new description serves the next run at once.
        let row = c.query_one(sql, &[&3i64]).unwrap();
        assert_eq!(row.get::<_, f64>(0), 0.5);
        assert_eq!(row.get::<_, i64>(1), 3, "the failed runs did not run");
    });
}

#[test]
fn a_schema_change_inside_a_transaction_fails_with_its_sqlstate_and_the_next_run_succeeds() {
    with_uncached_client(|mut c| {
        c.batch_execute("CREATE TABLE w (id int4, v int4); INSERT INTO w VALUES (1, 5)")
            .unwrap();
        let sql = "SELECT v FROM w WHERE id = $1";
        assert_eq!(c.query_one(sql, &[&1i32]).unwrap().get::<_, i32>(0), 5);
        c.batch_execute("ALTER TABLE w ALTER id TYPE text").unwrap();
        {
            let tx = c.transaction().unwrap();
            let e = tx.query(sql, &[&1i32]).unwrap_err();
            assert_eq!(e.code(), Some("42883"), "{e:?}");
        }
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
        assert_eq!(c.query_one(sql, &[&"1"]).unwrap().get::<_, i32>(0), 5);
    });
}

#[test]
fn errors_of_unnamed_statements_keep_their_sqlstate_and_are_never_run_twice() {
    with_uncached_client(|c| {
        let e = c.query("SELEC 1", &[]).unwrap_err();
        assert_eq!(e.code(), Some(odm::sqlstate::SYNTAX_ERROR), "{e:?}");
        let e = c.query("SELECT 1 / $1::int4", &[&0i32]).unwrap_err();
        assert_eq!(e.code(), Some(odm::sqlstate::DIVISION_BY_ZERO), "{e:?}");
        let e = c.query("SELECT $1::int4", &[&"not a number"]).unwrap_err();
        assert!(matches!(e, Error::ToSql { index: 1, .. }), "{e:?}");
        let e = c.query("SELECT $1::int4", &[]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::ParameterCount {
                    expected: 1,
                    given: 0
                }
            ),
            "{e:?}"
        );
        // A class 42 error whose description did not change is the
        // statement's own: reported, not run again (a sequence is not
        // rolled back, so it counts the runs).
        c.batch_execute(
            "CREATE SEQUENCE calls;
             CREATE FUNCTION refuse(n int4) RETURNS int4 LANGUAGE plpgsql AS $$
             BEGIN PERFORM nextval('calls');
                   RAISE EXCEPTION 'refused %', n USING ERRCODE = '42501'; END $$",
        )
        .unwrap();
        let e = c.query("SELECT refuse($1)", &[&1i32]).unwrap_err();
        assert_eq!(e.code(), Some("42501"), "{e:?}");
        let calls: i64 = c
            .query_one("SELECT last_value FROM calls", &[])
            .unwrap()
            .get(0);
        assert_eq!(calls, 1);
        // The connection still serves.
        assert_eq!(
            c.query_one("SELECT $1::int4 + 1", &[&1i32])
                .unwrap()
                .get::<_, i32>(0),
            2
        );
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
        assert_eq!(prepared_on_server(&c), 0);
    });
}
