//! COPY FROM STDIN and COPY TO STDOUT.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use odm::pg::Error;

use crate::{go, with_client};

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
        let e = c.copy_out("COPY n FROM STDIN").unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol error: the statement given to copy_out is not COPY ... TO STDOUT"
        );
        let e = c.copy_in("COPY n TO STDOUT").unwrap_err();
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
        assert!(matches!(e, Error::CopyNotAllowed(_)), "{e:?}");
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
fn copy_from_stdin_through_execute_fails_at_once_and_the_connection_stays_usable() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE t (id int4)").unwrap();
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let e = c.execute("COPY t FROM STDIN", &[]).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert!(matches!(e, Error::CopyNotAllowed(_)), "{e:?}");
            assert!(e.to_string().contains("copy_in()"), "{e}");
            assert!(!e.is_closed());
            let e = c.query("COPY t FROM STDIN", &[]).unwrap_err();
            assert!(matches!(e, Error::CopyNotAllowed(_)), "{e:?}");
            let e = c.batch_execute("COPY t FROM STDIN").unwrap_err();
            assert!(matches!(e, Error::CopyNotAllowed(_)), "{e:?}");
        }
        assert!(!c.is_closed());
        assert_eq!(c.execute("INSERT INTO t VALUES (1)", &[]).unwrap(), 1);
        let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0);
        assert_eq!(n, 1);
    });
}

#[test]
fn copy_to_stdout_through_query_is_refused_and_the_connection_stays_usable() {
    with_client(|c, _| {
        let e = c
            .query("COPY (SELECT generate_series(1, 1000)) TO STDOUT", &[])
            .unwrap_err();
        assert!(matches!(e, Error::CopyNotAllowed(_)), "{e:?}");
        assert!(e.to_string().contains("copy_out()"), "{e}");
        assert_eq!(c.query_one("SELECT 3", &[]).unwrap().get::<_, i32>(0), 3);
    });
}

#[test]
fn copy_through_execute_with_requests_pipelined_behind_it_never_answers_them_wrongly() {
    with_client(|c, _| {
        c.batch_execute("CREATE TABLE p (id int4)").unwrap();
        let c = Arc::new(c);
        // Many tasks insert while one runs a COPY through execute: every
        // insert either returns Ok and is stored, or fails.
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let c = c.clone();
                go(move || {
                    if i == 10 {
                        let e = c.execute("COPY p FROM STDIN", &[]).unwrap_err();
                        assert!(
                            matches!(e, Error::CopyNotAllowed(_)) || e.is_closed(),
                            "{e:?}"
                        );
                        return 0u64;
                    }
                    let mut ok = 0;
                    for _ in 0..20 {
                        if c.execute("INSERT INTO p VALUES (1)", &[]).is_ok() {
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        let acknowledged: u64 = tasks.into_iter().map(|t| t.join().unwrap()).sum();
        let url = c.config().to_url();
        let fresh = crate::connect(&url);
        let present: i64 = fresh
            .query_one("SELECT count(*) FROM p", &[])
            .unwrap()
            .get(0);
        assert_eq!(present as u64, acknowledged);
    });
}
