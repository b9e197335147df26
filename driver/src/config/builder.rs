//! [`ConfigBuilder`]: a [`Config`] from typed values, without a string,
//! covering every setting a URL can carry. Values are checked by
//! [`ConfigBuilder::build`] with the same rules and messages as parsing.

use std::time::Duration;

use super::config::config_error;
use super::defaults::{check_max_message_bytes, default_config};
use super::host_selection::parse_host_list;
use super::percent::Shown;
use super::settings::{keepalives_count_error, whole_seconds_error, KEEPALIVE_SECONDS};
use super::{
    ChannelBindingMode, Config, LoadBalanceHosts, RequireAuth, SslMode, SslNegotiation,
    TargetSessionAttrs,
};
use crate::error::Error;

/// Builds a [`Config`] setting by setting; start with [`Config::builder`]
/// (the defaults) or `ConfigBuilder::from(config)` (another config's
/// settings). Each method is named after the URL key it stands for.
///
/// ```
/// use std::time::Duration;
/// use green_postgres::{Config, SslMode};
///
/// let config = Config::builder()
///     .host("db.example.com")
///     .port(5433)
///     .user("app")
///     .password("s3cret")
///     .dbname("app")
///     .ssl_mode(SslMode::VerifyFull)
///     .ssl_root_cert("system")
///     .query_timeout(Some(Duration::from_secs(5)))
///     .build()?;
/// assert_eq!(config, Config::parse(
///     "postgresql+green://app:s3cret@db.example.com:5433/app\
///      ?sslmode=verify-full&sslrootcert=system&query_timeout=5000",
/// )?);
/// # Ok::<(), green_postgres::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
    /// The host as given, checked by `build`.
    host: Option<String>,
    /// `require_auth` as given, checked by `build`.
    require_auth: Option<String>,
}

impl From<Config> for ConfigBuilder {
    fn from(config: Config) -> ConfigBuilder {
        ConfigBuilder {
            config,
            host: None,
            require_auth: None,
        }
    }
}

impl Default for ConfigBuilder {
    fn default() -> ConfigBuilder {
        ConfigBuilder::new()
    }
}

impl ConfigBuilder {
    /// The defaults, as a URL with no settings (`postgresql+green://`).
    pub fn new() -> ConfigBuilder {
        ConfigBuilder::from(default_config("postgresql+green"))
    }

    /// A host name or IP address, or an absolute directory holding the
    /// server's unix socket (`host`; default `localhost`); several
    /// separated by commas (`"h1,h2"`), tried in order.
    pub fn host(mut self, host: &str) -> ConfigBuilder {
        self.host = Some(host.to_owned());
        self
    }

    /// The server's port, also naming the unix socket file (`port`;
    /// default 5432), for every host.
    pub fn port(mut self, port: u16) -> ConfigBuilder {
        self.config.ports = vec![port];
        self
    }

    /// Which servers a connection may stay on (`target_session_attrs`;
    /// default `any`).
    pub fn target_session_attrs(mut self, attrs: TargetSessionAttrs) -> ConfigBuilder {
        self.config.target_session_attrs = attrs;
        self
    }

    /// In which order the hosts are tried (`load_balance_hosts`; default
    /// `disable`).
    pub fn load_balance_hosts(mut self, order: LoadBalanceHosts) -> ConfigBuilder {
        self.config.load_balance_hosts = order;
        self
    }

    /// The user name (`user`; default `postgres`).
    pub fn user(mut self, user: &str) -> ConfigBuilder {
        self.config.user = user.to_owned();
        self
    }

    /// The password (`password`; default none).
    pub fn password(mut self, password: &str) -> ConfigBuilder {
        self.config.password = Some(password.to_owned());
        self
    }

    /// The database name (`dbname`; default the user name).
    pub fn dbname(mut self, dbname: &str) -> ConfigBuilder {
        self.config.dbname = dbname.to_owned();
        self
    }

    /// The `application_name` reported to the server.
    pub fn application_name(mut self, name: &str) -> ConfigBuilder {
        self.config.application_name = Some(name.to_owned());
        self
    }

