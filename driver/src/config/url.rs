//! Parsing connection URLs (`postgresql+green://`, `postgresql://`,
//! `postgres://`): splitting one into its parts ([`UrlParts`]) so that no
//! part of the user name or password can land anywhere but in the user and
//! password, whatever characters they hold, then reading each part.
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

use super::config::config_error;
use super::defaults::DEFAULT_PORT;
use super::percent::{percent_decode, Shown};
use super::settings::{parse_host, parse_port, Parsed};
use super::{Config, Host};
use crate::error::Error;

const SCHEMES: [&str; 3] = ["postgresql+green", "postgresql", "postgres"];

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

/// Parses the URL after its `scheme://` over `base` (the defaults, or
/// what the environment gave: a part the URL leaves out keeps its value
/// there); see [`UrlParts`] for how the parts are found without ever
/// mistaking a password for something else.
pub(super) fn parse_url(base: Config, scheme: &str, rest: &str) -> Result<Parsed, Error> {
    let scheme = SCHEMES
        .iter()
        .find(|known| **known == scheme)
        .ok_or_else(|| {
            config_error(&format!(
                "unsupported url scheme `{scheme}`: expected postgresql+green, postgresql or postgres"
            ))
        })?;
    let parts = UrlParts::split(rest)?;
    let mut config = base;
    config.scheme = *scheme;
    if let Some(user) = parts.user() {
        config.user = percent_decode(user, "the user name", Shown::Hidden)?;
    }
    if let Some(password) = parts.password() {
        config.password = Some(percent_decode(password, "the password", Shown::Hidden)?);
    }
    let shown = if parts.has_userinfo() {
        Shown::Quoted
    } else {
        Shown::Hidden
    };
    parse_host_port(&mut config, parts.host_port, shown)?;
    if parts.path.contains('/') {
        return Err(config_error(&match shown {
            Shown::Quoted => format!(
                "invalid database name `{}` in url: it contains `/`",
                parts.path
            ),
            Shown::Hidden => "invalid database name in the url: it contains `/`".to_owned(),
        }));
    }
    if !parts.path.is_empty() {
        config.dbname = percent_decode(parts.path, "database name", shown)?;
    }
    let mut parsed = Parsed::new(config);
    if let Some(query) = parts.query {
        parse_query(&mut parsed, query)?;
    }
    Ok(parsed)
}

/// The `key=value&...` parameters of a URL. A raw `&` in a password given
/// as `password=` cuts it short; the parameter after a password is
/// therefore never quoted in an error.
fn parse_query(parsed: &mut Parsed, query: &str) -> Result<(), Error> {
    let mut after_password = false;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let applied = apply_query_pair(parsed, pair);
        if after_password && applied.is_err() {
            return Err(config_error(
                "invalid url parameter after `password` (not shown, as it may be part of the \
                 password): percent-encode `&` in a password as %26",
            ));
        }
        after_password = applied? == "password";
    }
    Ok(())
}

/// Applies one `key=value` parameter of a URL; returns its key.
fn apply_query_pair(parsed: &mut Parsed, pair: &str) -> Result<String, Error> {
    let (key, value) = pair.split_once('=').ok_or_else(|| {
        config_error(&format!(
            "invalid url parameter `{pair}`: expected key=value"
        ))
    })?;
    let key = percent_decode(key, "parameter name", Shown::Quoted)?;
    let value = if key == "password" {
        percent_decode(value, "the password", Shown::Hidden)?
    } else {
        percent_decode(value, &key, Shown::Quoted)?
    };
    parsed.set(&key, value)?;
    Ok(key)
}

/// The authority's `host[:port]`, or a comma-separated list of them
/// (`h1:5432,h2:5433`, libpq's multi-host form); a host without a port gets
/// the default port, an empty host `localhost`.
fn parse_host_port(config: &mut Config, host_port: &str, shown: Shown) -> Result<(), Error> {
    if host_port.is_empty() {
        return Ok(());
    }
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for entry in host_port.split(',') {
        let (host, port) = parse_one_host_port(entry, shown)?;
        hosts.push(match host {
            Some(host) => host,
            None => Host::Tcp("localhost".to_owned()),
        });
        ports.push(port);
    }
    config.hosts = hosts;
    // Without any port the base's ports stay: none (the default), or
    // what `PGPORT` gave.
    if ports.iter().any(Option::is_some) {
        config.ports = ports
            .into_iter()
            .map(|port| port.unwrap_or(DEFAULT_PORT))
            .collect();
    }
    Ok(())
}

