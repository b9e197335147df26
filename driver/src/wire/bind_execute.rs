//! The bytes of the hot request: `Bind` (unnamed portal, binary
//! parameters and results), `Execute` (all rows) and `Sync`, written in
//! one pass with one capacity check.
//!
//! `postgres_protocol::message::frontend` writes the same three messages
//! through generic helpers that check capacity on every field, scan the
//! portal and statement names for NUL bytes and patch every length
//! afterwards; for a point select that was a fifth of the driver's
//! instructions per query. The output is byte for byte the same (the unit
//! tests compare them), and the errors are the same [`Error::ToSql`]s.

use bytes::BytesMut;
use postgres_types::{IsNull, ToSql, Type};

use crate::error::Error;

/// A query parameter: any value that can be encoded for PostgreSQL.
pub type Param<'a> = &'a (dyn ToSql + Sync);

/// The most parameters one statement can carry: the protocol counts them
/// in 16 bits.
pub(crate) const MAX_PARAMETERS: usize = u16::MAX as usize;

/// [`Error::TooManyParameters`] past [`MAX_PARAMETERS`], checked before
/// anything is sent (PostgreSQL itself describes a statement with more
/// with a count that wrapped around).
pub(crate) fn check_parameter_limit(count: usize) -> Result<(), Error> {
    if count > MAX_PARAMETERS {
        Err(Error::TooManyParameters { count })
    } else {
        Ok(())
    }
}

/// `Execute` of the unnamed portal with no row limit.
const EXECUTE: [u8; 10] = [
    b'E', 0, 0, 0, 9, 0, 0, 0, 0, 0, // Execute: portal "", max rows 0
];

/// The length of a `Sync` message.
const SYNC_LEN: usize = 5;

/// Room reserved up front for one parameter (its length word and a small
/// value); larger values grow the buffer as they are written.
const PARAM_GUESS: usize = 16;

