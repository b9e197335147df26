//! libpq's `key=value` connection string form (`host=/tmp port=5439
//! password='it\'s'`): reading it into settings, which
//! [`Parsed::set`] applies. Errors never quote what may be a password.

use std::iter::Peekable;
use std::str::Chars;

use super::config::config_error;
use super::settings::Parsed;
use super::Config;
use crate::error::Error;

/// libpq's `key=value key='quoted \' value'` form. A password with an
/// unquoted space runs into the next setting; that setting is therefore
/// never quoted in an error. Settings not given keep their value in `base`.
pub(super) fn parse_key_values(base: Config, s: &str) -> Result<Parsed, Error> {
    let mut parsed = Parsed::new(base);
    let mut chars = s.chars().peekable();
    let mut after_password = false;
    loop {
        skip_whitespace(&mut chars);
        if chars.peek().is_none() {
            break;
        }
        let applied = next_setting(&mut chars).and_then(|(key, value)| {
            parsed.set(&key, value)?;
            Ok(key)
        });
        if after_password && applied.is_err() {
            return Err(config_error(
                "invalid setting after `password` (not shown, as it may be part of the \
                 password): quote a password holding spaces or quotes, as password='...' with \
                 `\\'` and `\\\\` inside",
            ));
        }
        after_password = applied? == "password";
    }
    Ok(parsed)
}

fn skip_whitespace(chars: &mut Peekable<Chars<'_>>) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
}

/// Reads one `key = value` (the value quoted or not) after whitespace.
fn next_setting(chars: &mut Peekable<Chars<'_>>) -> Result<(String, String), Error> {
    let mut key = String::new();
    while let Some(&c) = chars.peek() {
        if c == '=' || c.is_whitespace() {
            break;
        }
        key.push(c);
        chars.next();
    }
    skip_whitespace(chars);
    if chars.next() != Some('=') {
        return Err(config_error(&format!(
            "invalid setting `{key}`: expected key=value"
        )));
    }
    skip_whitespace(chars);
    let mut value = String::new();
    if chars.peek() == Some(&'\'') {
        chars.next();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    closed = true;
                    break;
                }
                '\\' => match chars.next() {
                    Some(escaped) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        if !closed {
            return Err(config_error(&format!(
                "unterminated quoted value for `{key}`"
            )));
        }
    } else {
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
    }
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Host};

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn key_value_form_parses_with_quotes() {
        let c = Config::parse(
            "host=/tmp port=5439 user=odm password='it''s' dbname = 'my db' application_name=x\\ y",
        );
        // `''` is not an escape in libpq; a backslash is.
        assert!(c.is_err());
        let c = Config::parse(
            "host=/tmp port=5439 user=odm password='it\\'s' dbname = 'my db' application_name=x\\ y",
        )
        .unwrap();
        assert_eq!(c.host(), &Host::Unix("/tmp".into()));
        assert_eq!(c.port(), 5439);
        assert_eq!(c.user(), "odm");
        assert_eq!(c.password(), Some("it's"));
        assert_eq!(c.dbname(), "my db");
        assert_eq!(c.application_name(), Some("x y"));
    }

    #[test]
    fn a_setting_without_a_value_is_named() {
        assert_eq!(
            err("host=h port"),
            "invalid configuration: invalid setting `port`: expected key=value"
        );
    }

    #[test]
    fn a_setting_after_a_password_is_not_quoted_in_errors() {
        let e = err("user=u password=abc s3cret dbname=d");
        assert!(e.contains("after `password`"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = err("user=u password='abc' s3cret='x'");
        assert!(!e.contains("s3cret"), "{e}");
        let e = err("user=u password='s3cret");
        assert!(!e.contains("s3cret"), "{e}");
        let c = Config::parse("password=abc port=6000").unwrap();
        assert_eq!((c.password(), c.port()), (Some("abc"), 6000));
    }
}
