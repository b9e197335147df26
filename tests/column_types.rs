//! Column types beyond the basics, round-tripped through a real server at
//! their edges: NUMERIC as `rust_decimal::Decimal`, the `time` crate's
//! date and time types, `Vec<T>` arrays (and `= ANY` filters on them), and
//! typed JSON (`Json<T>` of any serde type). Each test has a fresh database.

mod green_tasks;

use std::collections::BTreeMap;
use std::str::FromStr;

use green_tasks::on_green;
use odm::ddl::create_table_sql;
use odm::query::sql::{self, QueryParts};
use odm::testing::{test_database, TestDatabase};
use odm::types::Json;
use odm::{Error, Mapper, Model};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::macros::{date, datetime, offset, time};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// A fresh database with `M`'s table created.
fn database_with<M: Model>() -> (TestDatabase, Mapper) {
    let db = test_database().expect("a test database");
    let mp = Mapper::new(&db.url()).expect("the mapper");
    mp.register::<M>().expect("the model registers");
    let on_pool = mp.clone();
    on_green(move || on_pool.table_create()).expect("the table");
    (db, mp)
}

/// The `CREATE TABLE` statement of `M`.
fn table_sql<M: Model>() -> String {
    create_table_sql(M::table()).remove(0)
}

/// The rows of every test model: an identity key `id`.
trait Keyed {
    fn id(&self) -> i32;
}

/// Adds `row` and reads it back by its key in a new session.
fn round_trip<M: Model<Key = i32> + Keyed + Send + 'static>(mp: &Mapper, mut row: M) -> M {
    let mp = mp.clone();
    on_green(move || {
        mp.begin(|s| s.add(&mut row))?;
        let key = row.id();
        mp.begin(|s| s.get::<M>(key))
    })
    .expect("the round trip")
    .expect("the row is there")
}

/// Sets `column` of every row of `table` to the SQL literal `value`, then
/// reads the row with id 1 as `M`: the error the read gives.
fn read_after_setting<M: Model<Key = i32> + std::fmt::Debug + Send + 'static>(
    mp: &Mapper,
    table: &'static str,
    column: &'static str,
    value: &'static str,
) -> Error {
    read_after_update::<M>(mp, table, format!("{column} = {value}"))
}

/// Runs `UPDATE table SET assignments`, then reads the row with id 1 as
/// `M`: the error the read gives.
fn read_after_update<M: Model<Key = i32> + std::fmt::Debug + Send + 'static>(
    mp: &Mapper,
    table: &'static str,
    assignments: String,
) -> Error {
    let mp = mp.clone();
    on_green(move || {
        mp.begin(|s| s.execute(&format!("UPDATE {table} SET {assignments}"), &[]))?;
        mp.begin(|s| s.get::<M>(1))
    })
    .expect_err("the stored value has no Rust form")
}

fn assert_from_sql_error_names(error: &Error, column: &str) {
    match error {
        Error::FromSql { column: named, .. } => assert_eq!(named, column, "{error}"),
        other => panic!("expected a FromSql error naming `{column}`, got {other:?}"),
    }
}

#[derive(odm::Model, Debug, Clone, PartialEq)]
struct Price {
    #[odm(primary_key)]
    id: Option<i32>,
    amount: Decimal,
    discount: Option<Decimal>,
}

impl Keyed for Price {
    fn id(&self) -> i32 {
        self.id.expect("a stored row has its key")
    }
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal literal")
}

#[test]
fn decimals_round_trip_through_numeric_exactly_with_their_scale_and_nulls() {
    let (_db, mp) = database_with::<Price>();
    let sql = table_sql::<Price>();
    assert!(sql.contains("\"amount\" NUMERIC NOT NULL"), "{sql}");
    let edges = [
        ("0", None),
        ("1.1000", Some("-0.0001")),
        (
            "-12345678901234567890.12345678",
            Some("0.0000000000000000000000000001"),
        ),
        (
            "79228162514264337593543950335",
            Some("-79228162514264337593543950335"),
        ),
        ("0.1", Some("0.2")),
    ];
    for (amount, discount) in edges {
        let row = Price {
            id: None,
            amount: dec(amount),
            discount: discount.map(dec),
        };
        let back = round_trip(&mp, row.clone());
        assert_eq!(back.amount.to_string(), amount, "scale kept");
        assert_eq!(back.discount, row.discount);
    }
    // arithmetic on the server is decimal, not binary floating point
    let mp2 = mp.clone();
    let sum = on_green(move || {
        mp2.begin(|s| {
            let rows = s.query_raw(
                "SELECT amount + discount AS total FROM price WHERE amount = $1",
                &[&dec("0.1")],
            )?;
            rows[0].try_get::<_, Decimal>("total").map_err(Error::from)
        })
    })
    .unwrap();
    assert_eq!(sum, dec("0.3"));
}

