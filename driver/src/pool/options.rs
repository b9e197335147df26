//! [`PoolOptions`]: how many connections a [`Pool`](super::Pool) opens,
//! how long callers wait for one, and how long connections live; and
//! [`parse_url`], which reads them from the same database URL as the
//! connection's [`Config`].

use std::time::Duration;

use crate::config::{parse_seconds, Config, Environment};
use crate::error::Error;

/// sqlx's default; see [`PoolOptions::max_size`].
const DEFAULT_MAX_SIZE: usize = 10;
/// SQLAlchemy's and sqlx's default; see [`PoolOptions::timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// HikariCP's default; see [`PoolOptions::max_lifetime`].
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// HikariCP's default; see [`PoolOptions::idle_timeout`].
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// HikariCP's bypass window; see [`PoolOptions::liveness_check_after`].
const DEFAULT_LIVENESS_CHECK_AFTER: Duration = Duration::from_millis(500);

/// The settings of one [`Pool`](super::Pool), built in code
/// (`PoolOptions::new().max_size(4)`) or read from a database URL by
/// [`parse_url`] (`?pool_size=4&pool_timeout=5`). Each setter documents its
/// URL key, its default and why that default.
///
/// ```
/// use std::time::Duration;
/// use green_postgres::pool::PoolOptions;
///
/// let options = PoolOptions::new().max_size(4).timeout(Duration::from_secs(5));
/// assert_eq!(options.get_max_size(), 4);
/// assert_eq!(options.get_idle_timeout(), Some(Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    max_size: usize,
    timeout: Duration,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
    liveness_check_after: Duration,
    max_shared: Option<usize>,
    fail_fast: bool,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions::new()
    }
}

impl PoolOptions {
    /// The defaults.
    pub fn new() -> PoolOptions {
        PoolOptions {
            max_size: DEFAULT_MAX_SIZE,
            timeout: DEFAULT_TIMEOUT,
            max_lifetime: Some(DEFAULT_MAX_LIFETIME),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            liveness_check_after: DEFAULT_LIVENESS_CHECK_AFTER,
            max_shared: None,
            fail_fast: false,
        }
    }

    /// The most connections the pool ever has open, opening ones included
    /// (`pool_size`; default 10, as sqlx). Every PostgreSQL connection is a
    /// server process with its own memory, and a small server is fastest
    /// with few busy backends; 10 covers a busy application's concurrent
    /// transactions, while shared mode needs only a few connections for any
    /// number of tasks. At least 1 (0 is taken as 1).
    pub fn max_size(mut self, max_size: usize) -> PoolOptions {
        self.max_size = max_size.max(1);
        self
    }

    /// The longest an acquire (or a shared statement) takes in total:
    /// queueing, liveness checks, connect backoff and connecting all count
    /// (`pool_timeout`, seconds; default 30 s, as SQLAlchemy and sqlx). Long
    /// enough to ride out a burst, short enough that a leaked connection or
    /// a deadlock surfaces as [`Error::PoolTimeout`] instead of a hang.
    pub fn timeout(mut self, timeout: Duration) -> PoolOptions {
        self.timeout = timeout;
        self
    }

