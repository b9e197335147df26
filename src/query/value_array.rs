//! [`ValueArray`]: a list of bound values of one column, sent as ONE array
//! parameter (`= ANY($1)`), so a statement reads the same whatever the
//! number of values and the statement cache keeps one entry for it.
//!
//! The values are type-erased (`&dyn ToSql`: the referenced column of a
//! model, whatever its Rust type); the element type comes from the array
//! type the server inferred for the parameter, and each element is
//! encoded, type-checked, as that type.

use std::error::Error as StdError;
use std::fmt;

use bytes::BytesMut;
use postgres_protocol::types::{array_to_sql, ArrayDimension};
use postgres_types::{to_sql_checked, IsNull, Kind, ToSql, Type};

/// Values of one column bound as one array parameter.
pub(crate) struct ValueArray<'a>(pub(crate) Vec<&'a (dyn ToSql + Sync)>);

impl fmt::Debug for ValueArray<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl ToSql for ValueArray<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        let Kind::Array(member) = ty.kind() else {
            return Err(format!("a value array cannot be sent as `{ty}`").into());
        };
        let dimension = ArrayDimension {
            len: i32::try_from(self.0.len())?,
            lower_bound: 1,
        };
        array_to_sql(
            Some(dimension),
            member.oid(),
            self.0.iter(),
            |value, w| match value.to_sql_checked(member, w)? {
                IsNull::No => Ok(postgres_protocol::IsNull::No),
                IsNull::Yes => Ok(postgres_protocol::IsNull::Yes),
            },
            out,
        )?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::types::ArrayValues;
    use postgres_protocol::types::{array_from_sql, int4_from_sql};

    #[test]
    fn values_encode_as_an_array_of_the_inferred_element_type() {
        let (a, b) = (7i32, 9i32);
        let array = ValueArray(vec![&a, &b]);
        let mut out = BytesMut::new();
        array.to_sql_checked(&Type::INT4_ARRAY, &mut out).unwrap();
        let decoded = array_from_sql(&out).unwrap();
        assert_eq!(decoded.element_type(), Type::INT4.oid());
        let mut values: ArrayValues<'_> = decoded.values();
        let mut got = Vec::new();
        while let Some(v) = fallible_iterator::FallibleIterator::next(&mut values).unwrap() {
            got.push(int4_from_sql(v.unwrap()).unwrap());
        }
        assert_eq!(got, [7, 9]);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_not_garbage() {
        let text = "x";
        let array = ValueArray(vec![&text]);
        let mut out = BytesMut::new();
        assert!(array.to_sql_checked(&Type::INT4_ARRAY, &mut out).is_err());
        assert!(array.to_sql_checked(&Type::INT4, &mut out).is_err());
    }
}