    /// See [`Config::connect_timeout`]; `None` or zero waits forever.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> ConfigBuilder {
        self.config.connect_timeout = timeout.filter(|d| !d.is_zero());
        self
    }

    /// See [`Config::statement_timeout`].
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> ConfigBuilder {
        self.config.statement_timeout = timeout;
        self
    }

    /// See [`Config::query_timeout`]; `None` or zero: no deadline.
    pub fn query_timeout(mut self, timeout: Option<Duration>) -> ConfigBuilder {
        self.config.query_timeout = timeout.filter(|d| !d.is_zero());
        self
    }

    /// See [`Config::slow_statement`]; `None` or zero: no slow-statement
    /// warning.
    pub fn slow_statement(mut self, threshold: Option<Duration>) -> ConfigBuilder {
        self.config.slow_statement = threshold.filter(|d| !d.is_zero());
        self
    }

    /// See [`Config::max_message_bytes`]; a value out of range makes
    /// [`ConfigBuilder::build`] fail.
    pub fn max_message_bytes(mut self, bytes: usize) -> ConfigBuilder {
        self.config.max_message_bytes = bytes;
        self
    }

    /// See [`Config::keepalives`].
    pub fn keepalives(mut self, on: bool) -> ConfigBuilder {
        self.config.keepalives = on;
        self
    }

    /// See [`Config::keepalives_idle`]: whole seconds from 1 to 32767.
    pub fn keepalives_idle(mut self, idle: Duration) -> ConfigBuilder {
        self.config.keepalives_idle = idle;
        self
    }

    /// See [`Config::keepalives_interval`]: whole seconds from 1 to 32767.
    pub fn keepalives_interval(mut self, interval: Duration) -> ConfigBuilder {
        self.config.keepalives_interval = interval;
        self
    }

    /// See [`Config::keepalives_count`]: from 1 to 127.
    pub fn keepalives_count(mut self, count: u32) -> ConfigBuilder {
        self.config.keepalives_count = count;
        self
    }

    /// See [`Config::tcp_user_timeout`]; `None` or zero: the system's.
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> ConfigBuilder {
        self.config.tcp_user_timeout = timeout.filter(|d| !d.is_zero());
        self
    }

    /// See [`Config::statement_cache`].
    pub fn statement_cache(mut self, on: bool) -> ConfigBuilder {
        self.config.statement_cache = on;
        self
    }

    /// See [`Config::coalesce_reads`].
    pub fn coalesce_reads(mut self, on: bool) -> ConfigBuilder {
        self.config.coalesce_reads = on;
        self
    }

    /// See [`Config::statement_cache_capacity`].
    pub fn statement_cache_capacity(mut self, capacity: usize) -> ConfigBuilder {
        self.config.statement_cache_capacity = capacity;
        self
    }

    /// Command-line options sent to the server (libpq's `options`, e.g.
    /// `-c search_path=app`).
    pub fn options(mut self, options: &str) -> ConfigBuilder {
        self.config.options = Some(options.to_owned());
        self
    }

    /// See [`Config::ssl_mode`].
    pub fn ssl_mode(mut self, mode: SslMode) -> ConfigBuilder {
        self.config.ssl_mode = mode;
        self
    }

    /// See [`Config::ssl_root_cert`]; empty unsets it.
    pub fn ssl_root_cert(mut self, path: &str) -> ConfigBuilder {
        self.config.ssl_root_cert = Some(path.to_owned()).filter(|p| !p.is_empty());
        self
    }

    /// See [`Config::ssl_cert`]; empty unsets it.
    pub fn ssl_cert(mut self, path: &str) -> ConfigBuilder {
        self.config.ssl_cert = Some(path.to_owned()).filter(|p| !p.is_empty());
        self
    }

    /// See [`Config::ssl_key`]; empty unsets it.
    pub fn ssl_key(mut self, path: &str) -> ConfigBuilder {
        self.config.ssl_key = Some(path.to_owned()).filter(|p| !p.is_empty());
        self
    }

    /// See [`Config::ssl_negotiation`].
    pub fn ssl_negotiation(mut self, negotiation: SslNegotiation) -> ConfigBuilder {
        self.config.ssl_negotiation = negotiation;
        self
    }

    /// See [`Config::channel_binding`].
    pub fn channel_binding(mut self, mode: ChannelBindingMode) -> ConfigBuilder {
        self.config.channel_binding = mode;
        self
    }

    /// The authentication methods the server may ask for, in libpq's
    /// `require_auth` syntax (`scram-sha-256`, `!password,!md5`, `none`);
    /// see [`Config::require_auth`].
    pub fn require_auth(mut self, methods: &str) -> ConfigBuilder {
        self.require_auth = Some(methods.to_owned());
        self
    }

    /// The configuration, with the user `postgres` and the database named
    /// as the user when they were not given.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the setting, with the message parsing gives
    /// for the same value (a relative unix socket directory, port 0, a
    /// keepalive setting out of range, a bad `require_auth` list).
    pub fn build(self) -> Result<Config, Error> {
        let mut config = self.config;
        if let Some(host) = &self.host {
            config.hosts = parse_host_list(host, Shown::Quoted)?;
        }
        if let Some(methods) = &self.require_auth {
            config.require_auth = RequireAuth::parse(methods)?;
        }
        if config.ports.contains(&0) {
            return Err(config_error(
                "invalid port `0`: expected a number from 1 to 65535",
            ));
        }
        config.fit_ports_to_hosts()?;
        check_max_message_bytes(config.max_message_bytes)?;
        for (key, value) in [
            ("keepalives_idle", config.keepalives_idle),
            ("keepalives_interval", config.keepalives_interval),
        ] {
            if value.subsec_nanos() != 0 || !KEEPALIVE_SECONDS.contains(&value.as_secs()) {
                return Err(whole_seconds_error(key, &format!("{value:?}")));
            }
        }
        if !(1..=127).contains(&config.keepalives_count) {
            return Err(keepalives_count_error(&config.keepalives_count.to_string()));
        }
        config.fill_default_names();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMethod, Host};

    #[test]
    fn a_builder_with_nothing_set_gives_the_defaults_of_an_empty_url() {
        let built = Config::builder().build().unwrap();
        assert_eq!(built, Config::parse("postgresql+green://").unwrap());
        assert_eq!((built.user(), built.dbname()), ("postgres", "postgres"));
    }

    #[test]
    fn every_setting_the_url_can_carry_can_be_built() {
        let url = "postgresql+green://app:pw@db.example:6000/shop?application_name=web\
                   &connect_timeout=3&statement_timeout=1500&query_timeout=2500&slow_statement_ms=750&keepalives=0\
                   &keepalives_idle=5&keepalives_interval=2&keepalives_count=3\
                   &tcp_user_timeout=10000&statement_cache=false&statement_cache_capacity=16\
                   &options=-c%20search_path%3Dx&sslmode=verify-full&sslrootcert=/r.pem\
                   &sslcert=/c.pem&sslkey=/k.pem&sslnegotiation=direct&channel_binding=require\
                   &require_auth=scram-sha-256";
        let built = Config::builder()
            .host("db.example")
            .port(6000)
            .user("app")
            .password("pw")
            .dbname("shop")
            .application_name("web")
            .connect_timeout(Some(Duration::from_secs(3)))
            .statement_timeout(Some(Duration::from_millis(1500)))
            .query_timeout(Some(Duration::from_millis(2500)))
            .slow_statement(Some(Duration::from_millis(750)))
            .keepalives(false)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_count(3)
            .tcp_user_timeout(Some(Duration::from_secs(10)))
            .statement_cache(false)
            .statement_cache_capacity(16)
            .options("-c search_path=x")
            .ssl_mode(SslMode::VerifyFull)
            .ssl_root_cert("/r.pem")
            .ssl_cert("/c.pem")
            .ssl_key("/k.pem")
            .ssl_negotiation(SslNegotiation::Direct)
            .channel_binding(ChannelBindingMode::Require)
            .require_auth("scram-sha-256")
            .build()
            .unwrap();
        assert_eq!(built, Config::parse(url).unwrap());
        assert!(built
            .require_auth()
            .unwrap()
            .allows(AuthMethod::ScramSha256));
    }

    #[test]
    fn a_host_starting_with_a_slash_is_a_unix_socket_directory() {
        let built = Config::builder().host("/run/postgresql").build().unwrap();
        assert_eq!(built.host(), &Host::Unix("/run/postgresql".into()));
    }

    #[test]
    fn a_builder_from_a_config_changes_only_what_it_sets() {
        let config = Config::parse("postgres://u:p@h:1/a?application_name=x").unwrap();
        let built = ConfigBuilder::from(config.clone())
            .dbname("b")
            .build()
            .unwrap();
        assert_eq!(built, config.with_dbname("b"));
    }

    #[test]
    fn bad_values_are_errors_naming_the_setting_as_parsing_does() {
        let err = |builder: ConfigBuilder| builder.build().unwrap_err().to_string();
        assert_eq!(
            err(Config::builder().host("relative/dir")),
            "invalid configuration: invalid host `relative/dir`: a unix socket directory must \
             be an absolute path"
        );
        assert_eq!(
            err(Config::builder().host("")),
            "invalid configuration: empty host"
        );
        assert_eq!(
            err(Config::builder().port(0)),
            "invalid configuration: invalid port `0`: expected a number from 1 to 65535"
        );
        assert_eq!(
            err(Config::builder().keepalives_count(0)),
            "invalid configuration: invalid keepalives_count `0`: expected a number from 1 to 127"
        );
        assert_eq!(
            err(Config::builder().keepalives_idle(Duration::from_millis(1500))),
            "invalid configuration: invalid keepalives_idle `1.5s`: expected whole seconds \
             from 1 to 32767"
        );
        assert!(err(Config::builder().require_auth("kerberos-ish")).contains("require_auth"));
    }

    #[test]
    fn a_built_password_never_shows_in_debug() {
        let builder = Config::builder().password("s3cret");
        assert!(!format!("{builder:?}").contains("s3cret"));
        let built = builder.build().unwrap();
        assert!(!format!("{built:?}").contains("s3cret"));
    }
}