    /// How long a connection lives before the pool closes it, less a random
    /// 0–2.5 % so connections opened together do not reconnect together
    /// (`max_lifetime`, seconds, `0` for ever; default 30 min, as HikariCP).
    /// Gives back server memory that long-lived backends accumulate, and
    /// lets a load balancer or failover move connections. `None` or zero:
    /// for ever.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> PoolOptions {
        self.max_lifetime = lifetime.filter(|d| !d.is_zero());
        self
    }

    /// How long a connection may sit idle before the pool closes it
    /// (`idle_timeout`, seconds, `0` for ever; default 10 min, as HikariCP),
    /// so a quiet application gives its server processes back. `None` or
    /// zero: for ever.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> PoolOptions {
        self.idle_timeout = timeout.filter(|d| !d.is_zero());
        self
    }

    /// How long a connection may sit idle before an acquire checks it with
    /// an empty query first (no URL key; default 500 ms, HikariCP's bypass
    /// window): long enough that a busy pool never pays the round trip,
    /// short enough that a backend killed while idle is caught before the
    /// caller's first statement meets it.
    pub fn liveness_check_after(mut self, idle: Duration) -> PoolOptions {
        self.liveness_check_after = idle;
        self
    }

    /// The most connections that carry shared statements at once
    /// (`pool_max_shared`; default: one per `may` scheduler thread, see
    /// [`green::runtime::settings`], read when the first shared statement
    /// runs; always at most [`max_size`](PoolOptions::max_size)). At least 1
    /// (0 is taken as 1).
    ///
    /// Shared statements are pipelined: a connection carrying many of them
    /// answers a batch per read and per wake-up, while the same statements
    /// spread over more connections each carry a shallow pipeline, costing
    /// more packets, system calls and wake-ups per statement on both the
    /// client and the server. One deep pipeline per scheduler thread keeps
    /// every thread busy at the lowest cost per statement. While fewer
    /// connections than this carry shared statements, a shared statement
    /// takes an idle connection or opens one; at the cap it joins the
    /// least-loaded connection already carrying shared statements.
    ///
    /// The trade-off: a slow statement on a shared connection delays the
    /// statements pipelined behind it, so raise the cap when long shared
    /// reports run beside short statements. Exclusive checkouts
    /// ([`Pool::acquire`](super::Pool::acquire), transactions) are not
    /// capped: they still use the rest of the pool.
    pub fn max_shared(mut self, max_shared: usize) -> PoolOptions {
        self.max_shared = Some(max_shared.max(1));
        self
    }

    /// Fail at once rather than wait behind the connect backoff
    /// (`pool_fail_fast=true`; default false). After a connect failed
    /// (the server is unreachable, or no host of a multi-host URL fits
    /// `target_session_attrs`, as while an HA engine has no writable
    /// primary yet), the pool lets one caller probe again after a delay
    /// growing to 2 s and parks the others meanwhile; a caller whose
    /// `pool_timeout` ends first fails then. With `fail_fast`, a caller
    /// that needs a new connection while the backoff holds connects back
    /// fails at once with a copy of the last connect error (an
    /// [`Error::is_connection_error`] error) instead of parking: a request
    /// with its own deadline answers at once (and can retry by its own
    /// rules) rather than spend its time in the pool. Callers handed an
    /// open connection are not affected, nor is the probe, so the pool
    /// finds a recovered server as soon as without it.
    pub fn fail_fast(mut self, fail_fast: bool) -> PoolOptions {
        self.fail_fast = fail_fast;
        self
    }

    /// See [`PoolOptions::fail_fast`].
    pub fn get_fail_fast(&self) -> bool {
        self.fail_fast
    }

    /// See [`PoolOptions::max_size`].
    pub fn get_max_size(&self) -> usize {
        self.max_size
    }

    /// See [`PoolOptions::timeout`].
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// See [`PoolOptions::max_lifetime`]; `None` = for ever.
    pub fn get_max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }

    /// See [`PoolOptions::idle_timeout`]; `None` = for ever.
    pub fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// See [`PoolOptions::liveness_check_after`].
    pub fn get_liveness_check_after(&self) -> Duration {
        self.liveness_check_after
    }

    /// See [`PoolOptions::max_shared`]; `None` = the default, one per
    /// scheduler thread ([`Pool::max_shared`](super::Pool::max_shared) gives
    /// the value in force).
    pub fn get_max_shared(&self) -> Option<usize> {
        self.max_shared
    }

    /// Applies one URL setting (a key of `pg`'s pool settings).
    fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        match key {
            "pool_size" => {
                self.max_size = match value.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return Err(Error::Config(format!(
                            "invalid pool_size `{value}`: expected a positive integer"
                        )))
                    }
                }
            }
            "pool_max_shared" => {
                self.max_shared = match value.parse::<usize>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        return Err(Error::Config(format!(
                            "invalid pool_max_shared `{value}`: expected a positive integer"
                        )))
                    }
                }
            }
            "pool_timeout" => self.timeout = parse_seconds(key, value)?,
            "pool_fail_fast" => {
                self.fail_fast = match value {
                    "true" | "on" | "1" | "yes" => true,
                    "false" | "off" | "0" | "no" => false,
                    _ => {
                        return Err(Error::Config(format!(
                            "invalid pool_fail_fast `{value}`: expected true or false"
                        )))
                    }
                }
            }
            "max_lifetime" => {
                self.max_lifetime = Some(parse_seconds(key, value)?).filter(|d| !d.is_zero())
            }
            "idle_timeout" => {
                self.idle_timeout = Some(parse_seconds(key, value)?).filter(|d| !d.is_zero())
            }
            _ => return Err(Error::Config(format!("unknown setting `{key}`"))),
        }
        Ok(())
    }

    /// These options as URL parameters (`pool_size=4&pool_timeout=5`),
    /// leaving out those at their defaults; empty when all are.
    pub fn to_url_query(&self) -> String {
        let mut pairs = Vec::new();
        if self.max_size != DEFAULT_MAX_SIZE {
            pairs.push(format!("pool_size={}", self.max_size));
        }
        if let Some(max_shared) = self.max_shared {
            pairs.push(format!("pool_max_shared={max_shared}"));
        }
        if self.timeout != DEFAULT_TIMEOUT {
            pairs.push(format!("pool_timeout={}", seconds(self.timeout)));
        }
        if self.fail_fast {
            pairs.push("pool_fail_fast=true".to_string());
        }
        if self.max_lifetime != Some(DEFAULT_MAX_LIFETIME) {
            let lifetime = self.max_lifetime.unwrap_or_default();
            pairs.push(format!("max_lifetime={}", seconds(lifetime)));
        }
        if self.idle_timeout != Some(DEFAULT_IDLE_TIMEOUT) {
            let timeout = self.idle_timeout.unwrap_or_default();
            pairs.push(format!("idle_timeout={}", seconds(timeout)));
        }
        pairs.join("&")
    }
}

