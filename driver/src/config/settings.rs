//! The key table: every setting a connection string can carry, by its
//! libpq / URL name, and how its value is read. The URL form
//! ([`super::url`]) and the `key=value` form ([`super::key_values`]) both
//! hand each `key=value` to [`Parsed::set`].
//!
//! A few keys belong to the connection pool, not to the connection
//! ([`POOL_SETTINGS`]): they are collected unread for the pool, which
//! checks their values (`crate::pool::PoolOptions`).

use std::time::Duration;

use super::config::config_error;
use super::defaults::check_max_message_bytes;
use super::host_selection::{parse_host_list, parse_port_list};
use super::percent::Shown;
use super::{
    ChannelBindingMode, Config, Host, LoadBalanceHosts, RequireAuth, SslMode, SslNegotiation,
    TargetSessionAttrs,
};
use crate::error::Error;

/// The keys the connection pool reads from the same connection string
/// (`pool_size`, `pool_max_shared`, `pool_timeout`, `pool_fail_fast`,
/// `max_lifetime`, `idle_timeout`).
pub(crate) const POOL_SETTINGS: [&str; 6] = [
    "pool_size",
    "pool_max_shared",
    "pool_timeout",
    "pool_fail_fast",
    "max_lifetime",
    "idle_timeout",
];

/// A connection string read so far: the connection's settings, and the
/// pool's settings in the order given, still as text.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) config: Config,
    pub(super) pool_settings: Vec<(String, String)>,
}

impl Parsed {
    pub(super) fn new(config: Config) -> Parsed {
        Parsed {
            config,
            pool_settings: Vec::new(),
        }
    }

    /// Applies one setting by its libpq / URL name.
    pub(super) fn set(&mut self, key: &str, value: String) -> Result<(), Error> {
        if POOL_SETTINGS.contains(&key) {
            self.pool_settings.push((key.to_owned(), value));
            Ok(())
        } else {
            self.config.set(key, value)
        }
    }
}

impl Config {
    /// Applies one connection setting by its libpq / URL name.
    pub(super) fn set(&mut self, key: &str, value: String) -> Result<(), Error> {
        match key {
            "host" => self.hosts = parse_host_list(&value, Shown::Quoted)?,
            "port" => self.ports = parse_port_list(&value, Shown::Quoted)?,
            "target_session_attrs" => {
                self.target_session_attrs = TargetSessionAttrs::parse(&value)?
            }
            "load_balance_hosts" => self.load_balance_hosts = LoadBalanceHosts::parse(&value)?,
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
            "keepalives_count" => self.keepalives_count = parse_keepalives_count(&value)?,
            "tcp_user_timeout" => {
                self.tcp_user_timeout = Some(parse_millis(key, &value)?).filter(|d| !d.is_zero())
            }
            "statement_cache" => self.statement_cache = parse_bool(key, &value)?,
            "coalesce_reads" => self.coalesce_reads = parse_bool(key, &value)?,
            "statement_cache_capacity" => self.statement_cache_capacity = parse_capacity(&value)?,
            "max_message_bytes" => {
                self.max_message_bytes = match value.trim().parse::<usize>() {
                    Ok(bytes) => check_max_message_bytes(bytes)?,
                    Err(_) => {
                        return Err(config_error(&format!(
                            "invalid max_message_bytes `{value}`: expected a whole number of bytes"
                        )))
                    }
                }
            }
            "options" => self.options = Some(value),
            "sslmode" => self.ssl_mode = SslMode::parse(&value)?,
            "sslrootcert" => self.ssl_root_cert = Some(value).filter(|v| !v.is_empty()),
            "sslcert" => self.ssl_cert = Some(value).filter(|v| !v.is_empty()),
            "sslkey" => self.ssl_key = Some(value).filter(|v| !v.is_empty()),
            "sslnegotiation" => self.ssl_negotiation = SslNegotiation::parse(&value)?,
            "channel_binding" => self.channel_binding = ChannelBindingMode::parse(&value)?,
            "require_auth" => self.require_auth = RequireAuth::parse(&value)?,
            _ => return Err(config_error(&format!("unknown setting `{key}`"))),
        }
        Ok(())
    }
}

pub(super) fn keepalives_count_error(value: &str) -> Error {
    config_error(&format!(
        "invalid keepalives_count `{value}`: expected a number from 1 to 127"
    ))
}

/// `keepalives_count`: 1 to 127 probes, as the kernel allows.
fn parse_keepalives_count(value: &str) -> Result<u32, Error> {
    match value.parse::<u32>() {
        Ok(n) if (1..=127).contains(&n) => Ok(n),
        _ => Err(keepalives_count_error(value)),
    }
}

