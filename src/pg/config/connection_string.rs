//! Parsing connection strings: the settings by their libpq / URL names,
//! libpq's `key=value` form, and the value parsers and percent-decoding
//! that URLs ([`super::url`]) share. Errors name the bad part and never the
//! password.

use std::iter::Peekable;
use std::path::Path;
use std::str::Chars;
use std::time::Duration;

use super::{config_error, ChannelBindingMode, Config, Host, RequireAuth, SslMode, SslNegotiation};
use crate::Error;

impl Config {
    /// Applies one setting by its libpq / URL name.
    pub(super) fn set(&mut self, key: &str, value: String) -> Result<(), Error> {
        match key {
            "host" => self.host = parse_host(&value, Shown::Quoted)?,
            "port" => self.port = parse_port(&value, Shown::Quoted)?,
            "dbname" => self.dbname = value,
            "user" => self.user = value,
            "password" => self.password = Some(value),
            "application_name" => self.application_name = Some(value),
            "connect_timeout" => {
                self.connect_timeout = Some(parse_seconds(key, &value)?).filter(|d| !d.is_zero())
            }
            "statement_timeout" => self.statement_timeout = Some(parse_millis(key, &value)?),
            "query_timeout" => {
                self.query_timeout = Some(parse_millis(key, &value)?).filter(|d| !d.is_zero())
            }
            "slow_statement_ms" => {
                self.slow_statement = Some(parse_millis(key, &value)?).filter(|d| !d.is_zero())
            }
            "keepalives" => self.keepalives = parse_bool(key, &value)?,
            "keepalives_idle" => self.keepalives_idle = parse_whole_seconds(key, &value)?,
            "keepalives_interval" => self.keepalives_interval = parse_whole_seconds(key, &value)?,
            "keepalives_count" => {
                self.keepalives_count = match value.parse::<u32>() {
                    Ok(n) if (1..=127).contains(&n) => n,
                    _ => {
                        return Err(config_error(&format!(
                            "invalid keepalives_count `{value}`: expected a number from 1 to 127"
                        )))
                    }
                }
            }
            "tcp_user_timeout" => {
                self.tcp_user_timeout = Some(parse_millis(key, &value)?).filter(|d| !d.is_zero())
            }
            "statement_cache_capacity" => {
                self.statement_cache_capacity = value.parse::<usize>().map_err(|_| {
                    config_error(&format!(
                        "invalid statement_cache_capacity `{value}`: expected a whole number"
                    ))
                })?
            }
            "max_lifetime" => {
                self.max_lifetime = Some(parse_seconds(key, &value)?).filter(|d| !d.is_zero())
            }
            "idle_timeout" => {
                self.idle_timeout = Some(parse_seconds(key, &value)?).filter(|d| !d.is_zero())
            }
            "options" => self.options = Some(value),
            "sslmode" => {
                self.ssl_mode = match value.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" => SslMode::Allow,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    _ => {
                        return Err(config_error(&format!(
                            "invalid sslmode `{value}`: expected disable, allow, prefer, require, \
                             verify-ca or verify-full"
                        )))
                    }
                }
            }
            "sslrootcert" => self.ssl_root_cert = Some(value).filter(|v| !v.is_empty()),
            "sslcert" => self.ssl_cert = Some(value).filter(|v| !v.is_empty()),
            "sslkey" => self.ssl_key = Some(value).filter(|v| !v.is_empty()),
            "sslnegotiation" => {
                self.ssl_negotiation = match value.as_str() {
                    "postgres" => SslNegotiation::Postgres,
                    "direct" => SslNegotiation::Direct,
                    _ => {
                        return Err(config_error(&format!(
                            "invalid sslnegotiation `{value}`: expected postgres or direct"
                        )))
                    }
                }
            }
            "channel_binding" => self.channel_binding = ChannelBindingMode::parse(&value)?,
            "require_auth" => self.require_auth = RequireAuth::parse(&value)?,
            "pool_size" => {
                self.pool_size = match value.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return Err(config_error(&format!(
                            "invalid pool_size `{value}`: expected a positive integer"
                        )))
                    }
                }
            }
            "pool_timeout" => self.pool_timeout = parse_seconds(key, &value)?,
            "statement_cache" => self.statement_cache = parse_bool(key, &value)?,
            _ => return Err(config_error(&format!("unknown setting `{key}`"))),
        }
        Ok(())
    }
}

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

