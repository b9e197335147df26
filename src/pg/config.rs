//! Connection settings: parsing of database URLs and libpq `key=value`
//! strings into a [`Config`], and back to a URL.
//!
//! Parsing does no I/O. Every error names the offending part of the input
//! and never contains the password.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

const DEFAULT_PORT: u16 = 5432;
const DEFAULT_POOL_SIZE: usize = 10;
const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(30);
const SCHEMES: [&str; 3] = ["postgresql+green", "postgresql", "postgres"];

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address, reached over TCP.
    Tcp(String),
    /// A directory holding the server's unix socket (`.s.PGSQL.<port>`).
    Unix(PathBuf),
}

/// Whether to ask the server for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never ask for TLS.
    Disable,
    /// Ask for TLS and continue in plain text when it cannot be had
    /// (this build speaks no TLS, so the connection is always plain).
    Prefer,
    /// Insist on TLS: this build refuses with [`Error::TlsUnsupported`].
    Require,
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
        }
    }
}

/// Settings of a connection (and of the pool built on it).
///
/// Built from a URL (`postgresql+green://`, `postgresql://`, `postgres://`)
/// or a libpq `key=value` string. `Debug` and every error redact the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    scheme: &'static str,
    user: String,
    password: Option<String>,
    host: Host,
    port: u16,
    dbname: String,
    application_name: Option<String>,
    connect_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    options: Option<String>,
    ssl_mode: SslMode,
    pool_size: usize,
    pool_timeout: Duration,
    statement_cache: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("options", &self.options)
            .field("ssl_mode", &self.ssl_mode)
            .field("pool_size", &self.pool_size)
            .field("pool_timeout", &self.pool_timeout)
            .field("statement_cache", &self.statement_cache)
            .finish()
    }
}

impl FromStr for Config {
    type Err = Error;

    fn from_str(s: &str) -> Result<Config, Error> {
        Config::parse(s)
    }
}

impl Config {
    fn empty(scheme: &'static str) -> Config {
        Config {
            scheme,
            user: String::new(),
            password: None,
            host: Host::Tcp("localhost".to_owned()),
            port: DEFAULT_PORT,
            dbname: String::new(),
            application_name: None,
            connect_timeout: None,
            statement_timeout: None,
            options: None,
            ssl_mode: SslMode::Prefer,
            pool_size: DEFAULT_POOL_SIZE,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
            statement_cache: true,
        }
    }