/// Appends `Bind` of `statement` (named `name`, parameter types `types`)
/// with `params`, and `Execute`, to `buf`; the caller adds the `Sync` (a
/// read may share one with other reads). On error `buf` is left as it was.
pub(crate) fn encode_bind_execute(
    name: &str,
    types: &[Type],
    params: &[Param<'_>],
    buf: &mut BytesMut,
) -> Result<(), Error> {
    encode_bind(name, types, params, buf)?;
    buf.extend_from_slice(&EXECUTE);
    Ok(())
}

/// Appends only the `Bind` (for requests that put a `Describe` after it,
/// or several statements before one `Sync`). On error `buf` is left as it
/// was.
pub(crate) fn encode_bind(
    name: &str,
    types: &[Type],
    params: &[Param<'_>],
    buf: &mut BytesMut,
) -> Result<(), Error> {
    let start = buf.len();
    let result = encode(name, types, params, buf);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn encode(
    name: &str,
    types: &[Type],
    params: &[Param<'_>],
    buf: &mut BytesMut,
) -> Result<(), Error> {
    check_parameter_limit(params.len())?;
    let count = params.len() as u16;
    // Names are odm's own (`odm_s<n>`, or empty for the unnamed statement).
    debug_assert!(!name.as_bytes().contains(&0), "statement name with NUL");
    // Room for the `Execute` and a `Sync` after it too.
    buf.reserve(32 + name.len() + params.len() * PARAM_GUESS + EXECUTE.len() + SYNC_LEN);
    let base = buf.len();
    // Tag, length (patched below), portal "".
    buf.extend_from_slice(&[b'B', 0, 0, 0, 0, 0]);
    buf.extend_from_slice(name.as_bytes());
    let [high, low] = count.to_be_bytes();
    // End of the name; one format code for all parameters (binary); the
    // parameter count.
    buf.extend_from_slice(&[0, 0, 1, 0, 1, high, low]);
    for (i, (param, ty)) in params.iter().zip(types).enumerate() {
        let at = buf.len();
        buf.extend_from_slice(&[0; 4]); // value length, patched below
        let length = match param.to_sql_checked(ty, buf) {
            Ok(IsNull::No) => i32::try_from(buf.len() - at - 4).map_err(|_| too_large(i + 1))?,
            Ok(IsNull::Yes) => -1,
            Err(source) => {
                return Err(Error::ToSql {
                    index: i + 1,
                    source,
                })
            }
        };
        buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
    }
    // One result format code for all columns: binary.
    buf.extend_from_slice(&[0, 1, 0, 1]);
    let length = i32::try_from(buf.len() - base - 1).map_err(|_| too_large(params.len()))?;
    buf[base + 1..base + 5].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// A value (or the whole message) longer than the protocol's lengths allow.
fn too_large(index: usize) -> Error {
    Error::ToSql {
        index,
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "value too large to transmit",
        )),
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    use postgres_types::{ToSql, Type};

    use super::encode_bind_execute;
    use crate::error::Error;
    use crate::wire::bind_execute::Param;

    /// What `postgres_protocol` writes for the same request.
    fn reference(name: &str, types: &[Type], params: &[Param<'_>]) -> BytesMut {
        let mut buf = BytesMut::new();
        let bound = frontend::bind(
            "",
            name,
            Some(1),
            params.iter().zip(types),
            |(param, ty), buf| match param.to_sql_checked(ty, buf) {
                Ok(postgres_types::IsNull::No) => Ok(postgres_protocol::IsNull::No),
                Ok(postgres_types::IsNull::Yes) => Ok(postgres_protocol::IsNull::Yes),
                Err(e) => Err(e),
            },
            Some(1),
            &mut buf,
        );
        assert!(bound.is_ok());
        frontend::execute("", 0, &mut buf).unwrap();
        buf
    }

    fn ours(name: &str, types: &[Type], params: &[Param<'_>]) -> BytesMut {
        let mut buf = BytesMut::from(&b"queued"[..]);
        encode_bind_execute(name, types, params, &mut buf).unwrap();
        assert_eq!(&buf[..6], b"queued");
        buf.split_off(6)
    }

    #[test]
    fn requests_are_encoded_byte_for_byte_as_postgres_protocol_does() {
        let none: Option<i32> = None;
        let text = "a longer text value ".repeat(10);
        let bytes = vec![7u8; 300];
        let cases: Vec<(&str, Vec<Type>, Vec<&(dyn ToSql + Sync)>)> = vec![
            ("", vec![], vec![]),
            ("odm_s1", vec![Type::INT4], vec![&42i32]),
            ("odm_s17", vec![Type::INT4, Type::INT4], vec![&1i32, &none]),
            (
                "odm_s3",
                vec![Type::TEXT, Type::BYTEA, Type::INT8],
                vec![&text, &bytes, &-5i64],
            ),
        ];
        for (name, types, params) in &cases {
            assert_eq!(
                ours(name, types, params),
                reference(name, types, params),
                "{name}"
            );
        }
        let many: Vec<i32> = (0..1000).collect();
        let params: Vec<Param<'_>> = many.iter().map(|v| v as Param<'_>).collect();
        let types = vec![Type::INT4; many.len()];
        assert_eq!(
            ours("odm_s9", &types, &params),
            reference("odm_s9", &types, &params)
        );
    }

    #[test]
    fn a_parameter_of_the_wrong_type_is_reported_by_its_position_and_leaves_the_buffer_as_it_was() {
        let mut buf = BytesMut::from(&b"queued"[..]);
        let result = encode_bind_execute(
            "odm_s1",
            &[Type::INT4, Type::INT4],
            &[&1i32, &"not a number"],
            &mut buf,
        );
        assert!(
            matches!(result, Err(Error::ToSql { index: 2, .. })),
            "{result:?}"
        );
        assert_eq!(&buf[..], b"queued");
    }

    #[test]
    fn more_parameters_than_the_protocol_can_count_are_refused() {
        let values = vec![0i32; usize::from(u16::MAX) + 1];
        let params: Vec<Param<'_>> = values.iter().map(|v| v as Param<'_>).collect();
        let types = vec![Type::INT4; values.len()];
        let mut buf = BytesMut::new();
        let result = encode_bind_execute("odm_s1", &types, &params, &mut buf);
        assert!(
            matches!(result, Err(Error::TooManyParameters { count: 65_536 })),
            "{result:?}"
        );
        assert!(buf.is_empty());
    }
}