/// One `host[:port]` (`[::1]:5432` for an IPv6 address); `None` for an
/// empty host or a missing port.
fn parse_one_host_port(
    host_port: &str,
    shown: Shown,
) -> Result<(Option<Host>, Option<u16>), Error> {
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| {
            config_error(&format!(
                "invalid {}: unclosed `[`",
                shown.name("host", host_port)
            ))
        })?;
        match after {
            "" => (host.to_owned(), None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host.to_owned(), Some(port)),
                None => {
                    return Err(config_error(&format!(
                        "invalid {}: unexpected text after `]`",
                        shown.name("host", host_port)
                    )))
                }
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (percent_decode(host, "host", shown)?, Some(port)),
            None => (percent_decode(host_port, "host", shown)?, None),
        }
    };
    let host = match host.is_empty() {
        true => None,
        false => Some(parse_host(&host, shown)?),
    };
    let port = port.map(|port| parse_port(port, shown)).transpose()?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SslMode;

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

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn a_password_with_a_slash_question_mark_or_hash_is_refused_without_quoting_it() {
        for url in [
            "postgresql://app:Zq9/Xk7@db.example/x",
            "postgresql://app:Zq9?Xk7@db.example/x",
            "postgresql://app:Zq9#Xk7@db.example/x",
        ] {
            let e = err(url);
            assert_eq!(
                e,
                "invalid configuration: ambiguous url: an `@` follows the host; percent-encode \
                 `/`, `?`, `#` and `@` in the user name and password (as %2F, %3F, %23 and %40), \
                 and `@` elsewhere"
            );
        }
        let c = Config::parse("postgresql://app:Zq9%2FXk7%3F%23@db.example/x").unwrap();
        assert_eq!(c.password(), Some("Zq9/Xk7?#"));
        assert_eq!(c.host(), &Host::Tcp("db.example".into()));
    }

    #[test]
    fn a_url_without_an_at_sign_quotes_no_host_port_or_database_in_errors() {
        assert_eq!(
            err("postgres://app:s3cret/x"),
            "invalid configuration: invalid port in the url: expected a number from 1 to 65535"
        );
        assert_eq!(
            err("postgres://app:123/s3cret/x"),
            "invalid configuration: invalid database name in the url: it contains `/`"
        );
        assert_eq!(
            err("postgres://s3%zzcret/x"),
            "invalid configuration: invalid percent-encoding in host"
        );
        assert_eq!(
            err("postgres://u@h/s3%zzcret"),
            "invalid configuration: invalid percent-encoding in database name `s3%zzcret`"
        );
    }

    #[test]
    fn green_url_with_every_part_parses() {
        let c = Config::parse(
            "postgresql+green://odm:odmtest@127.0.0.1:5433/odmtests?application_name=a",
        )
        .unwrap();
        assert_eq!(c.user(), "odm");
        assert_eq!(c.password(), Some("odmtest"));
        assert_eq!(c.host(), &Host::Tcp("127.0.0.1".into()));
        assert_eq!(c.port(), 5433);
        assert_eq!(c.dbname(), "odmtests");
        assert_eq!(c.application_name(), Some("a"));
        assert!(c.statement_cache());
        assert_eq!(c.ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn percent_encoded_user_password_and_database_decode() {
        let c = Config::parse("postgresql://us%40er:p%3Ass%2Fw%25rd@host/my%20db").unwrap();
        assert_eq!(c.user(), "us@er");
        assert_eq!(c.password(), Some("p:ss/w%rd"));
        assert_eq!(c.dbname(), "my db");
    }

    #[test]
    fn unix_socket_directory_as_host() {
        let c = Config::parse("postgresql://odm@/db?host=/tmp/pg%20sock&port=5439").unwrap();
        assert_eq!(c.host(), &Host::Unix("/tmp/pg sock".into()));
        assert_eq!(c.port(), 5439);
        let c = Config::parse("postgresql://odm@%2Fvar%2Frun%2Fpostgresql/db").unwrap();
        assert_eq!(c.host(), &Host::Unix("/var/run/postgresql".into()));
    }

    #[test]
    fn ipv6_host_in_brackets() {
        let c = Config::parse("postgres://u@[::1]:6000/d").unwrap();
        assert_eq!(c.host(), &Host::Tcp("::1".into()));
        assert_eq!(c.port(), 6000);
    }

    #[test]
    fn a_url_password_holding_a_slash_question_mark_or_hash_never_appears_in_the_error() {
        for url in [
            "postgresql://app:Zq9/Xk7@db.example/x",
            "postgresql://app:Zq9?Xk7@db.example/x",
            "postgresql://app:Zq9#Xk7@db.example/x",
        ] {
            let e = err(url);
            assert!(!e.contains("Zq9") && !e.contains("Xk7"), "{url}: {e}");
            assert!(e.contains("percent-encode"), "{url}: {e}");
        }
    }

    #[test]
    fn password_never_appears_in_errors_or_debug() {
        let e = err("postgres://u:s3cr%zzet@h/d");
        assert_eq!(
            e,
            "invalid configuration: invalid percent-encoding in the password"
        );
        assert!(!e.contains("s3cr"));
        let e = err("postgres://u:s3cret@h:99999/d");
        assert!(!e.contains("s3cret"), "{e}");
        let c = Config::parse("postgres://u:s3cret@h/d").unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn a_setting_after_a_password_is_not_quoted_in_errors() {
        let e = err("postgres://u@h/d?password=abc&s3cret&x=1");
        assert!(e.contains("after `password`"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = err("postgres://u@h/d?password=abc&s3cret=1");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn a_percent_sign_needs_two_hex_digits() {
        assert_eq!(
            err("postgres://u:%+f@h/d"),
            "invalid configuration: invalid percent-encoding in the password"
        );
    }
}