pub(super) fn parse_host(host: &str, shown: Shown) -> Result<Host, Error> {
    if host.is_empty() {
        return Err(config_error("empty host"));
    }
    if host.starts_with('/') {
        Ok(Host::Unix(Path::new(host).to_path_buf()))
    } else if host.contains('/') {
        Err(config_error(&format!(
            "invalid {}: a unix socket directory must be an absolute path",
            shown.name("host", host)
        )))
    } else {
        Ok(Host::Tcp(host.to_owned()))
    }
}

pub(super) fn parse_port(port: &str, shown: Shown) -> Result<u16, Error> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(config_error(&format!(
            "invalid {}: expected a number from 1 to 65535",
            shown.name("port", port)
        ))),
    }
}

/// `true`/`false` and their libpq spellings (`on`, `yes`, `1`, ...).
fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(config_error(&format!(
            "invalid {key} `{value}`: expected true or false"
        ))),
    }
}

/// A whole number of seconds, at least 1 (what the kernel's keepalive
/// settings accept).
fn parse_whole_seconds(key: &str, value: &str) -> Result<Duration, Error> {
    match value.parse::<u64>() {
        Ok(s) if (1..=32_767).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(config_error(&format!(
            "invalid {key} `{value}`: expected whole seconds from 1 to 32767"
        ))),
    }
}