    /// Parses a URL (`postgresql+green://user:pass@host:port/db?key=value`,
    /// also `postgresql://` and `postgres://`) or a libpq `key=value` string.
    ///
    /// The user defaults to `postgres`, the database to the user name, the
    /// host to `localhost` and the port to 5432.
    pub fn parse(s: &str) -> Result<Config, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(config_error("empty connection string"));
        }
        let mut config = match s.split_once("://") {
            Some((scheme, rest)) => parse_url(scheme, rest)?,
            None if s.contains('=') => parse_key_values(s)?,
            None => {
                return Err(config_error(
                    "connection string is neither a url (scheme://...) nor key=value pairs",
                ))
            }
        };
        if config.user.is_empty() {
            config.user = "postgres".to_owned();
        }
        if config.dbname.is_empty() {
            config.dbname = config.user.clone();
        }
        Ok(config)
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password, if one was given.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The server's port (also used to name the unix socket file).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the server listens.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The `application_name` reported to the server.
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// How long to wait for the TCP connection to open.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The server-side `statement_timeout`, sent as a startup option.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// Command-line options sent to the server (libpq's `options`).
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// The TLS mode.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The maximum number of pooled connections (default 10).
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// How long a pool acquire waits before giving up (default 30 s).
    pub fn pool_timeout(&self) -> Duration {
        self.pool_timeout
    }

    /// Whether prepared statements are cached per connection (default
    /// true; `statement_cache=false` for PgBouncer in transaction mode).
    pub fn statement_cache(&self) -> bool {
        self.statement_cache
    }

    /// The same settings for another database.
    pub fn with_dbname(&self, dbname: &str) -> Config {
        Config {
            dbname: dbname.to_owned(),
            ..self.clone()
        }
    }

    /// This configuration as a URL that [`Config::parse`] turns back into an
    /// equal `Config`. It contains the password: do not log it.
    pub fn to_url(&self) -> String {
        let mut url = format!("{}://", self.scheme);
        url.push_str(&percent_encode(&self.user));
        if let Some(password) = &self.password {
            url.push(':');
            url.push_str(&percent_encode(password));
        }
        url.push('@');
        let mut query: Vec<(&str, String)> = Vec::new();
        match &self.host {
            Host::Tcp(host) if host.contains(':') => url.push_str(&format!("[{host}]")),
            Host::Tcp(host) => url.push_str(&percent_encode(host)),
            Host::Unix(dir) => query.push(("host", dir.to_string_lossy().into_owned())),
        }
        url.push_str(&format!(":{}/{}", self.port, percent_encode(&self.dbname)));
        if let Some(name) = &self.application_name {
            query.push(("application_name", name.clone()));
        }
        if let Some(timeout) = self.connect_timeout {
            query.push(("connect_timeout", format_seconds(timeout)));
        }
        if let Some(timeout) = self.statement_timeout {
            query.push(("statement_timeout", timeout.as_millis().to_string()));
        }
        if let Some(options) = &self.options {
            query.push(("options", options.clone()));
        }
        if self.ssl_mode != SslMode::Prefer {
            query.push(("sslmode", self.ssl_mode.as_str().to_owned()));
        }
        if self.pool_size != DEFAULT_POOL_SIZE {
            query.push(("pool_size", self.pool_size.to_string()));
        }
        if self.pool_timeout != DEFAULT_POOL_TIMEOUT {
            query.push(("pool_timeout", format_seconds(self.pool_timeout)));
        }
        if !self.statement_cache {
            query.push(("statement_cache", "false".to_owned()));
        }
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(&percent_encode(value));
        }
        url
    }

    /// Applies one setting by its libpq / URL name.
    fn set(&mut self, key: &str, value: String) -> Result<(), Error> {
        match key {
            "host" => self.host = parse_host(&value)?,
            "port" => self.port = parse_port(&value)?,
            "dbname" => self.dbname = value,
            "user" => self.user = value,
            "password" => self.password = Some(value),
            "application_name" => self.application_name = Some(value),
            "connect_timeout" => {
                self.connect_timeout = Some(parse_seconds(key, &value)?).filter(|d| !d.is_zero())
            }
            "statement_timeout" => self.statement_timeout = Some(parse_millis(key, &value)?),
            "options" => self.options = Some(value),
            "sslmode" => {
                self.ssl_mode = match value.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" | "verify-ca" | "verify-full" => SslMode::Require,
                    _ => {
                        return Err(config_error(&format!(
                            "invalid sslmode `{value}`: expected disable, prefer or require"
                        )))
                    }
                }
            }
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
            "statement_cache" => {
                self.statement_cache = match value.to_ascii_lowercase().as_str() {
                    "true" | "on" | "yes" | "1" => true,
                    "false" | "off" | "no" | "0" => false,
                    _ => {
                        return Err(config_error(&format!(
                            "invalid statement_cache `{value}`: expected true or false"
                        )))
                    }
                }
            }
            _ => return Err(config_error(&format!("unknown setting `{key}`"))),
        }
        Ok(())
    }
}

fn config_error(message: &str) -> Error {
    Error::Config(message.to_owned())
}