#[test]
fn a_numeric_nan_or_out_of_range_value_is_an_error_naming_the_column() {
    let (_db, mp) = database_with::<Price>();
    round_trip(
        &mp,
        Price {
            id: None,
            amount: dec("1"),
            discount: None,
        },
    );
    let nan = read_after_setting::<Price>(&mp, "price", "amount", "'NaN'");
    assert_from_sql_error_names(&nan, "amount");
    let huge = read_after_setting::<Price>(&mp, "price", "amount", "1e40");
    assert_from_sql_error_names(&huge, "amount");
}

#[derive(odm::Model, Debug, Clone, PartialEq)]
struct Meeting {
    #[odm(primary_key)]
    id: Option<i32>,
    day: Date,
    starts: Time,
    local: PrimitiveDateTime,
    at: OffsetDateTime,
    ends: Option<OffsetDateTime>,
}

impl Keyed for Meeting {
    fn id(&self) -> i32 {
        self.id.expect("a stored row has its key")
    }
}

#[test]
fn time_crate_values_round_trip_at_their_edges() {
    let (_db, mp) = database_with::<Meeting>();
    let sql = table_sql::<Meeting>();
    for column in [
        "\"day\" DATE NOT NULL",
        "\"starts\" TIME NOT NULL",
        "\"local\" TIMESTAMP NOT NULL",
        "\"at\" TIMESTAMPTZ NOT NULL",
        "\"ends\" TIMESTAMPTZ,",
    ] {
        assert!(sql.contains(column), "{column} in {sql}");
    }
    let rows = [
        Meeting {
            id: None,
            day: date!(2024 - 02 - 29),
            starts: time!(23:59:59.999999),
            local: datetime!(1999-12-31 23:59:59.999999),
            at: datetime!(2024-03-31 01:30:00.000001 UTC),
            ends: None,
        },
        Meeting {
            id: None,
            day: date!(0001 - 01 - 01),
            starts: time!(0:00),
            local: datetime!(1970-01-01 0:00),
            at: datetime!(9999-12-31 23:59:59.999999).assume_offset(offset!(+5:30)),
            ends: Some(datetime!(2000-01-01 0:00).assume_offset(offset!(-8))),
        },
    ];
    for row in rows {
        let back = round_trip(&mp, row.clone());
        assert_eq!(back.day, row.day);
        assert_eq!(back.starts, row.starts);
        assert_eq!(back.local, row.local);
        // TIMESTAMPTZ keeps the instant; it comes back in UTC
        assert_eq!(back.at, row.at);
        assert_eq!(back.at.offset(), offset!(UTC));
        assert_eq!(back.ends, row.ends);
    }
}

#[test]
fn an_infinite_timestamp_is_an_error_naming_the_column() {
    let (_db, mp) = database_with::<Meeting>();
    round_trip(
        &mp,
        Meeting {
            id: None,
            day: date!(2020 - 01 - 01),
            starts: time!(12:00),
            local: datetime!(2020-01-01 12:00),
            at: OffsetDateTime::UNIX_EPOCH,
            ends: None,
        },
    );
    let error = read_after_setting::<Meeting>(&mp, "meeting", "at", "'infinity'");
    assert_from_sql_error_names(&error, "at");
}

#[derive(odm::Model, Debug, Clone, PartialEq)]
struct Post {
    #[odm(primary_key)]
    id: Option<i32>,
    tags: Vec<String>,
    scores: Vec<f64>,
    counts: Option<Vec<i64>>,
    flags: Vec<bool>,
    amounts: Vec<Decimal>,
    days: Vec<Date>,
    digest: Vec<u8>,
}

