//! [`Config`]: the settings of a connection, and [`Host`], where the
//! server listens.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::defaults::{check_max_message_bytes, default_config, DEFAULT_PORT};
use super::{
    ChannelBindingMode, ConfigBuilder, Environment, LoadBalanceHosts, RequireAuth, SslMode,
    SslNegotiation, TargetSessionAttrs,
};
use crate::error::Error;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address, reached over TCP.
    Tcp(String),
    /// A directory holding the server's unix socket (`.s.PGSQL.<port>`).
    Unix(PathBuf),
}

/// Settings of one connection.
///
/// Built with [`Config::builder`], or parsed from a URL
/// (`postgresql+green://`, `postgresql://`, `postgres://`) or a libpq
/// `key=value` string. `Debug` and every error redact the password. The
/// pool's settings (`pool_size`, `pool_max_shared`, `pool_timeout`,
/// `max_lifetime`, `idle_timeout`) are not part of it: see
/// [`PoolOptions`](crate::pool::PoolOptions), which
/// [`pool::parse_url`](crate::pool::parse_url) fills from the same URL.
///
/// ```
/// use std::time::Duration;
/// use green_postgres::Config;
///
/// let config = Config::builder()
///     .host("db.example.com")
///     .user("app")
///     .password("s3cret")
///     .dbname("app")
///     .connect_timeout(Some(Duration::from_secs(3)))
///     .build()?;
/// assert_eq!(config.port(), 5432);
/// # Ok::<(), green_postgres::Error>(())
/// ```
///
/// # TLS
///
/// `sslmode` ([`SslMode`], default `prefer`), `sslrootcert` (a PEM file or
/// `system`), `sslcert` / `sslkey` (a client certificate) and
/// `sslnegotiation` ([`SslNegotiation`]) have libpq's names and meaning.
/// Only `verify-full` checks that the certificate was issued for the host
/// connected to; for a managed service:
///
/// ```
/// use green_postgres::{Config, SslMode};
///
/// let config = Config::parse(
///     "postgresql://app:s3cret@db.example.com:5432/app?sslmode=verify-full&sslrootcert=system",
/// )?;
/// assert_eq!(config.ssl_mode(), SslMode::VerifyFull);
/// assert_eq!(config.ssl_root_cert(), Some("system"));
/// # Ok::<(), green_postgres::Error>(())
/// ```
///
/// Over a unix socket TLS is never used, whatever `sslmode` says (as
/// libpq). TLS failures are [`Error::Tls`](crate::Error::Tls).
///
/// # Several hosts
///
/// As in libpq, a URL or `host=` may list several servers, tried in turn
/// until one accepts and satisfies `target_session_attrs`
/// ([`TargetSessionAttrs`]); `port=` gives one port for all or one per host:
///
/// ```
/// use green_postgres::{Config, Host, TargetSessionAttrs};
///
/// let config = Config::parse(
///     "postgresql://app:s3cret@db1:5432,db2:5433/app?target_session_attrs=read-write",
/// )?;
/// assert_eq!(
///     config.hosts(),
///     vec![(Host::Tcp("db1".into()), 5432), (Host::Tcp("db2".into()), 5433)]
/// );
/// assert_eq!(config.target_session_attrs(), TargetSessionAttrs::ReadWrite);
/// # Ok::<(), green_postgres::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub(super) scheme: &'static str,
    pub(super) user: String,
    pub(super) password: Option<String>,
    /// Never empty.
    pub(super) hosts: Vec<Host>,
    /// None (the default port for every host), one for all, or one per host.
    pub(super) ports: Vec<u16>,
    pub(super) target_session_attrs: TargetSessionAttrs,
    pub(super) load_balance_hosts: LoadBalanceHosts,
    pub(super) dbname: String,
    pub(super) application_name: Option<String>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) statement_timeout: Option<Duration>,
    pub(super) query_timeout: Option<Duration>,
    pub(super) slow_statement: Option<Duration>,
    pub(super) keepalives: bool,
    pub(super) keepalives_idle: Duration,
    pub(super) keepalives_interval: Duration,
    pub(super) keepalives_count: u32,
    pub(super) tcp_user_timeout: Option<Duration>,
    pub(super) options: Option<String>,
    pub(super) ssl_mode: SslMode,
    pub(super) channel_binding: ChannelBindingMode,
    pub(super) require_auth: Option<RequireAuth>,
    pub(super) ssl_root_cert: Option<String>,
    pub(super) ssl_cert: Option<String>,
    pub(super) ssl_key: Option<String>,
    pub(super) ssl_negotiation: SslNegotiation,
    pub(super) statement_cache: bool,
    pub(super) coalesce_reads: bool,
    pub(super) statement_cache_capacity: usize,
    pub(super) max_message_bytes: usize,
    /// Passwords found in the password file for each host, in the order
    /// of `hosts`, used for a host when no password was given (see
    /// `passfile`); empty when none was looked up.
    pub(super) passfile_passwords: Vec<Option<String>>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("load_balance_hosts", &self.load_balance_hosts)
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("slow_statement", &self.slow_statement)
            .field("keepalives", &self.keepalives)
            .field("keepalives_idle", &self.keepalives_idle)
            .field("keepalives_interval", &self.keepalives_interval)
            .field("keepalives_count", &self.keepalives_count)
            .field("tcp_user_timeout", &self.tcp_user_timeout)
            .field("options", &self.options)
            .field("ssl_mode", &self.ssl_mode)
            .field("channel_binding", &self.channel_binding)
            .field("require_auth", &self.require_auth)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("ssl_negotiation", &self.ssl_negotiation)
            .field("statement_cache", &self.statement_cache)
            .field("coalesce_reads", &self.coalesce_reads)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("max_message_bytes", &self.max_message_bytes)
            .field(
                "passfile_passwords",
                &self
                    .passfile_passwords
                    .iter()
                    .map(|found| found.as_ref().map(|_| "<redacted>"))
                    .collect::<Vec<_>>(),
            )
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
    /// A builder starting from the defaults (user `postgres`, host
    /// `localhost`, port 5432, database = the user name).
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// Parses a URL (`postgresql+green://user:pass@host:port/db?key=value`,
    /// also `postgresql://` and `postgres://`) or a libpq `key=value` string.
    ///
    /// The user defaults to `postgres`, the database to the user name, the
    /// host to `localhost` and the port to 5432.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the bad part (never the password).
    ///
    /// Pool settings (`pool_size`, `pool_timeout`, `max_lifetime`,
    /// `idle_timeout`, ...) are accepted, so one URL serves both the driver
    /// and the pool, but they are not part of a connection's `Config`: the
    /// pool reads (and checks) them with
    /// [`pool::parse_url`](crate::pool::parse_url), as
    /// [`Pool::from_url`](crate::Pool::from_url), `Engine::new` and
    /// `Mapper::new` do.
    pub fn parse(s: &str) -> Result<Config, Error> {
        Config::parse_with_pool_settings(s).map(|(config, _pool_settings)| config)
    }

    /// Parses as [`Config::parse`], also returning the pool's settings
    /// (`settings::POOL_SETTINGS`) in the order given, their values unread.
    pub(crate) fn parse_with_pool_settings(
        s: &str,
    ) -> Result<(Config, Vec<(String, String)>), Error> {
        Config::parse_over(default_config("postgresql+green"), s)
    }

    /// Parses `s` over `base`: what `s` leaves out keeps its value in
    /// `base` (the defaults, or what libpq's environment variables gave).
    pub(super) fn parse_over(
        base: Config,
        s: &str,
    ) -> Result<(Config, Vec<(String, String)>), Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(config_error("empty connection string"));
        }
        let parsed = match s.split_once("://") {
            Some((scheme, rest)) => super::url::parse_url(base, scheme, rest)?,
            None if s.contains('=') => super::key_values::parse_key_values(base, s)?,
            None => {
                return Err(config_error(
                    "connection string is neither a url (scheme://...) nor key=value pairs",
                ))
            }
        };
        let mut config = parsed.config;
        config.fill_default_names();
        config.fit_ports_to_hosts()?;
        Ok((config, parsed.pool_settings))
    }

    /// The user `postgres` when none was given, the database named as the
    /// user when none was given (libpq's rules).
    pub(super) fn fill_default_names(&mut self) {
        if self.user.is_empty() {
            self.user = "postgres".to_owned();
        }
        if self.dbname.is_empty() {
            self.dbname = self.user.clone();
        }
    }

    /// Parses a URL or `key=value` string as [`Config::parse`] does, with
    /// libpq's environment filling what it leaves out: each `PG*` variable
    /// of [`Environment`] gives its setting unless the string gives it
    /// (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`,
    /// `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGSSLMODE`, `PGOPTIONS`,
    /// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGSSLNEGOTIATION`,
    /// `PGCHANNELBINDING`, `PGREQUIREAUTH`, `PGTARGETSESSIONATTRS`,
    /// `PGLOADBALANCEHOSTS`), and when no password was given at all the
    /// password file (`PGPASSFILE`, else `$HOME/.pgpass`) is searched for
    /// each host, as libpq does. An empty string means the environment
    /// alone (as `psql` without arguments).
    ///
    /// Unlike libpq, the user still defaults to `postgres` (not the
    /// operating system's user name) and the host to `localhost`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the bad setting; a bad variable's error
    /// names the variable (never a password).
    pub fn parse_with_env(s: &str, env: &Environment) -> Result<Config, Error> {
        Config::parse_with_env_and_pool_settings(s, env).map(|(config, _)| config)
    }

    /// The configuration of the environment alone: as
    /// [`Config::parse_with_env`] with an empty connection string.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the bad variable.
    pub fn from_env(env: &Environment) -> Result<Config, Error> {
        Config::parse_with_env("", env)
    }

    /// This configuration as a URL that [`Config::parse`] turns back into an
    /// equal `Config`; settings at their defaults are left out. It contains
    /// the password: do not log it.
    pub fn to_url(&self) -> String {
        self.write_url()
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

    /// The first host's port (also used to name the unix socket file).
    pub fn port(&self) -> u16 {
        self.ports.first().copied().unwrap_or(DEFAULT_PORT)
    }

    /// Where the server listens: the first host of [`Config::hosts`].
    pub fn host(&self) -> &Host {
        &self.hosts[0]
    }

    /// Every host with its port, in the order given
    /// (`postgresql://h1:5432,h2:5433/db` or `host=h1,h2 port=5432,5433`).
    /// A connect tries them in this order (shuffled under
    /// `load_balance_hosts=random`) until one accepts and satisfies
    /// [`Config::target_session_attrs`].
    pub fn hosts(&self) -> Vec<(Host, u16)> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = match self.ports.len() {
                    0 => DEFAULT_PORT,
                    1 => self.ports[0],
                    _ => self.ports[i],
                };
                (host.clone(), port)
            })
            .collect()
    }

    /// Which servers a connection may stay on (`target_session_attrs`,
    /// default `any`).
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs
    }

    /// In which order the hosts are tried (`load_balance_hosts`, default
    /// `disable`: in the order given).
    pub fn load_balance_hosts(&self) -> LoadBalanceHosts {
        self.load_balance_hosts
    }

    /// The same settings for one host only, with its port.
    /// Without a password of its own, it takes the one the password file
    /// holds for that host (see [`Config::parse_with_env`]).
    pub(crate) fn with_single_host(&self, host: Host, port: u16) -> Config {
        let password = self.password.clone().or_else(|| {
            self.hosts()
                .iter()
                .zip(&self.passfile_passwords)
                .find(|((h, p), _)| *h == host && *p == port)
                .and_then(|(_, found)| found.clone())
        });
        Config {
            hosts: vec![host],
            ports: vec![port],
            password,
            passfile_passwords: Vec::new(),
            ..self.clone()
        }
    }

    /// The `application_name` reported to the server.
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// How long opening a connection may take in all: host-name lookup,
    /// TCP handshake, TLS and authentication, up to the first
    /// `ReadyForQuery` (`connect_timeout`, seconds; default 10 s as in
    /// pgjdbc, `0` waits forever as in libpq).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// Sets (or with `None` removes) the connect timeout.
    pub fn set_connect_timeout(&mut self, timeout: Option<Duration>) -> &mut Config {
        self.connect_timeout = timeout.filter(|d| !d.is_zero());
        self
    }

    /// The server-side `statement_timeout`, sent as a startup option.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// The client-side deadline of one request (`query_timeout`,
    /// milliseconds; default none). A request still unanswered after it
    /// fails with [`Error::QueryTimeout`](crate::Error::QueryTimeout), the
    /// server is asked to cancel it, and the connection is closed if the
    /// server does not answer promptly.
    pub fn query_timeout(&self) -> Option<Duration> {
        self.query_timeout
    }

    /// Sets (or with `None` removes) the client-side request deadline.
    pub fn set_query_timeout(&mut self, timeout: Option<Duration>) -> &mut Config {
        self.query_timeout = timeout.filter(|d| !d.is_zero());
        self
    }

    /// The slow-statement threshold (`slow_statement_ms`, milliseconds;
    /// default 1000, 0 turns it off): a statement that takes longer is
    /// logged at warn level under [`SQL_LOG_TARGET`](crate::SQL_LOG_TARGET)
    /// with its SQL text and duration. On by default because a statement
    /// that takes a second is almost always a missing index or a lock wait
    /// worth hearing about; it costs two clock reads per statement, and
    /// nothing while warn logging is off for that target.
    pub fn slow_statement(&self) -> Option<Duration> {
        self.slow_statement
    }

    /// Sets (or with `None` or zero removes) the slow-statement threshold.
    pub fn set_slow_statement(&mut self, threshold: Option<Duration>) -> &mut Config {
        self.slow_statement = threshold.filter(|d| !d.is_zero());
        self
    }

    /// The largest backend message the connection accepts, in bytes
    /// (`max_message_bytes`; default [`DEFAULT_MAX_MESSAGE_BYTES`](crate::DEFAULT_MAX_MESSAGE_BYTES), just
    /// under 1 GiB, the largest message PostgreSQL itself can build). It
    /// bounds the messages whose size follows the data — a row, a row
    /// description, COPY data, an error or notice, a notification — so it
    /// is the most a server can make the client buffer for one message.
    /// Every other message is bounded at 30,000 bytes after login, and
    /// before login every message is (2,000 for an authentication
    /// request), as in libpq. A message over its bound is refused from its
    /// 5-byte header, before anything of it is buffered: the request
    /// fails with [`Error::Protocol`](crate::Error::Protocol) and the
    /// connection closes. Lower it when the server is not trusted and no
    /// row is that large.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Sets the largest backend message accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] below [`MIN_MAX_MESSAGE_BYTES`](crate::MIN_MAX_MESSAGE_BYTES) (30,000) or above
    /// [`DEFAULT_MAX_MESSAGE_BYTES`](crate::DEFAULT_MAX_MESSAGE_BYTES).
    pub fn set_max_message_bytes(&mut self, bytes: usize) -> Result<&mut Config, Error> {
        self.max_message_bytes = check_max_message_bytes(bytes)?;
        Ok(self)
    }

    /// Whether TCP keepalive probes are sent on an idle connection
    /// (`keepalives`, default on), so a peer that vanished is noticed.
    pub fn keepalives(&self) -> bool {
        self.keepalives
    }

    /// Idle time before the first keepalive probe (`keepalives_idle`,
    /// seconds; default 60 s).
    pub fn keepalives_idle(&self) -> Duration {
        self.keepalives_idle
    }

    /// Time between unanswered keepalive probes (`keepalives_interval`,
    /// seconds; default 10 s).
    pub fn keepalives_interval(&self) -> Duration {
        self.keepalives_interval
    }

    /// Unanswered probes before the connection is declared dead
    /// (`keepalives_count`; default 6, so a silent peer is noticed about
    /// two minutes after the connection went idle).
    pub fn keepalives_count(&self) -> u32 {
        self.keepalives_count
    }

    /// How long sent data may stay unacknowledged before the kernel drops
    /// the connection (`tcp_user_timeout`, milliseconds; default none: the
    /// system's, which is about 15 minutes on Linux).
    pub fn tcp_user_timeout(&self) -> Option<Duration> {
        self.tcp_user_timeout
    }

    /// Command-line options sent to the server (libpq's `options`).
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// The TLS mode (`sslmode`, default `prefer`).
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Whether SCRAM binds itself to the TLS channel (`channel_binding`:
    /// `disable`, `prefer` (default) or `require`, as in libpq).
    ///
    /// Under `prefer`, a TLS connection to a server offering
    /// `SCRAM-SHA-256-PLUS` uses it with `tls-server-end-point` binding;
    /// anything else logs in without binding. Under `require`, the login
    /// fails with [`Error::ChannelBindingRequired`] unless the server
    /// authenticates with `SCRAM-SHA-256-PLUS` over TLS, and nothing
    /// derived from the password is sent to a server that asks for another
    /// method (md5, cleartext, plain SCRAM) or for none.
    pub fn channel_binding(&self) -> ChannelBindingMode {
        self.channel_binding
    }

    /// The authentication methods the server may ask for (`require_auth`,
    /// libpq 16: e.g. `scram-sha-256`, `!password,!md5`, `none`); `None`
    /// (the default) allows every method this driver can perform.
    ///
    /// A server asking for a method the list refuses (also a server that
    /// asks for none, unless `none` is allowed) fails the connect with
    /// [`Error::AuthMethodRefused`] before anything derived from the
    /// password is sent. See [`RequireAuth`].
    pub fn require_auth(&self) -> Option<&RequireAuth> {
        self.require_auth.as_ref()
    }

    /// The trusted root certificates (`sslrootcert`): a PEM file, or
    /// `system` for the platform's trust store (read through
    /// `rustls-native-certs`, as libpq uses OpenSSL's; the host name is
    /// then always checked, whatever `sslmode`, as libpq). Unset:
    /// `~/.postgresql/root.crt` when it exists. Files are read once per
    /// process and setting, on a helper thread.
    pub fn ssl_root_cert(&self) -> Option<&str> {
        self.ssl_root_cert.as_deref()
    }

    /// The client certificate PEM file (`sslcert`), sent when the server
    /// asks; unset: `~/.postgresql/postgresql.crt` when it exists.
    pub fn ssl_cert(&self) -> Option<&str> {
        self.ssl_cert.as_deref()
    }

    /// The client certificate's private key PEM file (`sslkey`); unset:
    /// `~/.postgresql/postgresql.key`.
    pub fn ssl_key(&self) -> Option<&str> {
        self.ssl_key.as_deref()
    }

    /// How TLS is started (`sslnegotiation`, default `postgres`).
    pub fn ssl_negotiation(&self) -> SslNegotiation {
        self.ssl_negotiation
    }

    /// Whether prepared statements are cached per connection (default
    /// true; `statement_cache=false` for PgBouncer in transaction mode:
    /// every statement is then parsed unnamed with each run, in the same
    /// one round trip as its execution, the same as
    /// `statement_cache_capacity=0`; only descriptions are cached).
    pub fn statement_cache(&self) -> bool {
        self.statement_cache
    }

    /// Whether reads marked read-only ([`Client::read_only`]) may share
    /// one `Sync` with other tasks' reads on a pipelined connection
    /// (`coalesce_reads`, default true): the server then runs the group
    /// as one implicit transaction and flushes its answers once, instead
    /// of once per statement. Each statement still gets exactly its own
    /// rows or its own error (see the README's "Read coalescing"). `false`
    /// gives every statement its own `Sync`, as writes always have.
    ///
    /// [`Client::read_only`]: crate::client::client::Client::read_only
    pub fn coalesce_reads(&self) -> bool {
        self.coalesce_reads
    }

    /// How many prepared statements one connection keeps
    /// (`statement_cache_capacity`; default 256, between sqlx's 100 and
    /// pgx's 512). The least recently used one is closed on the server when
    /// a new one would exceed it; statements a caller holds are never
    /// closed while held (they may keep the cache above its capacity until
    /// dropped). `0` caches nothing, the same as `statement_cache=false`.
    pub fn statement_cache_capacity(&self) -> usize {
        self.statement_cache_capacity
    }

    /// The same settings for another database.
    pub fn with_dbname(&self, dbname: &str) -> Config {
        Config {
            dbname: dbname.to_owned(),
            ..self.clone()
        }
    }
}

pub(super) fn config_error(message: &str) -> Error {
    Error::Config(message.to_owned())
}
