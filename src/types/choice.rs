//! Enumerated columns: enums deriving [`Choice`], and string columns limited
//! to a fixed set of codes (`#[odm(choices = "a,b,c")]`).

use super::column_type::column_name;
use crate::error::Error;
use green_postgres::Row;

/// An enum stored in one column: as its integer discriminant in an `INTEGER`
/// column (the default), or as its variant name in a `TEXT` column
/// (`#[odm(text)]` on the enum).
///
/// Derive it with `#[derive(odm::Choice)]`; the derive also implements
/// [`ColumnType`](crate::types::ColumnType) and the driver's `ToSql` /
/// `FromSql`. A value in the database that matches no variant is reported as
/// [`Error::InvalidChoice`] naming the column and the value.
///
/// ```
/// #[derive(odm::Choice, Debug, Clone, Copy, PartialEq, Default)]
/// enum TaskType {
///     #[default]
///     Work = 1,
///     Personal = 2,
/// }
/// use odm::types::Choice;
/// assert_eq!(TaskType::Personal.to_i32(), 2);
/// assert_eq!(TaskType::from_i32(1), Some(TaskType::Work));
/// assert_eq!(TaskType::from_name("Personal"), Some(TaskType::Personal));
/// assert_eq!(TaskType::from_i32(9), None);
/// ```
pub trait Choice: Sized + 'static {
    /// True when stored by variant name (`#[odm(text)]`).
    const TEXT: bool;
    /// The enum's name, for error messages.
    const TYPE_NAME: &'static str;
    /// The integer discriminant of this variant.
    fn to_i32(&self) -> i32;
    /// The name of this variant, as written in the enum.
    fn name(&self) -> &'static str;
    /// The variant with this discriminant.
    fn from_i32(value: i32) -> Option<Self>;
    /// The variant with this name.
    fn from_name(name: &str) -> Option<Self>;
}

/// Reads a [`Choice`] from column `idx`: its discriminant or its name,
/// mapped to a variant; a value matching no variant is
/// [`Error::InvalidChoice`] naming the column and the value. Used by the
/// derive's `ColumnType` implementation.
pub fn decode_choice<C: Choice>(row: &Row, idx: usize) -> Result<Option<C>, Error> {
    if C::TEXT {
        match row.try_get::<usize, Option<&str>>(idx)? {
            None => Ok(None),
            Some(name) => C::from_name(name).map(Some).ok_or_else(|| {
                invalid_choice(&column_name(row, idx), format!("{name:?}"), C::TYPE_NAME)
            }),
        }
    } else {
        match row.try_get::<usize, Option<i32>>(idx)? {
            None => Ok(None),
            Some(value) => C::from_i32(value).map(Some).ok_or_else(|| {
                invalid_choice(&column_name(row, idx), value.to_string(), C::TYPE_NAME)
            }),
        }
    }
}

/// The error for a stored value that matches no variant or code.
pub(crate) fn invalid_choice(column: &str, value: String, type_name: &'static str) -> Error {
    Error::InvalidChoice {
        column: column.to_owned(),
        value,
        type_name,
    }
}

/// A string field that can be limited to a fixed set of codes with
/// `#[odm(choices = "a,b,c")]`: `String` and `Option<String>`.
pub trait ChoiceCode {
    /// The code, or `None` for NULL.
    fn code(&self) -> Option<&str>;
}

impl ChoiceCode for String {
    fn code(&self) -> Option<&str> {
        Some(self)
    }
}

impl ChoiceCode for Option<String> {
    fn code(&self) -> Option<&str> {
        self.as_deref()
    }
}

/// Checks that `value` is one of `allowed` (NULL always passes; NOT NULL is
/// the column's business). Used by the derive before writes and after reads.
pub fn check_choice_code<V: ChoiceCode + ?Sized>(
    column: &str,
    value: &V,
    allowed: &[&str],
) -> Result<(), Error> {
    match value.code() {
        Some(code) if !allowed.contains(&code) => {
            Err(invalid_choice(column, format!("{code:?}"), "choice"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_outside_the_allowed_set_names_the_column_and_the_value() {
        let err = check_choice_code("sex", &"robot".to_string(), &["female", "male"]).unwrap_err();
        assert!(matches!(err, Error::InvalidChoice { .. }));
        assert_eq!(
            err.to_string(),
            "column `sex` holds \"robot\", which is not a valid choice"
        );
    }

    #[test]
    fn allowed_codes_and_null_pass() {
        check_choice_code("sex", &"male".to_string(), &["female", "male"]).unwrap();
        check_choice_code("sex", &None::<String>, &["female", "male"]).unwrap();
    }
}
