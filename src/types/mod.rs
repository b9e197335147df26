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
//! | `time::Date` / `Time` / `PrimitiveDateTime` (feature `time`) | `DATE` / `TIME` / `TIMESTAMP` |
//! | `time::OffsetDateTime` (feature `time`) | `TIMESTAMPTZ` |
//! | `rust_decimal::Decimal` (feature `decimal`) | `NUMERIC` |
//! | `uuid::Uuid` | `UUID` |
//! | `serde_json::Value` | `JSONB` (`JSON` with `#[odm(json)]`) |
//! | [`Json<T>`] for any serde type `T` | `JSONB` (`JSON` with `#[odm(json)]`) |
//! | `Vec<T>` of a scalar type above ([`ArrayElement`]) | `T[]` (`INTEGER[]`, `TEXT[]`, ...) |
//! | `std::net::IpAddr` | `INET` |
//! | an enum deriving [`Choice`] | `INTEGER`, or `TEXT` with `#[odm(text)]` |
//! | `Option<T>` | the type of `T`, NULL-able |
//!
//! Features `chrono`, `uuid` and `json` are on by default; `time` and
//! `decimal` are off. A NUMERIC `NaN` (or `Infinity`, PostgreSQL 14+) has
//! no `Decimal` form: reading one is an [`Error::FromSql`](crate::Error::FromSql)
//! naming the column.

mod array;
pub(crate) mod choice;
mod column_type;
#[cfg(feature = "json")]
mod json;

pub use array::ArrayElement;
pub use choice::Choice;
pub use column_type::ColumnType;
#[cfg(feature = "json")]
pub use json::Json;
