//! Failures the client detects before sending are the caller's: typed
//! errors, nothing sent, the connection open (`is_closed()` false) and
//! answering the next query — never "i/o error on the connection".
//!
//! Run: `cargo test --test client_errors`

mod green_tasks;

use green_tasks::on_green;
use odm::pg::{Client, Config, Error, Param, ToSql};
use odm::testing::test_database;

/// Runs `work` on a fresh connection, then checks that the same
/// connection still answers.
fn on_one_connection(work: impl FnOnce(&Client) -> Error + Send + 'static) -> Error {
    let db = test_database().unwrap();
    let url = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        let error = work(&client);
        assert!(!error.is_closed(), "{error:?}");
        assert!(!client.is_closed());
        let rows = client.query("SELECT 41 + 1", &[]).unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 42);
        error
    })
}

#[test]
fn a_nul_byte_in_sql_text_is_an_encode_error_and_the_connection_stays_open() {
    let error =
        on_one_connection(|client| client.execute("SELECT 1\0; DROP TABLE x", &[]).unwrap_err());
    assert!(matches!(error, Error::Encode(_)), "{error:?}");
    assert!(error.to_string().contains("nul byte"), "{error}");
    let error = on_one_connection(|client| client.batch_execute("SELECT\0 1").unwrap_err());
    assert!(matches!(error, Error::Encode(_)), "{error:?}");
}

#[test]
fn more_than_65535_parameters_are_refused_before_sending_and_the_connection_stays_open() {
    let error = on_one_connection(|client| {
        let values = vec![1i32; 66_000];
        let params: Vec<Param<'_>> = values.iter().map(|v| v as Param<'_>).collect();
        let placeholders: Vec<String> = (1..=66_000).map(|n| format!("${n}")).collect();
        let sql = format!("SELECT {}", placeholders.join(" + "));
        client.query(&sql, &params).unwrap_err()
    });
    assert!(
        matches!(error, Error::TooManyParameters { count: 66_000 }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "a statement takes at most 65535 parameters, 66000 were given"
    );
}

/// A value whose encoding always fails.
#[derive(Debug)]
struct Unencodable;

impl ToSql for Unencodable {
    fn to_sql(
        &self,
        _: &odm::pg::Type,
        _: &mut bytes::BytesMut,
    ) -> Result<odm::pg::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Err("this value refuses to be encoded".into())
    }

    fn accepts(_: &odm::pg::Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

#[test]
fn a_parameter_that_cannot_be_encoded_is_a_to_sql_error_and_the_connection_stays_open() {
    let error = on_one_connection(|client| {
        client
            .query("SELECT $1::int4", &[&Unencodable])
            .unwrap_err()
    });
    assert!(matches!(error, Error::ToSql { index: 1, .. }), "{error:?}");
}
