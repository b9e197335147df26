//! Turning the fields of an `ErrorResponse` or `NoticeResponse` into a
//! [`DbError`], and logging notices.

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::ErrorFields;

use crate::error::{DbError, Error};

/// Reads the fields the server sent into a [`DbError`].
pub(crate) fn parse_fields(mut fields: ErrorFields<'_>) -> Result<DbError, Error> {
    let mut e = DbError::default();
    let mut localized_severity = None;
    while let Some(field) = fields
        .next()
        .map_err(|err| Error::Protocol(format!("malformed error fields: {err}")))?
    {
        let text = String::from_utf8_lossy(field.value_bytes());
        let value = || text.clone().into_owned();
        match field.type_() {
            b'S' => localized_severity = Some(value()),
            b'V' => e.severity = value(),
            b'C' => e.code = value(),
            b'M' => e.message = value(),
            b'D' => e.detail = Some(value()),
            b'H' => e.hint = Some(value()),
            b'P' => e.position = text.parse().ok(),
            b's' => e.schema = Some(value()),
            b't' => e.table = Some(value()),
            b'c' => e.column = Some(value()),
            b'n' => e.constraint = Some(value()),
            _ => {}
        }
    }
    if e.severity.is_empty() {
        e.severity = localized_severity.unwrap_or_default();
    }
    if e.code.len() != 5 {
        return Err(Error::Protocol(
            "error response without a valid sqlstate".to_owned(),
        ));
    }
    Ok(e)
}

/// Parses an `ErrorResponse` into [`Error::Db`].
pub(crate) fn db_error(fields: ErrorFields<'_>) -> Error {
    match parse_fields(fields) {
        Ok(e) => Error::Db(Box::new(e)),
        Err(e) => e,
    }
}

/// Logs a notice at the level its severity calls for.
pub(crate) fn log_notice(notice: &DbError) {
    match notice.severity.as_str() {
        "WARNING" => log::warn!(target: "odm::pg::notice", "{notice}"),
        "DEBUG" | "LOG" => log::debug!(target: "odm::pg::notice", "{notice}"),
        _ => log::info!(target: "odm::pg::notice", "{notice}"),
    }
}
