//! Integration tests of the coroutine PostgreSQL driver (`odm::pg`), each on
//! a fresh database of the test server.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use odm::pg::{Client, Config, Host, Param, TransactionStatus};
use odm::Error;
use uuid::Uuid;

use odm::testing::{
    test_database, CLEARTEXT_PASSWORD, CLEARTEXT_USER, MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD,
    SCRAM_USER,
};

/// Runs `f` on a coroutine of the `may` scheduler (two worker threads) and
/// returns its result, re-raising its panic.
fn on_coroutine<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match go(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Spawns a coroutine on the `may` scheduler, configured once for two
/// worker threads.
fn go<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> may::coroutine::JoinHandle<T> {
    static CONFIGURE: Once = Once::new();
    CONFIGURE.call_once(|| {
        may::config().set_workers(2).set_stack_size(0x8000);
    });
    may::go!(f)
}

/// A fresh database and a connection to it, on a coroutine.
fn with_client<T: Send + 'static>(f: impl FnOnce(Client, &str) -> T + Send + 'static) -> T {
    let db = test_database().unwrap();
    let url = db.url();
    let out = on_coroutine(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        f(client, &url)
    });
    drop(db);
    out
}

fn connect(url: &str) -> Client {
    Client::connect(&Config::parse(url).unwrap()).unwrap()
}

#[test]
fn client_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
    assert_send_sync::<odm::pg::Statement>();
    assert_send_sync::<odm::pg::Row>();
    assert_send_sync::<odm::pg::CancelToken>();
}

#[test]
fn every_supported_type_round_trips_including_nulls() {
    with_client(|c, _| {
        c.batch_execute(
            "CREATE TABLE t (
                i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b bool, s text,
                v varchar(10), by bytea, ts timestamp, tz timestamptz, d date,
                u uuid, j json, jb jsonb, ip inet, ai int4[], at text[]
            )",
        )
        .unwrap();
        let ts = NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_micro_opt(13, 14, 15, 123_456)
            .unwrap();
        let tz: DateTime<Utc> = DateTime::from_naive_utc_and_offset(ts, Utc);
        let d = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap();
        let u = Uuid::new_v4();
        let j = serde_json::json!({"a": [1, 2, {"b": null}], "c": "ü"});
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let bytes: Vec<u8> = (0..=255).collect();
        let ai = vec![1i32, -2, 3];
        let at = vec!["x".to_owned(), "y z".to_owned()];
        let params: [Param<'_>; 18] = [
            &-7i16,
            &i32::MIN,
            &i64::MAX,
            &1.5f32,
            &-2.25f64,
            &true,
            &"héllo",
            &"short",
            &bytes,
            &ts,
            &tz,
            &d,
            &u,
            &j,
            &j,
            &ip,
            &ai,
            &at,
        ];
        let n = c
            .execute(
                "INSERT INTO t VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)",
                &params,
            )
            .unwrap();
        assert_eq!(n, 1);
        let nulls: [Param<'_>; 18] = [
            &None::<i16>,
            &None::<i32>,
            &None::<i64>,
            &None::<f32>,
            &None::<f64>,
            &None::<bool>,
            &None::<String>,
            &None::<String>,
            &None::<Vec<u8>>,
            &None::<NaiveDateTime>,
            &None::<DateTime<Utc>>,
            &None::<NaiveDate>,
            &None::<Uuid>,
            &None::<serde_json::Value>,
            &None::<serde_json::Value>,
            &None::<IpAddr>,
            &None::<Vec<i32>>,
            &None::<Vec<String>>,
        ];
        c.execute(
            "INSERT INTO t VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)",
            &nulls,
        )
        .unwrap();
        let rows = c
            .query("SELECT * FROM t ORDER BY i2 NULLS LAST", &[])
            .unwrap();
        assert_eq!(rows.len(), 2);
        let r = &rows[0];
        assert_eq!(r.get::<_, i16>("i2"), -7);
        assert_eq!(r.get::<_, i32>("i4"), i32::MIN);
        assert_eq!(r.get::<_, i64>("i8"), i64::MAX);
        assert_eq!(r.get::<_, f32>("f4"), 1.5);
        assert_eq!(r.get::<_, f64>("f8"), -2.25);
        assert!(r.get::<_, bool>("b"));
        assert_eq!(r.get::<_, &str>("s"), "héllo");
        assert_eq!(r.get::<_, String>("v"), "short");
        assert_eq!(r.get::<_, Vec<u8>>("by"), bytes);
        assert_eq!(r.get::<_, NaiveDateTime>("ts"), ts);
        assert_eq!(r.get::<_, DateTime<Utc>>("tz"), tz);
        assert_eq!(r.get::<_, NaiveDate>("d"), d);
        assert_eq!(r.get::<_, Uuid>("u"), u);
        assert_eq!(r.get::<_, serde_json::Value>("j"), j);
        assert_eq!(r.get::<_, serde_json::Value>("jb"), j);
        assert_eq!(r.get::<_, IpAddr>("ip"), ip);
        assert_eq!(r.get::<_, Vec<i32>>("ai"), ai);
        assert_eq!(r.get::<_, Vec<String>>("at"), at);
        let r = &rows[1];
        for i in 0..r.len() {
            assert_eq!(r.raw(i), None, "column {i} should be NULL");
        }
        assert_eq!(r.get::<_, Option<i16>>("i2"), None);
        assert_eq!(r.get::<_, Option<String>>("s"), None);
        assert_eq!(r.get::<_, Option<Uuid>>("u"), None);
        assert_eq!(r.get::<_, Option<serde_json::Value>>("jb"), None);
        assert_eq!(r.get::<_, Option<IpAddr>>("ip"), None);
        assert_eq!(r.get::<_, Option<Vec<i32>>>("ai"), None);
        assert_eq!(r.get::<_, Option<DateTime<Utc>>>("tz"), None);
    });
}