/// `statement_cache_capacity`: a whole number of statements.
fn parse_capacity(value: &str) -> Result<usize, Error> {
    value.parse::<usize>().map_err(|_| {
        config_error(&format!(
            "invalid statement_cache_capacity `{value}`: expected a whole number"
        ))
    })
}

pub(super) fn parse_host(host: &str, shown: Shown) -> Result<Host, Error> {
    if host.is_empty() {
        return Err(config_error("empty host"));
    }
    if host.starts_with('/') {
        Ok(Host::Unix(std::path::Path::new(host).to_path_buf()))
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

/// The range the kernel's keepalive settings accept, in whole seconds.
pub(super) const KEEPALIVE_SECONDS: std::ops::RangeInclusive<u64> = 1..=32_767;

/// A whole number of seconds in [`KEEPALIVE_SECONDS`].
fn parse_whole_seconds(key: &str, value: &str) -> Result<Duration, Error> {
    match value.parse::<u64>() {
        Ok(s) if KEEPALIVE_SECONDS.contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(whole_seconds_error(key, value)),
    }
}

pub(super) fn whole_seconds_error(key: &str, value: &str) -> Error {
    config_error(&format!(
        "invalid {key} `{value}`: expected whole seconds from 1 to 32767"
    ))
}

/// Seconds, integer or decimal (`30`, `0.5`).
pub(crate) fn parse_seconds(key: &str, value: &str) -> Result<Duration, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply_when_parts_are_missing() {
        let c = Config::parse("postgres://").unwrap();
        assert_eq!(c.user(), "postgres");
        assert_eq!(c.dbname(), "postgres");
        assert_eq!(c.port(), 5432);
        assert_eq!(c.host(), &Host::Tcp("localhost".into()));
        assert_eq!(c.password(), None);
        let c = Config::parse("postgresql://alice@db").unwrap();
        assert_eq!(c.dbname(), "alice");
    }

    #[test]
    fn every_setting_parses() {
        let c = Config::parse(
            "postgresql://u:p@h/d?application_name=my%20app&connect_timeout=2.5&statement_timeout=1500\
             &options=-c%20search_path%3Dx&sslmode=disable&statement_cache=false",
        )
        .unwrap();
        assert_eq!(c.application_name(), Some("my app"));
        assert_eq!(c.connect_timeout(), Some(Duration::from_millis(2500)));
        assert_eq!(c.statement_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(c.options(), Some("-c search_path=x"));
        assert_eq!(c.ssl_mode(), SslMode::Disable);
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
    }

    #[test]
    fn reliability_settings_parse_and_round_trip() {
        let url = "postgres://u@h/d?connect_timeout=0&query_timeout=2000&keepalives=0\
                   &keepalives_idle=5&keepalives_interval=2&keepalives_count=3&tcp_user_timeout=10000\
                   &statement_cache_capacity=16";
        let c = Config::parse(url).unwrap();
        assert_eq!(c.connect_timeout(), None);
        assert_eq!(c.query_timeout(), Some(Duration::from_secs(2)));
        assert!(!c.keepalives());
        assert_eq!(c.keepalives_idle(), Duration::from_secs(5));
        assert_eq!(c.keepalives_interval(), Duration::from_secs(2));
        assert_eq!(c.keepalives_count(), 3);
        assert_eq!(c.tcp_user_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(c.statement_cache_capacity(), 16);
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
    fn bad_input_errors_name_the_bad_part() {
        assert_eq!(
            err("mysql://u@h/d"),
            "invalid configuration: unsupported url scheme `mysql`: expected postgresql+green, postgresql or postgres"
        );
        assert_eq!(
            err("postgres://u@h:abc/d"),
            "invalid configuration: invalid port `abc`: expected a number from 1 to 65535"
        );
        assert!(
            Config::parse("postgres://u@h/d?pool_size=7").is_ok(),
            "pool settings are the pool's, and accepted"
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
            err("postgres://u@h/d?application_name"),
            "invalid configuration: invalid url parameter `application_name`: expected key=value"
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
        let c = Config::parse("postgres://u:p@h:1/a?application_name=x").unwrap();
        let d = c.with_dbname("b");
        assert_eq!(d.dbname(), "b");
        assert_eq!(d.application_name(), Some("x"));
        assert_eq!(d.password(), Some("p"));
    }

    #[test]
    fn pool_settings_are_collected_unread_for_the_pool() {
        let (config, pool) = Config::parse_with_pool_settings(
            "postgres://u@h/d?pool_size=zero&application_name=a&idle_timeout=5",
        )
        .unwrap();
        assert_eq!(config.application_name(), Some("a"));
        assert_eq!(
            pool,
            [
                ("pool_size".to_owned(), "zero".to_owned()),
                ("idle_timeout".to_owned(), "5".to_owned())
            ]
        );
    }
}