/// Seconds, integer or decimal (`30`, `0.5`).
fn parse_seconds(key: &str, value: &str) -> Result<Duration, Error> {
    match value.parse::<f64>() {
        Ok(s) if (0.0..1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(config_error(&format!(
            "invalid {key} `{value}`: expected a number of seconds"
        ))),
    }
}

/// Milliseconds, or a number with a unit (`ms`, `s`, `min`), as PostgreSQL
/// accepts for `statement_timeout`.
fn parse_millis(key: &str, value: &str) -> Result<Duration, Error> {
    let trimmed = value.trim();
    let (number, scale) = if let Some(n) = trimmed.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = trimmed.strip_suffix("min") {
        (n, 60_000.0)
    } else if let Some(n) = trimmed.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (trimmed, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * scale < 1e12 => {
            Ok(Duration::from_micros((n * scale * 1000.0).round() as u64))
        }
        _ => Err(config_error(&format!(
            "invalid {key} `{value}`: expected milliseconds or a number with ms, s or min"
        ))),
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

/// libpq's `key=value key='quoted \' value'` form. A password with an
/// unquoted space runs into the next setting; that setting is therefore
/// never quoted in an error.
pub(super) fn parse_key_values(s: &str) -> Result<Config, Error> {
    let mut config = Config::empty("postgresql+green");
    let mut chars = s.chars().peekable();
    let mut after_password = false;
    loop {
        skip_whitespace(&mut chars);
        if chars.peek().is_none() {
            break;
        }
        let applied = next_setting(&mut chars).and_then(|(key, value)| {
            config.set(&key, value)?;
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
    Ok(config)
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
    use super::*;

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn green_url_with_every_part_parses() {
        let c = Config::parse(
            "postgresql+green://odm:odmtest@127.0.0.1:5433/odmtests?pool_size=7&pool_timeout=15",
        )
        .unwrap();
        assert_eq!(c.user(), "odm");
        assert_eq!(c.password(), Some("odmtest"));
        assert_eq!(c.host(), &Host::Tcp("127.0.0.1".into()));
        assert_eq!(c.port(), 5433);
        assert_eq!(c.dbname(), "odmtests");
        assert_eq!(c.pool_size(), 7);
        assert_eq!(c.pool_timeout(), Duration::from_secs(15));
        assert!(c.statement_cache());
        assert_eq!(c.ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn defaults_apply_when_parts_are_missing() {
        let c = Config::parse("postgres://").unwrap();
        assert_eq!(c.user(), "postgres");
        assert_eq!(c.dbname(), "postgres");
        assert_eq!(c.port(), 5432);
        assert_eq!(c.host(), &Host::Tcp("localhost".into()));
        assert_eq!(c.pool_size(), 10);
        assert_eq!(c.pool_timeout(), Duration::from_secs(30));
        assert_eq!(c.password(), None);
        let c = Config::parse("postgresql://alice@db").unwrap();
        assert_eq!(c.dbname(), "alice");
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
    fn every_setting_parses() {
        let c = Config::parse(
            "postgresql://u:p@h/d?application_name=my%20app&connect_timeout=2.5&statement_timeout=1500\
             &options=-c%20search_path%3Dx&sslmode=disable&pool_size=3&pool_timeout=0.25&statement_cache=false",
        )
        .unwrap();
        assert_eq!(c.application_name(), Some("my app"));
        assert_eq!(c.connect_timeout(), Some(Duration::from_millis(2500)));
        assert_eq!(c.statement_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(c.options(), Some("-c search_path=x"));
        assert_eq!(c.ssl_mode(), SslMode::Disable);
        assert_eq!(c.pool_size(), 3);
        assert_eq!(c.pool_timeout(), Duration::from_millis(250));
        assert!(!c.statement_cache());
        let c = Config::parse("postgres://u@h/d?statement_timeout=2s&sslmode=require").unwrap();
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(c.ssl_mode(), SslMode::Require);
    }

    #[test]
    fn reliability_settings_have_documented_defaults() {
        let c = Config::parse("postgres://u@h/d").unwrap();
        assert_eq!(c.connect_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(c.query_timeout(), None);
        assert!(c.keepalives());
        assert_eq!(c.keepalives_idle(), Duration::from_secs(60));
        assert_eq!(c.keepalives_interval(), Duration::from_secs(10));
        assert_eq!(c.keepalives_count(), 6);
        assert_eq!(c.tcp_user_timeout(), None);
        assert_eq!(c.statement_cache_capacity(), 256);
        assert_eq!(c.max_lifetime(), Some(Duration::from_secs(1800)));
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(600)));
    }

    #[test]
    fn reliability_settings_parse_and_round_trip() {
        let url = "postgres://u@h/d?connect_timeout=0&query_timeout=2000&keepalives=0\
                   &keepalives_idle=5&keepalives_interval=2&keepalives_count=3&tcp_user_timeout=10000\
                   &statement_cache_capacity=16&max_lifetime=0&idle_timeout=0.5";
        let c = Config::parse(url).unwrap();
        assert_eq!(c.connect_timeout(), None);
        assert_eq!(c.query_timeout(), Some(Duration::from_secs(2)));
        assert!(!c.keepalives());
        assert_eq!(c.keepalives_idle(), Duration::from_secs(5));
        assert_eq!(c.keepalives_interval(), Duration::from_secs(2));
        assert_eq!(c.keepalives_count(), 3);
        assert_eq!(c.tcp_user_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(c.statement_cache_capacity(), 16);
        assert_eq!(c.max_lifetime(), None);
        assert_eq!(c.idle_timeout(), Some(Duration::from_millis(500)));
        assert_eq!(Config::parse(&c.to_url()).unwrap(), c, "{}", c.to_url());
        let c = Config::parse("postgres://u@h/d?query_timeout=1.5").unwrap();
        assert_eq!(c.query_timeout(), Some(Duration::from_micros(1500)));
        assert_eq!(Config::parse(&c.to_url()).unwrap(), c, "{}", c.to_url());
        assert_eq!(
            err("postgres://u@h/d?keepalives_count=0"),
            "invalid configuration: invalid keepalives_count `0`: expected a number from 1 to 127"
        );
        assert_eq!(
            err("postgres://u@h/d?keepalives_idle=1.5"),
            "invalid configuration: invalid keepalives_idle `1.5`: expected whole seconds from 1 to 32767"
        );
        assert_eq!(
            err("postgres://u@h/d?keepalives=maybe"),
            "invalid configuration: invalid keepalives `maybe`: expected true or false"
        );
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
    fn bad_input_errors_name_the_bad_part() {
        assert_eq!(
            err("mysql://u@h/d"),
            "invalid configuration: unsupported url scheme `mysql`: expected postgresql+green, postgresql or postgres"
        );
        assert_eq!(
            err("postgres://u@h:abc/d"),
            "invalid configuration: invalid port `abc`: expected a number from 1 to 65535"
        );
        assert_eq!(
            err("postgres://u@h/d?pool_size=zero"),
            "invalid configuration: invalid pool_size `zero`: expected a positive integer"
        );
        assert_eq!(
            err("postgres://u@h/d?pool_timeout=-1"),
            "invalid configuration: invalid pool_timeout `-1`: expected a number of seconds"
        );
        assert_eq!(
            err("postgres://u@h/d?bogus=1"),
            "invalid configuration: unknown setting `bogus`"
        );
        assert_eq!(
            err("postgres://u@h/d?sslmode=maybe"),
            "invalid configuration: invalid sslmode `maybe`: expected disable, allow, prefer, \
             require, verify-ca or verify-full"
        );
        assert_eq!(
            err("postgres://u@h/d?statement_cache=perhaps"),
            "invalid configuration: invalid statement_cache `perhaps`: expected true or false"
        );
        assert_eq!(
            err("postgres://u@h/d?statement_timeout=soon"),
            "invalid configuration: invalid statement_timeout `soon`: expected milliseconds or a number with ms, s or min"
        );
        assert_eq!(
            err("postgres://u@h/d?pool_size"),
            "invalid configuration: invalid url parameter `pool_size`: expected key=value"
        );
        assert_eq!(
            err("postgres://u%zz@h/d"),
            "invalid configuration: invalid percent-encoding in the user name"
        );
        assert_eq!(
            err("postgres://u@h/a/b"),
            "invalid configuration: invalid database name `a/b` in url: it contains `/`"
        );
        assert_eq!(
            err("host=h port"),
            "invalid configuration: invalid setting `port`: expected key=value"
        );
        assert_eq!(
            err("not a url"),
            "invalid configuration: connection string is neither a url (scheme://...) nor key=value pairs"
        );
        assert_eq!(err(""), "invalid configuration: empty connection string");
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
        let e = err("user=u password='s3cret");
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
        let e = err("user=u password=abc s3cret dbname=d");
        assert!(e.contains("after `password`"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = err("user=u password='abc' s3cret='x'");
        assert!(!e.contains("s3cret"), "{e}");
        let c = Config::parse("password=abc port=6000").unwrap();
        assert_eq!((c.password(), c.port()), (Some("abc"), 6000));
    }

    #[test]
    fn a_percent_sign_needs_two_hex_digits() {
        assert_eq!(
            err("postgres://u:%+f@h/d"),
            "invalid configuration: invalid percent-encoding in the password"
        );
    }

    #[test]
    fn to_url_round_trips() {
        for url in [
            "postgresql+green://odm:odm%20t@st@127.0.0.1:5433/odmtests?pool_size=7&pool_timeout=15",
            "postgresql://u:p@[::1]:6000/d?application_name=a%26b&connect_timeout=3&statement_timeout=250\
             &options=-c%20x%3D1&sslmode=disable&pool_timeout=0.5&statement_cache=false",
            "postgres://u@/d?host=/tmp/pg%20dir&port=5439",
            "postgresql://app@db.example.com/app?sslmode=verify-full&sslrootcert=system\
             &sslcert=/etc/odm/client%20cert.pem&sslkey=/etc/odm/client.key&sslnegotiation=direct",
        ] {
            let c = Config::parse(url).unwrap();
            let again = Config::parse(&c.to_url()).unwrap();
            assert_eq!(c, again, "{url} -> {}", c.to_url());
        }
    }

    #[test]
    fn every_sslmode_and_the_tls_files_parse_by_their_libpq_names() {
        for (name, mode) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let c = Config::parse(&format!("host=h sslmode={name}")).unwrap();
            assert_eq!(c.ssl_mode(), mode);
            assert_eq!(mode.requires_tls(), mode >= SslMode::Require);
        }
        let c = Config::parse(
            "host=h sslrootcert=/r.pem sslcert=/c.pem sslkey=/k.pem sslnegotiation=direct",
        )
        .unwrap();
        assert_eq!(c.ssl_root_cert(), Some("/r.pem"));
        assert_eq!(c.ssl_cert(), Some("/c.pem"));
        assert_eq!(c.ssl_key(), Some("/k.pem"));
        assert_eq!(c.ssl_negotiation(), SslNegotiation::Direct);
        let debug = format!("{c:?}");
        assert!(
            debug.contains("/r.pem") && debug.contains("Direct"),
            "{debug}"
        );
        let c = Config::parse("host=h").unwrap();
        assert_eq!(c.ssl_negotiation(), SslNegotiation::Postgres);
        assert_eq!(
            (c.ssl_root_cert(), c.ssl_cert(), c.ssl_key()),
            (None, None, None)
        );
    }

    #[test]
    fn a_bad_sslnegotiation_is_an_error_naming_the_key() {
        assert_eq!(
            err("host=h sslnegotiation=fast"),
            "invalid configuration: invalid sslnegotiation `fast`: expected postgres or direct"
        );
    }

    #[test]
    fn with_dbname_changes_only_the_database() {
        let c = Config::parse("postgres://u:p@h:1/a?pool_size=2").unwrap();
        let d = c.with_dbname("b");
        assert_eq!(d.dbname(), "b");
        assert_eq!(d.pool_size(), 2);
        assert_eq!(d.password(), Some("p"));
    }
}