#[test]
fn a_ten_megabyte_text_round_trips() {
    with_client(|c, _| {
        let big: String = "abcdefghij".repeat(1024 * 1024);
        let row = c.query_one("SELECT $1::text AS t", &[&big]).unwrap();
        let back: &str = row.get("t");
        assert_eq!(back.len(), big.len());
        assert!(back == big);
    });
}

#[test]
fn decoding_errors_name_the_column() {
    with_client(|c, _| {
        let row = c
            .query_one("SELECT 1::int4 AS n, NULL::text AS missing", &[])
            .unwrap();
        let e = row.try_get::<_, String>("n").unwrap_err();
        assert!(matches!(e, Error::FromSql { ref column, .. } if column == "n"));
        assert!(e.to_string().starts_with("cannot decode column `n`"), "{e}");
        let e = row.try_get::<_, String>("missing").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot decode column `missing`: the value is NULL; use Option<alloc::string::String>"
        );
        let e = row.try_get::<_, i32>("nope").unwrap_err();
        assert!(matches!(e, Error::ColumnNotFound(ref c) if c == "nope"));
        assert_eq!(e.to_string(), "no column `nope` in the row");
        let e = row.try_get::<_, i32>(7).unwrap_err();
        assert_eq!(e.to_string(), "no column `7` in the row");
        assert_eq!(row.get::<_, i32>(0), 1);
        assert_eq!(row.columns()[0].name(), "n");
        assert_eq!(row.columns()[0].type_(), &odm::pg::Type::INT4);
    });
}