impl Keyed for Post {
    fn id(&self) -> i32 {
        self.id.expect("a stored row has its key")
    }
}

fn post(tags: &[&str]) -> Post {
    Post {
        id: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        scores: Vec::new(),
        counts: None,
        flags: Vec::new(),
        amounts: Vec::new(),
        days: Vec::new(),
        digest: Vec::new(),
    }
}

#[test]
fn arrays_round_trip_empty_null_and_with_awkward_elements() {
    let (_db, mp) = database_with::<Post>();
    let sql = table_sql::<Post>();
    for column in [
        "\"tags\" TEXT[] NOT NULL",
        "\"scores\" DOUBLE PRECISION[] NOT NULL",
        "\"counts\" BIGINT[],",
        "\"flags\" BOOLEAN[] NOT NULL",
        "\"amounts\" NUMERIC[] NOT NULL",
        "\"days\" DATE[] NOT NULL",
        "\"digest\" BYTEA NOT NULL",
    ] {
        assert!(sql.contains(column), "{column} in {sql}");
    }
    // all empty, and a NULL array beside an empty one
    let empty = round_trip(&mp, post(&[]));
    assert_eq!(
        empty,
        Post {
            id: empty.id,
            ..post(&[])
        }
    );
    let mut with_empty_counts = post(&[]);
    with_empty_counts.counts = Some(Vec::new());
    assert_eq!(round_trip(&mp, with_empty_counts).counts, Some(Vec::new()));

    let mut full = post(&[
        "a,b",
        "{brace}",
        "quote\"d",
        "NULL",
        "",
        "ünïcødé 🦀",
        "back\\slash",
    ]);
    full.scores = vec![
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE,
        f64::NAN,
    ];
    full.counts = Some(vec![i64::MIN, 0, i64::MAX]);
    full.flags = vec![true, false];
    full.amounts = vec![dec("0.10"), dec("-99999999999.999999")];
    full.days = vec![date!(2024 - 02 - 29), date!(1900 - 01 - 01)];
    full.digest = vec![0, 255, 1];
    let back = round_trip(&mp, full.clone());
    assert_eq!(back.tags, full.tags);
    assert_eq!(&back.scores[..4], &full.scores[..4]);
    assert!(back.scores[3] == f64::MIN_POSITIVE && back.scores[4].is_nan());
    assert!(back.scores[2].is_sign_negative(), "-0.0 keeps its sign");
    assert_eq!(back.counts, full.counts);
    assert_eq!(back.flags, full.flags);
    assert_eq!(back.amounts[0].to_string(), "0.10");
    assert_eq!(back.amounts, full.amounts);
    assert_eq!(back.days, full.days);
    assert_eq!(back.digest, full.digest);
}

#[test]
fn contains_filters_rows_whose_array_holds_a_value_with_any() {
    let (_db, mp) = database_with::<Post>();
    for tags in [&["rust", "sql"][..], &["rust"], &["go"], &[]] {
        round_trip(&mp, post(tags));
    }
    let mut parts = QueryParts::default();
    parts.add_filter(Post::TAGS.contains("rust"));
    let select = sql::select(Post::table(), &parts).sql;
    assert!(
        select.ends_with(" WHERE $1 = ANY(\"post\".\"tags\")"),
        "{select}"
    );
    let on_pool = mp.clone();
    let (rust, none, not_rust) = on_green(move || {
        on_pool.begin(|s| {
            let rust = s
                .query::<Post>()
                .filter(Post::TAGS.contains("rust"))
                .order_by(Post::ID.asc())
                .all()?;
            let none = s
                .query::<Post>()
                .filter(Post::TAGS.contains("c++"))
                .count()?;
            let not_rust = s
                .query::<Post>()
                .filter(!Post::TAGS.contains("rust"))
                .count()?;
            Ok((rust, none, not_rust))
        })
    })
    .unwrap();
    let ids: Vec<_> = rust.iter().map(|p| p.id.unwrap()).collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!((none, not_rust), (0, 2));
}

