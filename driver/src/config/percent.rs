//! Percent-encoding of URL parts, and whether an error may quote the text
//! it is about ([`Shown`]): a user name or password never appears in one.

use super::config::config_error;
use crate::error::Error;

/// Whether an error may quote the text it is about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    /// The text cannot hold a secret: quote it.
    Quoted,
    /// The text is, or may be, part of a user name or password: name only
    /// the part of the connection string.
    Hidden,
}

impl Shown {
    /// `what` followed by the quoted text, or by where it is when hidden.
    pub(super) fn name(self, what: &str, text: &str) -> String {
        match self {
            Shown::Quoted => format!("{what} `{text}`"),
            Shown::Hidden => format!("{what} in the url"),
        }
    }
}

/// Decodes `%XX` escapes. `what` names the part for the error message,
/// which quotes the text only when `shown` allows.
pub(super) fn percent_decode(s: &str, what: &str, shown: Shown) -> Result<String, Error> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bad = || {
        config_error(&match shown {
            Shown::Quoted => format!("invalid percent-encoding in {what} `{s}`"),
            Shown::Hidden => format!("invalid percent-encoding in {what}"),
        })
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits (`from_str_radix` alone would take `%+f`).
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Encodes every byte but RFC 3986's unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_then_decoding_gives_the_text_back() {
        for text in ["plain", "a b/c?d#e@f:g%h&i", "ünï ☃", ""] {
            let encoded = percent_encode(text);
            assert_eq!(percent_decode(&encoded, "x", Shown::Quoted).unwrap(), text);
        }
    }

    #[test]
    fn a_hidden_bad_escape_is_named_without_its_text() {
        let e = percent_decode("s3%zz", "the password", Shown::Hidden).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: invalid percent-encoding in the password"
        );
    }
}