#[test]
fn parameter_errors_are_typed() {
    with_client(|c, _| {
        let e = c.query("SELECT $1::int4", &[]).unwrap_err();
        assert!(matches!(
            e,
            Error::ParameterCount {
                expected: 1,
                given: 0
            }
        ));
        assert_eq!(
            e.to_string(),
            "the statement takes 1 parameters but 0 were given"
        );
        let e = c.query("SELECT $1::int4", &[&"text"]).unwrap_err();
        assert!(matches!(e, Error::ToSql { index: 1, .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("cannot encode parameter $1"),
            "{e}"
        );
        let e = c.query_one("SELECT 1 WHERE false", &[]).unwrap_err();
        assert!(matches!(e, Error::RowCount(0)));
        assert_eq!(e.to_string(), "expected exactly one row, got 0");
        let e = c
            .query_opt("SELECT * FROM generate_series(1, 2)", &[])
            .unwrap_err();
        assert!(matches!(e, Error::RowCount(2)));
        assert!(c.query_opt("SELECT 1 WHERE false", &[]).unwrap().is_none());
        // The connection is fine after all of these.
        assert_eq!(c.query_one("SELECT 5", &[]).unwrap().get::<_, i32>(0), 5);
    });
}

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

fn connect_error(url: String) -> Error {
    on_coroutine(move || Client::connect(&Config::parse(&url).unwrap()).unwrap_err())
}

#[test]
fn a_wrong_password_gives_28p01_without_the_password_for_md5_and_scram() {
    let db = test_database().unwrap();
    for user in [MD5_USER, SCRAM_USER, CLEARTEXT_USER] {
        let e = connect_error(db.url_as(user, "Wr0ngPassw0rd"));
        assert_eq!(e.code(), Some("28P01"), "{user}: {e}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("Wr0ngPassw0rd"), "{shown}");
        assert!(
            e.to_string().contains("password authentication failed"),
            "{e}"
        );
    }
}

#[test]
fn md5_scram_and_cleartext_logins_work() {
    let db = test_database().unwrap();
    for (user, password) in [
        (MD5_USER, MD5_PASSWORD),
        (SCRAM_USER, SCRAM_PASSWORD),
        (CLEARTEXT_USER, CLEARTEXT_PASSWORD),
    ] {
        let url = db.url_as(user, password);
        let who: String = on_coroutine(move || {
            connect(&url)
                .query_one("SELECT current_user::text", &[])
                .unwrap()
                .get(0)
        });
        assert_eq!(who, user);
    }
}

#[test]
fn a_missing_password_is_an_auth_error_naming_the_user() {
    let db = test_database().unwrap();
    let url = db.url_as(SCRAM_USER, "x").replace(":x@", "@");
    let e = connect_error(url);
    assert!(matches!(e, Error::Auth(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "authentication failed: the server asked for a password for user `odm_scram` and none was given"
    );
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    // Find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = connect_error(format!("postgresql://u:secretpw@127.0.0.1:{port}/d"));
    match &e {
        Error::Connect { target, source } => {
            assert_eq!(target, &format!("127.0.0.1:{port}"));
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(e
        .to_string()
        .starts_with(&format!("could not connect to 127.0.0.1:{port}")));
    assert!(!format!("{e} {e:?}").contains("secretpw"));
}

#[test]
fn bad_urls_are_configuration_errors_naming_the_bad_part() {
    let e = Config::parse("postgresql://u:pw@host:70000/db").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: invalid port `70000`: expected a number from 1 to 65535"
    );
    let e = Config::parse("mongodb://u:pw@host/db").unwrap_err();
    assert!(matches!(e, Error::Config(_)));
    assert!(e.to_string().contains("`mongodb`"), "{e}");
    let e = Config::parse("postgresql://u:pw@host/db?pool_size=-3").unwrap_err();
    assert!(e.to_string().contains("pool_size `-3`"), "{e}");
}

#[test]
fn sslmode_prefer_falls_back_to_plain_and_require_is_refused() {
    let db = test_database().unwrap();
    let prefer = format!("{}?sslmode=prefer", db.url());
    let require = format!("{}?sslmode=require", db.url());
    on_coroutine(move || {
        assert_eq!(
            connect(&prefer)
                .query_one("SELECT 1", &[])
                .unwrap()
                .get::<_, i32>(0),
            1
        );
        let e = Client::connect(&Config::parse(&require).unwrap()).unwrap_err();
        assert!(matches!(e, Error::TlsUnsupported));
        assert!(e.to_string().contains("sslmode=disable"), "{e}");
    });
}

#[test]
fn a_unix_socket_connection_works() {
    let db = test_database().unwrap();
    let url = db.url();
    on_coroutine(move || {
        let c = connect(&url);
        let dir: String = c
            .query_one("SELECT current_setting('unix_socket_directories')", &[])
            .unwrap()
            .get(0);
        let port = c.config().port();
        let dir = dir.split(',').next().unwrap().trim().to_owned();
        let config = Config::parse(&format!("{url}&host={dir}"))
            .or_else(|_| Config::parse(&format!("{url}?host={dir}")))
            .unwrap();
        assert_eq!(config.host(), &Host::Unix(dir.into()));
        assert_eq!(config.port(), port);
        let unix = Client::connect(&config).unwrap();
        let addr: Option<String> = unix
            .query_one("SELECT inet_client_addr()::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(addr, None, "a unix socket has no client address");
    });
}

#[test]
fn off_a_coroutine_every_entry_refuses_at_once() {
    let db = test_database().unwrap();
    let config = Config::parse(&db.url()).unwrap();
    let started = Instant::now();
    let e = Client::connect(&config).unwrap_err();
    assert!(e.is_wrong_context());
    assert!(e.to_string().starts_with("acquire in main greenlet"), "{e}");
    // A client made on a coroutine and handed to a plain thread refuses too.
    let c2 = config.clone();
    let client = on_coroutine(move || Client::connect(&c2).unwrap());
    for e in [
        client.query("SELECT 1", &[]).unwrap_err(),
        client.execute("SELECT 1", &[]).unwrap_err(),
        client.batch_execute("SELECT 1").unwrap_err(),
        client.prepare("SELECT 1").unwrap_err(),
        client.copy_out("COPY (SELECT 1) TO STDOUT").unwrap_err(),
        client.notifications().recv().unwrap_err(),
        client.cancel_token().cancel_query().unwrap_err(),
    ] {
        assert!(e.is_wrong_context(), "{e:?}");
        assert!(e.to_string().starts_with("acquire in main greenlet"), "{e}");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!client.is_closed());
}

#[test]
fn two_hundred_sleeping_tasks_on_their_own_connections_overlap() {
    let db = test_database().unwrap();
    let config = Arc::new(Config::parse(&db.url()).unwrap());
    // Connecting (SCRAM is CPU work, slow in debug builds) is not timed.
    let connecting: Vec<_> = (0..200)
        .map(|_| {
            let config = config.clone();
            go(move || {
                Client::connect(&config).unwrap_or_else(|e| panic!("connect failed: {e} ({e:?})"))
            })
        })
        .collect();
    let clients: Vec<Client> = connecting.into_iter().map(|h| h.join().unwrap()).collect();
    let started = Instant::now();
    let sleeping: Vec<_> = clients
        .into_iter()
        .map(|c| {
            go(move || {
                c.execute("SELECT pg_sleep(0.2)", &[]).unwrap();
            })
        })
        .collect();
    for h in sleeping {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    // One after the other this takes 40 s; parked waits overlap.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn many_tasks_sharing_one_client_get_their_own_answers_in_order() {
    with_client(|c, _| {
        let c = Arc::new(c);
        let handles: Vec<_> = (0..64i32)
            .map(|task| {
                let c = c.clone();
                go(move || {
                    for i in 0..50i32 {
                        if (task + i) % 17 == 0 {
                            let e = c.query("SELECT 1/0", &[]).unwrap_err();
                            assert_eq!(e.code(), Some("22012"));
                        } else {
                            let v = task * 1000 + i;
                            let row = c.query_one("SELECT $1::int4 + 0", &[&v]).unwrap();
                            assert_eq!(row.get::<_, i32>(0), v);
                            let rows = c
                                .query("SELECT generate_series(1, $1)", &[&(i % 5 + 1)])
                                .unwrap();
                            assert_eq!(rows.len() as i32, i % 5 + 1);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(!c.is_closed());
        assert_eq!(c.transaction_status(), TransactionStatus::Idle);
    });
}

#[test]
fn the_statement_cache_can_be_switched_off() {
    let db = test_database().unwrap();
    let url = format!("{}?statement_cache=false", db.url());
    on_coroutine(move || {
        let c = Arc::new(connect(&url));
        assert!(!c.config().statement_cache());
        let handles: Vec<_> = (0..16i64)
            .map(|t| {
                let c = c.clone();
                go(move || {
                    for i in 0..20i64 {
                        let row = c
                            .query_one("SELECT $1::int8 * 2, $2::text", &[&(t * 100 + i), &"x"])
                            .unwrap();
                        assert_eq!(row.get::<_, i64>(0), (t * 100 + i) * 2);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.cached_statements(), 0);
        let named: i64 = c
            .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
            .unwrap()
            .get(0);
        assert_eq!(named, 0);
    });
}

#[test]
fn cached_statements_survive_a_table_being_recreated() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE r (a int4)").unwrap();
        c.execute("INSERT INTO r VALUES (1)", &[]).unwrap();
        assert_eq!(c.query("SELECT * FROM r", &[]).unwrap().len(), 1);
        let st = c.prepare("SELECT * FROM r").unwrap();
        assert_eq!(c.prepare("SELECT * FROM r").unwrap().columns().len(), 1);
        assert_eq!(st.columns()[0].name(), "a");
        c.batch_execute(
            "DROP TABLE r; CREATE TABLE r (a text, b text); INSERT INTO r VALUES ('x', 'y')",
        )
        .unwrap();
        let rows = c.query("SELECT * FROM r", &[]).unwrap();
        assert_eq!(rows[0].get::<_, &str>("b"), "y");
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
fn a_cancelled_query_reports_57014_and_the_connection_is_reused() {
    with_client(|c, _| {
        let c = Arc::new(c);
        let token = c.cancel_token();
        let started = Instant::now();
        let sleeper = {
            let c = c.clone();
            go(move || c.query("SELECT pg_sleep(30)", &[]).unwrap_err())
        };
        may::coroutine::sleep(Duration::from_millis(200));
        // A request pipelined behind the sleeping one must not be hit.
        let queued = {
            let c = c.clone();
            go(move || {
                c.query_one("SELECT 'after'::text", &[])
                    .map(|r| r.get::<_, String>(0))
            })
        };
        may::coroutine::sleep(Duration::from_millis(100));
        token.cancel_query().unwrap();
        let e = sleeper.join().unwrap();
        assert_eq!(e.code(), Some("57014"), "{e}");
        assert_eq!(
            e.as_db_error().unwrap().message,
            "canceling statement due to user request"
        );
        assert_eq!(queued.join().unwrap().unwrap(), "after");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!c.is_closed());
        // The next queries are not hit by the cancel.
        for i in 0..20i32 {
            assert_eq!(
                c.query_one("SELECT $1::int4", &[&i])
                    .unwrap()
                    .get::<_, i32>(0),
                i
            );
        }
        // A cancel with nothing running is harmless.
        token.cancel_query().unwrap();
        assert_eq!(c.query_one("SELECT 7", &[]).unwrap().get::<_, i32>(0), 7);
    });
}

#[test]
fn statement_timeout_from_the_url_cancels_long_statements() {
    let db = test_database().unwrap();
    let url = format!("{}?statement_timeout=200", db.url());
    on_coroutine(move || {
        let c = connect(&url);
        let shown: String = c.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
        assert_eq!(shown, "200ms");
        let e = c.execute("SELECT pg_sleep(5)", &[]).unwrap_err();
        assert_eq!(e.code(), Some("57014"));
        assert!(e.to_string().contains("statement timeout"), "{e}");
        assert_eq!(c.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    });
}

#[test]
fn copy_round_trips_a_hundred_thousand_rows_both_ways() {
    with_client(|c, _| {
        c.batch_execute(
            "CREATE TABLE src (id int8, name text); CREATE TABLE dst (id int8, name text)",
        )
        .unwrap();
        let mut w = c.copy_in("COPY src (id, name) FROM STDIN").unwrap();
        for i in 0..100_000 {
            writeln!(w, "{i}\tname {i}").unwrap();
        }
        assert_eq!(w.finish().unwrap(), 100_000);
        let mut data = Vec::new();
        let mut r = c.copy_out("COPY src TO STDOUT").unwrap();
        r.read_to_end(&mut data).unwrap();
        assert_eq!(r.rows(), 100_000);
        drop(r);
        let text = String::from_utf8(data.clone()).unwrap();
        assert_eq!(text.lines().count(), 100_000);
        assert!(text.starts_with("0\tname 0\n"));
        let mut w = c.copy_in("COPY dst FROM STDIN").unwrap();
        w.write_all(&data).unwrap();
        assert_eq!(w.finish().unwrap(), 100_000);
        let row = c
            .query_one("SELECT count(*), sum(id) FROM dst", &[])
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 100_000);
        assert_eq!(row.get::<_, rust_decimal_free::Sum>(1).0, 4_999_950_000);
    });
}

mod rust_decimal_free {
    //! `sum(int8)` is numeric; read it as text to avoid a decimal crate.
    use odm::pg::{FromSql, Type};
    pub struct Sum(pub i64);
    impl<'a> FromSql<'a> for Sum {
        fn from_sql(
            _: &Type,
            raw: &'a [u8],
        ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
            // numeric binary: ndigits, weight, sign, dscale, digits (base 10000)
            let n = i16::from_be_bytes([raw[0], raw[1]]) as usize;
            let weight = i16::from_be_bytes([raw[2], raw[3]]) as i32;
            let mut v: i64 = 0;
            for k in 0..n {
                let d = i16::from_be_bytes([raw[8 + 2 * k], raw[9 + 2 * k]]) as i64;
                v += d * 10_000i64.pow((weight - k as i32) as u32);
            }
            Ok(Sum(v))
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::NUMERIC
        }
    }
}

#[test]
fn copy_errors_are_reported_and_the_connection_recovers() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE n (id int4)").unwrap();
        let mut w = c.copy_in("COPY n FROM STDIN").unwrap();
        w.write_all(b"1\nnot a number\n3\n").unwrap();
        let e = w.finish().unwrap_err();
        assert_eq!(e.code(), Some("22P02"), "{e}");
        let e = c.copy_in("COPY missing FROM STDIN").unwrap_err();
        assert_eq!(e.code(), Some("42P01"));
        let e = c.copy_out("COPY missing TO STDOUT").unwrap_err();
        assert_eq!(e.code(), Some("42P01"));
        // Dropping a writer aborts the copy; nothing is inserted.
        let mut w = c.copy_in("COPY n FROM STDIN").unwrap();
        w.write_all(b"1\n2\n").unwrap();
        drop(w);
        // Dropping a reader early discards the rest.
        let mut r = c
            .copy_out("COPY (SELECT generate_series(1, 100000)) TO STDOUT")
            .unwrap();
        let mut first = [0u8; 2];
        r.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"1\n");
        drop(r);
        let n: i64 = c.query_one("SELECT count(*) FROM n", &[]).unwrap().get(0);
        assert_eq!(n, 0);
        // A statement that is not the right COPY is refused with its reason.
        let e = c.copy_in("SELECT 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol error: the statement given to copy_in is not COPY ... FROM STDIN"
        );
        let e = c.copy_out("SELECT 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol error: the statement given to copy_out is not COPY ... TO STDOUT"
        );
        // COPY FROM STDIN through a query method is refused, cleanly.
        let e = c.batch_execute("COPY n FROM STDIN").unwrap_err();
        assert!(matches!(e, Error::Protocol(_) | Error::Db(_)), "{e:?}");
        assert_eq!(c.query_one("SELECT 2", &[]).unwrap().get::<_, i32>(0), 2);
    });
}

#[test]
fn other_tasks_wait_while_a_copy_in_is_open() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE w (id int4)").unwrap();
        let c = Arc::new(c);
        let mut w = c.copy_in("COPY w FROM STDIN").unwrap();
        let other = {
            let c = c.clone();
            go(move || {
                c.query_one("SELECT count(*) FROM w", &[])
                    .unwrap()
                    .get::<_, i64>(0)
            })
        };
        may::coroutine::sleep(Duration::from_millis(100));
        w.write_all(b"1\n2\n3\n").unwrap();
        assert_eq!(w.finish().unwrap(), 3);
        assert_eq!(other.join().unwrap(), 3);
    });
}

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

#[test]
fn a_statement_prepared_on_one_connection_runs_on_another() {
    with_client(|a, url| {
        let b = connect(url);
        let st = a.prepare("SELECT $1::int4 * 3").unwrap();
        assert_eq!(st.params(), &[odm::pg::Type::INT4]);
        let rows = b.query_statement(&st, &[&5i32]).unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 15);
        assert_eq!(a.execute_statement(&st, &[&1i32]).unwrap(), 1);
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

/// A fake server on 127.0.0.1 that runs `serve` for each accepted socket
/// on a plain thread; returns its port.
fn fake_server(serve: impl Fn(usize, std::net::TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let serve = serve.clone();
            std::thread::spawn(move || serve(n, stream));
        }
    });
    port
}

#[test]
fn sslmode_prefer_reconnects_in_plain_text_when_the_server_offers_tls() {
    let db = test_database().unwrap();
    let config = Config::parse(&db.url()).unwrap();
    let real_port = config.port();
    // The first connection answers the TLS request with `S` (willing) and
    // is dropped by the client; the second is piped to the real server.
    let port = fake_server(move |n, mut client| {
        if n == 0 {
            let mut request = [0u8; 8];
            client.read_exact(&mut request).unwrap();
            assert_eq!(&request[4..], &[0x04, 0xd2, 0x16, 0x2f], "an SSLRequest");
            client.write_all(b"S").unwrap();
            let mut rest = Vec::new();
            let _ = client.read_to_end(&mut rest);
            return;
        }
        let server = std::net::TcpStream::connect(("127.0.0.1", real_port)).unwrap();
        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut s2);
            let _ = s2.shutdown(std::net::Shutdown::Write);
        });
        let (mut s, mut c) = (server, client);
        let _ = std::io::copy(&mut s, &mut c);
        let _ = c.shutdown(std::net::Shutdown::Write);
    });
    let url = db
        .url()
        .replace(&format!(":{real_port}/"), &format!(":{port}/"));
    let url = format!("{url}?sslmode=prefer");
    let value: i32 = on_coroutine(move || {
        connect(&url)
            .query_one("SELECT 41 + 1", &[])
            .unwrap()
            .get(0)
    });
    assert_eq!(value, 42);
}

#[test]
fn connect_timeout_bounds_a_server_that_never_answers() {
    let port = fake_server(|_, mut stream| {
        // Accept, read, never answer.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let url = format!("postgresql://u:pw@127.0.0.1:{port}/d?connect_timeout=0.3&sslmode=disable");
    let started = Instant::now();
    let e = connect_error(url);
    let elapsed = started.elapsed();
    match &e {
        Error::Connect { target, source } => {
            assert_eq!(target, &format!("127.0.0.1:{port}"));
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}");
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
