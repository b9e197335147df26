//! Typed JSON columns: [`Json<T>`] stores any serde type as `JSONB` (or
//! `JSON` with `#[odm(json)]`), written with `serde_json` and read back
//! into `T`.
//!
//! `Json<T>` is `postgres_types::Json`, re-exported: a wrapper around the
//! value (`Json(settings)`, `field.0`). A stored document that does not
//! fit `T` (a missing field, a wrong type) is an
//! [`Error::FromSql`](crate::error::Error::FromSql) naming the column and
//! serde's reason, never a default value. For JSON of no fixed shape use
//! `serde_json::Value`.

use std::fmt::Debug;

use postgres_types::ToSql;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::types::column_type::ColumnType;
use green_postgres::Row;

pub use postgres_types::Json;

impl<T> ColumnType for Json<T>
where
    T: Serialize + DeserializeOwned + Debug + Sync + Send + 'static,
{
    const SQL_TYPE: &'static str = "JSONB";
    type Inner = Json<T>;

    fn param(&self) -> Option<&(dyn ToSql + Sync)> {
        Some(self)
    }

    fn decode_nullable(row: &Row, idx: usize) -> Result<Option<Self>> {
        Ok(row.try_get::<usize, Option<Json<T>>>(idx)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_json_is_a_jsonb_column() {
        assert_eq!(<Json<Vec<String>> as ColumnType>::SQL_TYPE, "JSONB");
        let nullable = [<Option<Json<Vec<String>>> as ColumnType>::NULLABLE];
        assert_eq!(nullable, [true]);
        assert!(Json(vec![1, 2]).param().is_some());
    }
}
