//! Array columns: `Vec<T>` of the scalar column types, stored as the
//! matching PostgreSQL array (`INTEGER[]`, `TEXT[]`, ...).
//!
//! An array column holds a one-dimensional array whose elements are never
//! NULL: reading a NULL element, or a multi-dimensional array, is an
//! [`Error::FromSql`](crate::error::Error::FromSql) naming the column. An
//! empty `Vec` is stored as the empty array `'{}'`, not as NULL; a NULL
//! array needs `Option<Vec<T>>`. Filter rows whose array holds a value
//! with [`Field::contains`](crate::query::Field::contains)
//! (`$1 = ANY(column)`).

use postgres_types::{FromSql, ToSql};

use crate::error::{Error, Result};
use crate::types::column_type::{column_name, ColumnType};
use green_postgres::Row;

/// A scalar column type that can be the element of an array column
/// (`Vec<T>`): it names its array's SQL type.
pub trait ArrayElement: ColumnType + ToSql + for<'a> FromSql<'a> + Sync + Send + 'static {
    /// The SQL type of a one-dimensional array of this type (`INTEGER[]`).
    const ARRAY_SQL_TYPE: &'static str;
}

macro_rules! array_elements {
    ($($ty:ty => $sql:expr;)*) => {$(
        impl ArrayElement for $ty {
            const ARRAY_SQL_TYPE: &'static str = $sql;
        }
    )*};
}

array_elements! {
    i16 => "SMALLINT[]";
    i32 => "INTEGER[]";
    i64 => "BIGINT[]";
    f32 => "REAL[]";
    f64 => "DOUBLE PRECISION[]";
    bool => "BOOLEAN[]";
    String => "TEXT[]";
    std::net::IpAddr => "INET[]";
}

#[cfg(feature = "chrono")]
array_elements! {
    chrono::NaiveDate => "DATE[]";
    chrono::NaiveTime => "TIME[]";
    chrono::NaiveDateTime => "TIMESTAMP[]";
    chrono::DateTime<chrono::Utc> => "TIMESTAMPTZ[]";
}

#[cfg(feature = "time")]
array_elements! {
    time::Date => "DATE[]";
    time::Time => "TIME[]";
    time::PrimitiveDateTime => "TIMESTAMP[]";
    time::OffsetDateTime => "TIMESTAMPTZ[]";
}

#[cfg(feature = "decimal")]
array_elements! {
    rust_decimal::Decimal => "NUMERIC[]";
}

#[cfg(feature = "uuid")]
array_elements! {
    uuid::Uuid => "UUID[]";
}

impl<T: ArrayElement> ColumnType for Vec<T> {
    const SQL_TYPE: &'static str = T::ARRAY_SQL_TYPE;
    type Inner = Vec<T>;

    fn param(&self) -> Option<&(dyn ToSql + Sync)> {
        Some(self)
    }

    fn decode_nullable(row: &Row, idx: usize) -> Result<Option<Self>> {
        // read the elements as Option to say which one is NULL
        let Some(elements) = row.try_get::<usize, Option<Vec<Option<T>>>>(idx)? else {
            return Ok(None);
        };
        elements
            .into_iter()
            .enumerate()
            .map(|(i, element)| {
                element.ok_or_else(|| Error::FromSql {
                    column: column_name(row, idx),
                    source: format!(
                        "element {} of the array is NULL; the elements of a Vec<{}> column cannot be NULL",
                        i + 1,
                        std::any::type_name::<T>()
                    )
                    .into(),
                })
            })
            .collect::<Result<Vec<T>>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_name_their_element_s_array_type_and_bytes_stay_bytea() {
        assert_eq!(<Vec<i64> as ColumnType>::SQL_TYPE, "BIGINT[]");
        assert_eq!(<Vec<String> as ColumnType>::SQL_TYPE, "TEXT[]");
        assert_eq!(<Option<Vec<bool>> as ColumnType>::SQL_TYPE, "BOOLEAN[]");
        let flags = [
            <Option<Vec<bool>> as ColumnType>::NULLABLE,
            <Vec<i32> as ColumnType>::IDENTITY,
        ];
        assert_eq!(flags, [true, false]);
        assert_eq!(<Vec<u8> as ColumnType>::SQL_TYPE, "BYTEA");
    }

    #[test]
    fn an_empty_array_binds_as_a_value_not_null() {
        let empty: Vec<i32> = Vec::new();
        assert!(empty.param().is_some());
    }
}
