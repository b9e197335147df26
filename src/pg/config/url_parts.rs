//! Splitting a connection URL (the text after `scheme://`) into its parts,
//! so that no part of the user name or password can land anywhere but in
//! the user and password, whatever characters they hold.
//!
//! The rules:
//!
//! - The authority (`[userinfo@]host[:port]`) ends at the first `/`, `?` or
//!   `#`; the userinfo ends at the last `@` inside it, so a raw `@` or `:` in
//!   a password is read as the user meant.
//! - An `@` after the authority means a raw `/`, `?` or `#` may have cut a
//!   user name or password short (`app:Zq9/Xk7@db`): the URL is refused,
//!   and the error says to percent-encode, naming no part of the URL. (An
//!   `@` in the database name or a parameter must be written `%40` too.)
//! - `#` outside the userinfo is refused: a connection URL has no fragment.
//!   libpq takes `#` literally while WHATWG URL parsers start a fragment
//!   with it, so reading it either way would surprise someone; `%23` is
//!   unambiguous.
//! - Without any `@`, the text before the path may itself be a user name and
//!   password written without a host (`app:secret/db`), so errors about the
//!   host, port or database then quote none of it
//!   ([`UrlParts::has_userinfo`]).

use std::fmt;

use super::config_error;
use crate::Error;

/// A connection URL cut into its still percent-encoded parts.
#[derive(Clone, Copy)]
pub(crate) struct UrlParts<'a> {
    /// `user[:password]`, when the URL has an `@` before the host.
    userinfo: Option<&'a str>,
    /// `host[:port]` (or a comma-separated host list); may be empty.
    pub(crate) host_port: &'a str,
    /// The database name: the text after the first `/` of the path, up to
    /// `?`; may be empty and may contain a further `/`.
    pub(crate) path: &'a str,
    /// The parameters after `?`, when there is a `?`.
    pub(crate) query: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    /// Splits `rest`, the URL after `scheme://`.
    pub(crate) fn split(rest: &'a str) -> Result<UrlParts<'a>, Error> {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(authority_end);
        if after.contains('@') {
            return Err(config_error(
                "ambiguous url: an `@` follows the host; percent-encode `/`, `?`, `#` and `@` \
                 in the user name and password (as %2F, %3F, %23 and %40), and `@` elsewhere",
            ));
        }
        if after.contains('#') {
            return Err(config_error(
                "invalid url: a connection url has no fragment; percent-encode `#` as %23",
            ));
        }
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (path, query) = match after.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (after, None),
        };
        Ok(UrlParts {
            userinfo,
            host_port,
            path: path.strip_prefix('/').unwrap_or(path),
            query,
        })
    }

    /// True when the URL has an `@` before the host, so the host, port and
    /// database cannot be a misplaced user name or password and errors may
    /// quote them.
    pub(crate) fn has_userinfo(&self) -> bool {
        self.userinfo.is_some()
    }

    /// `user[:password]`, still percent-encoded.
    pub(crate) fn userinfo(&self) -> Option<&'a str> {
        self.userinfo
    }

    /// The user name: the userinfo up to its first `:`.
    pub(crate) fn user(&self) -> Option<&'a str> {
        self.userinfo
            .map(|info| info.split_once(':').map_or(info, |(user, _)| user))
    }

    /// The password: the userinfo after its first `:`, when it has one.
    pub(crate) fn password(&self) -> Option<&'a str> {
        self.userinfo
            .and_then(|info| info.split_once(':').map(|(_, password)| password))
    }
}

impl fmt::Debug for UrlParts<'_> {
    /// Shows the user name but never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlParts")
            .field("user", &self.user())
            .field("password", &self.password().map(|_| "<redacted>"))
            .field("host_port", &self.host_port)
            .field("path", &self.path)
            .field("query", &self.query)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(rest: &str) -> UrlParts<'_> {
        UrlParts::split(rest).unwrap()
    }

    #[test]
    fn every_part_is_found() {
        let parts = split("u:p@h:1/d?a=1&b=2");
        assert_eq!(parts.user(), Some("u"));
        assert_eq!(parts.password(), Some("p"));
        assert_eq!(parts.host_port, "h:1");
        assert_eq!(parts.path, "d");
        assert_eq!(parts.query, Some("a=1&b=2"));
        assert!(parts.has_userinfo());
        let parts = split("h?a=1");
        assert_eq!((parts.user(), parts.password()), (None, None));
        assert_eq!((parts.host_port, parts.path), ("h", ""));
        assert_eq!(parts.query, Some("a=1"));
        assert!(!parts.has_userinfo());
        let parts = split("");
        assert_eq!((parts.host_port, parts.path, parts.query), ("", "", None));
    }

    #[test]
    fn the_userinfo_ends_at_the_last_at_sign_before_the_path() {
        let parts = split("app:p@ss:w@rd@db.example:5433/x");
        assert_eq!(parts.user(), Some("app"));
        assert_eq!(parts.password(), Some("p@ss:w@rd"));
        assert_eq!(parts.host_port, "db.example:5433");
        let parts = split("app@/x");
        assert_eq!((parts.user(), parts.password()), (Some("app"), None));
        assert_eq!(parts.host_port, "");
        let parts = split(":@h");
        assert_eq!((parts.user(), parts.password()), (Some(""), Some("")));
    }

    #[test]
    fn a_slash_question_mark_or_hash_before_an_at_sign_is_refused_naming_nothing() {
        for rest in [
            "app:Zq9/Xk7@db.example/x",
            "app:Zq9?Xk7@db.example/x",
            "app:Zq9#Xk7@db.example/x",
            "ap/p:Zq9Xk7@db.example/x",
            "h/d?application_name=me@example",
        ] {
            let message = UrlParts::split(rest).unwrap_err().to_string();
            assert!(message.contains("percent-encode"), "{message}");
            for fragment in ["Zq9", "Xk7", "ap", "db.example", "example"] {
                assert!(!message.contains(fragment), "{rest}: {message}");
            }
        }
    }

    #[test]
    fn a_fragment_is_refused() {
        for rest in ["u@h/d#x", "u@h#x", "u@h/d?a=1#x"] {
            let message = UrlParts::split(rest).unwrap_err().to_string();
            assert_eq!(
                message,
                "invalid configuration: invalid url: a connection url has no fragment; \
                 percent-encode `#` as %23"
            );
        }
    }
}