#[test]
fn a_null_element_or_a_two_dimensional_array_is_an_error_naming_the_column() {
    let (_db, mp) = database_with::<Post>();
    round_trip(&mp, post(&["x"]));
    let null_element = read_after_setting::<Post>(&mp, "post", "tags", "ARRAY['a', NULL]");
    assert_from_sql_error_names(&null_element, "tags");
    assert!(
        null_element
            .to_string()
            .contains("element 2 of the array is NULL"),
        "{null_element}"
    );
    let nested = read_after_update::<Post>(
        &mp,
        "post",
        "tags = '{}', counts = ARRAY[[1, 2], [3, 4]]".into(),
    );
    assert_from_sql_error_names(&nested, "counts");
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Settings {
    theme: String,
    font_size: u8,
    shortcuts: BTreeMap<String, Vec<String>>,
    parent: Option<Box<Settings>>,
    ratio: f64,
}

#[derive(odm::Model, Debug, Clone, PartialEq)]
struct Profile {
    #[odm(primary_key)]
    id: Option<i32>,
    settings: Json<Settings>,
    #[odm(json)]
    history: Option<Json<Vec<(String, i64)>>>,
}

impl Keyed for Profile {
    fn id(&self) -> i32 {
        self.id.expect("a stored row has its key")
    }
}

fn settings(depth: usize) -> Settings {
    Settings {
        theme: "dark \"solarized\" \\ ✓".into(),
        font_size: 255,
        shortcuts: BTreeMap::from([
            ("save".into(), vec!["ctrl+s".into(), "\u{1}\n\t".into()]),
            ("".into(), Vec::new()),
        ]),
        parent: (depth > 0).then(|| Box::new(settings(depth - 1))),
        ratio: 1.0e-300,
    }
}

#[test]
fn typed_json_round_trips_nested_documents_and_nulls() {
    let (_db, mp) = database_with::<Profile>();
    let sql = table_sql::<Profile>();
    assert!(sql.contains("\"settings\" JSONB NOT NULL"), "{sql}");
    assert!(sql.contains("\"history\" JSON"), "{sql}");
    let deep = Profile {
        id: None,
        settings: Json(settings(5)),
        history: Some(Json(vec![
            ("login".into(), i64::MAX),
            ("".into(), i64::MIN),
        ])),
    };
    let back = round_trip(&mp, deep.clone());
    assert_eq!(back.settings.0, deep.settings.0);
    assert_eq!(
        back.history.as_ref().map(|h| &h.0),
        deep.history.as_ref().map(|h| &h.0)
    );
    let empty = Profile {
        id: None,
        settings: Json(settings(0)),
        history: Some(Json(Vec::new())),
    };
    assert_eq!(
        round_trip(&mp, empty.clone()).history.unwrap().0,
        Vec::new()
    );
    let null = Profile {
        id: None,
        settings: Json(settings(0)),
        history: None,
    };
    assert_eq!(round_trip(&mp, null).history, None);

    // JSONB has no NUL character: the server refuses it, nothing is stored
    let mut with_nul = settings(0);
    with_nul.theme = "a\u{0}b".into();
    let on_pool = mp.clone();
    let refused = on_green(move || {
        on_pool.begin(|s| {
            s.add(&mut Profile {
                id: None,
                settings: Json(with_nul),
                history: None,
            })
        })
    })
    .unwrap_err();
    assert_eq!(refused.code(), Some("22P05"), "{refused}");
}

#[test]
fn a_json_document_that_does_not_fit_the_type_is_an_error_naming_the_column() {
    let (_db, mp) = database_with::<Profile>();
    round_trip(
        &mp,
        Profile {
            id: None,
            settings: Json(settings(0)),
            history: None,
        },
    );
    let wrong =
        read_after_setting::<Profile>(&mp, "profile", "history", "'[[\"a\", \"not a number\"]]'");
    assert_from_sql_error_names(&wrong, "history");
    let missing = read_after_setting::<Profile>(&mp, "profile", "settings", "'{\"theme\": \"x\"}'");
    assert_from_sql_error_names(&missing, "settings");
    assert!(
        missing.to_string().contains("missing field `font_size`"),
        "{missing}"
    );
    let too_big = read_after_setting::<Profile>(
        &mp,
        "profile",
        "settings",
        "'{\"theme\": \"x\", \"font_size\": 256, \"shortcuts\": {}, \"parent\": null, \"ratio\": 1}'",
    );
    assert_from_sql_error_names(&too_big, "settings");
}
