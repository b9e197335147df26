//! Column types: how a Rust field type maps to a PostgreSQL column.
//!
//! | Rust type | SQL type |
//! |---|---|
//! | `i16` / `i32` / `i64` | `SMALLINT` / `INTEGER` / `BIGINT` |
//! | `f32` / `f64` | `REAL` / `DOUBLE PRECISION` |
//! | `bool` | `BOOLEAN` |
//! | `String` | `TEXT`, or `VARCHAR(n)` with `#[odm(max_length = n)]` |
//! | `Vec<u8>` | `BYTEA` |
//! | `chrono::NaiveDate` / `NaiveTime` / `NaiveDateTime` | `DATE` / `TIME` / `TIMESTAMP` |
//! | `chrono::DateTime<Utc>` / `DateTime<FixedOffset>` | `TIMESTAMPTZ` |
//! | `uuid::Uuid` | `UUID` |
//! | `serde_json::Value` | `JSONB` (`JSON` with `#[odm(json)]`) |
//! | `std::net::IpAddr` | `INET` |
//! | an enum deriving [`Choice`] | `INTEGER`, or `TEXT` with `#[odm(text)]` |
//! | `Option<T>` | the type of `T`, NULL-able |

mod choice;
mod column_type;

pub use choice::Choice;
// For the code the derives generate.
#[doc(hidden)]
pub use choice::{check_choice_code, decode_choice, ChoiceCode};
pub use column_type::ColumnType;