fn parse_url(scheme: &str, rest: &str) -> Result<Config, Error> {
    let scheme = SCHEMES
        .iter()
        .find(|known| **known == scheme)
        .ok_or_else(|| {
            config_error(&format!(
                "unsupported url scheme `{scheme}`: expected postgresql+green, postgresql or postgres"
            ))
        })?;
    let mut config = Config::empty(scheme);
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path),
        None => (rest, ""),
    };
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            config.user = percent_decode(user, "user")?;
            if let Some(password) = password {
                config.password = Some(percent_decode(password, "password")?);
            }
            host_port
        }
        None => authority,
    };
    parse_host_port(&mut config, host_port)?;
    if path.contains('/') {
        return Err(config_error(&format!(
            "invalid database name `{path}` in url: it contains `/`"
        )));
    }
    config.dbname = percent_decode(path, "database name")?;
    if let Some(query) = query {
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                config_error(&format!(
                    "invalid url parameter `{pair}`: expected key=value"
                ))
            })?;
            let key = percent_decode(key, "parameter name")?;
            let value = if key == "password" {
                percent_decode(value, "password")?
            } else {
                percent_decode(value, &key)?
            };
            config.set(&key, value)?;
        }
    }
    Ok(config)
}

fn parse_host_port(config: &mut Config, host_port: &str) -> Result<(), Error> {
    if host_port.is_empty() {
        return Ok(());
    }
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| {
            config_error(&format!("invalid host `{host_port}` in url: unclosed `[`"))
        })?;
        match after {
            "" => (host.to_owned(), None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host.to_owned(), Some(port)),
                None => {
                    return Err(config_error(&format!(
                        "invalid host `{host_port}` in url: unexpected text after `]`"
                    )))
                }
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (percent_decode(host, "host")?, Some(port)),
            None => (percent_decode(host_port, "host")?, None),
        }
    };
    if !host.is_empty() {
        config.host = parse_host(&host)?;
    }
    if let Some(port) = port {
        config.port = parse_port(port)?;
    }
    Ok(())
}

fn parse_host(host: &str) -> Result<Host, Error> {
    if host.is_empty() {
        return Err(config_error("empty host"));
    }
    if host.starts_with('/') {
        Ok(Host::Unix(Path::new(host).to_path_buf()))
    } else if host.contains('/') {
        Err(config_error(&format!(
            "invalid host `{host}`: a unix socket directory must be an absolute path"
        )))
    } else {
        Ok(Host::Tcp(host.to_owned()))
    }
}

fn parse_port(port: &str) -> Result<u16, Error> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(config_error(&format!(
            "invalid port `{port}`: expected a number from 1 to 65535"
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

fn format_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        d.as_secs_f64().to_string()
    }
}

/// Decodes `%XX` escapes. `what` names the part for the error message; the
/// offending text is quoted only when it is not the password.
fn percent_decode(s: &str, what: &str) -> Result<String, Error> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bad = || {
        if what == "password" {
            config_error("invalid percent-encoding in the password")
        } else {
            config_error(&format!("invalid percent-encoding in {what} `{s}`"))
        }
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
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

fn percent_encode(s: &str) -> String {
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

/// libpq's `key=value key='quoted \' value'` form.
fn parse_key_values(s: &str) -> Result<Config, Error> {
    let mut config = Config::empty("postgresql+green");
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(config_error(&format!(
                "invalid setting `{key}`: expected key=value"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
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
        config.set(&key, value)?;
    }
    Ok(config)
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
            "invalid configuration: invalid sslmode `maybe`: expected disable, prefer or require"
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
            "invalid configuration: invalid percent-encoding in user `u%zz`"
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
    fn to_url_round_trips() {
        for url in [
            "postgresql+green://odm:odm%20t@st@127.0.0.1:5433/odmtests?pool_size=7&pool_timeout=15",
            "postgresql://u:p@[::1]:6000/d?application_name=a%26b&connect_timeout=3&statement_timeout=250\
             &options=-c%20x%3D1&sslmode=disable&pool_timeout=0.5&statement_cache=false",
            "postgres://u@/d?host=/tmp/pg%20dir&port=5439",
        ] {
            let c = Config::parse(url).unwrap();
            let again = Config::parse(&c.to_url()).unwrap();
            assert_eq!(c, again, "{url} -> {}", c.to_url());
        }
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