/// Seconds as `pool_timeout` and the lifetimes are read: whole or decimal.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        d.as_secs_f64().to_string()
    }
}

/// Reads a database URL (or libpq `key=value` string) once into the
/// connection's [`Config`] and the pool's [`PoolOptions`]
/// (`pool_size`, `pool_max_shared`, `pool_timeout`, `pool_fail_fast`,
/// `max_lifetime`, `idle_timeout`).
///
/// ```
/// use std::time::Duration;
///
/// let (config, options) = green_postgres::pool::parse_url(
///     "postgresql+green://odm:secret@127.0.0.1:5432/app?pool_size=7&pool_timeout=15",
/// )?;
/// assert_eq!(config.dbname(), "app");
/// assert_eq!(options.get_max_size(), 7);
/// assert_eq!(options.get_timeout(), Duration::from_secs(15));
/// # Ok::<(), green_postgres::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] naming the bad setting, never the password.
pub fn parse_url(url: &str) -> Result<(Config, PoolOptions), Error> {
    pool_options_of(Config::parse_with_pool_settings(url)?)
}

/// Parses as [`parse_url`], with libpq's environment variables and
/// password file filling what the URL leaves out (see
/// [`Config::parse_with_env`]).
///
/// # Errors
///
/// [`Error::Config`] naming the bad setting or variable, never the password.
pub fn parse_url_with_env(url: &str, env: &Environment) -> Result<(Config, PoolOptions), Error> {
    pool_options_of(Config::parse_with_env_and_pool_settings(url, env)?)
}

