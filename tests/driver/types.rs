//! Value round trips through ToSql/FromSql, and encoding/decoding errors.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use odm::pg::Error;
use odm::pg::Param;
use uuid::Uuid;

use crate::with_client;

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