/// The pool's settings read from those a connection string carried.
fn pool_options_of(
    (config, pool_settings): (Config, Vec<(String, String)>),
) -> Result<(Config, PoolOptions), Error> {
    let mut options = PoolOptions::new();
    for (key, value) in &pool_settings {
        options.set(key, value)?;
    }
    Ok((config, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        parse_url(url).unwrap_err().to_string()
    }

    #[test]
    fn pool_fail_fast_is_read_from_the_url_and_written_back() {
        let (_, options) = parse_url("postgres://u@h/d?pool_fail_fast=true").unwrap();
        assert!(options.get_fail_fast());
        assert_eq!(options.to_url_query(), "pool_fail_fast=true");
        let (_, options) = parse_url("postgres://u@h/d?pool_fail_fast=off").unwrap();
        assert!(!options.get_fail_fast());
        assert!(err("postgres://u@h/d?pool_fail_fast=maybe").contains("pool_fail_fast"));
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let (_, options) = parse_url("postgres://u@h/d").unwrap();
        assert_eq!(options, PoolOptions::new());
        assert_eq!(options.get_max_size(), 10);
        assert_eq!(options.get_timeout(), Duration::from_secs(30));
        assert_eq!(options.get_max_lifetime(), Some(Duration::from_secs(1800)));
        assert_eq!(options.get_idle_timeout(), Some(Duration::from_secs(600)));
        assert_eq!(
            options.get_liveness_check_after(),
            Duration::from_millis(500)
        );
        assert_eq!(options.to_url_query(), "");
    }

    #[test]
    fn one_parse_of_a_url_fills_the_config_and_the_pool_options() {
        let (config, options) = parse_url(
            "postgresql+green://odm:odmtest@127.0.0.1:5433/odmtests?pool_size=7\
             &application_name=a&pool_timeout=0.25&max_lifetime=0&idle_timeout=0.5",
        )
        .unwrap();
        assert_eq!(
            (config.port(), config.application_name()),
            (5433, Some("a"))
        );
        assert_eq!(
            options,
            PoolOptions::new()
                .max_size(7)
                .timeout(Duration::from_millis(250))
                .max_lifetime(None)
                .idle_timeout(Some(Duration::from_millis(500)))
        );
        let (_, again) =
            parse_url(&format!("postgres://u@h/d?{}", options.to_url_query())).unwrap();
        assert_eq!(again, options);
    }

    #[test]
    fn the_key_value_form_carries_pool_settings_too() {
        let (config, options) = parse_url("host=/tmp pool_size=3 dbname=x").unwrap();
        assert_eq!((config.dbname(), options.get_max_size()), ("x", 3));
    }

    #[test]
    fn bad_pool_values_are_errors_naming_the_key() {
        assert_eq!(
            err("postgres://u@h/d?pool_size=zero"),
            "invalid configuration: invalid pool_size `zero`: expected a positive integer"
        );
        assert_eq!(
            err("postgres://u@h/d?pool_size=0"),
            "invalid configuration: invalid pool_size `0`: expected a positive integer"
        );
        assert_eq!(
            err("postgres://u@h/d?pool_timeout=-1"),
            "invalid configuration: invalid pool_timeout `-1`: expected a number of seconds"
        );
        assert_eq!(
            err("postgres://u@h/d?idle_timeout=soon"),
            "invalid configuration: invalid idle_timeout `soon`: expected a number of seconds"
        );
        assert_eq!(
            err("postgres://u@h/d?bogus=1"),
            "invalid configuration: unknown setting `bogus`"
        );
    }

    #[test]
    fn pool_max_shared_is_read_and_printed_back() {
        let (_, options) = parse_url("postgres://u@h/d?pool_size=8&pool_max_shared=2").unwrap();
        assert_eq!(options, PoolOptions::new().max_size(8).max_shared(2));
        assert_eq!(options.get_max_shared(), Some(2));
        assert_eq!(options.to_url_query(), "pool_size=8&pool_max_shared=2");
        let (_, again) =
            parse_url(&format!("postgres://u@h/d?{}", options.to_url_query())).unwrap();
        assert_eq!(again, options);
        assert_eq!(PoolOptions::new().get_max_shared(), None);
        assert_eq!(PoolOptions::new().max_shared(0).get_max_shared(), Some(1));
    }

    #[test]
    fn a_bad_pool_max_shared_is_an_error_naming_the_key() {
        for bad in ["0", "abc", "-1", ""] {
            assert_eq!(
                err(&format!("postgres://u@h/d?pool_max_shared={bad}")),
                format!(
                    "invalid configuration: invalid pool_max_shared `{bad}`: \
                     expected a positive integer"
                )
            );
        }
    }

    #[test]
    fn a_zero_max_size_is_taken_as_one() {
        assert_eq!(PoolOptions::new().max_size(0).get_max_size(), 1);
    }
}
