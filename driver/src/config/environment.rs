//! libpq's environment: the `PG*` variables and the password file fill
//! what a connection string leaves out ([`Environment`],
//! [`Config::parse_with_env`], [`Config::from_env`]).
//!
//! The order of precedence is libpq's: a setting in the connection string
//! wins over its environment variable, which wins over the default; a
//! password from anywhere wins over the password file, which is read only
//! when no password was given. [`Config::parse`] itself never reads the
//! environment (it does no I/O, so a URL means the same on every machine):
//! reading it is asked for by calling these functions, with the process's
//! variables ([`Environment::process`]) or any others
//! ([`Environment::from_vars`], what tests use).

use std::collections::BTreeMap;
use std::fmt;

use super::config::config_error;
use super::defaults::default_config;
use super::passfile::{find_password, passfile_path, read_passfile};
use super::Config;
use crate::error::Error;

/// The environment variables libpq reads for a setting, with the setting
/// they give (its name in a connection string).
pub(super) const SETTING_VARIABLES: [(&str, &str); 17] = [
    ("PGHOST", "host"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGAPPNAME", "application_name"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGOPTIONS", "options"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
];

/// Where the password file is: `PGPASSFILE`, else `$HOME/.pgpass`.
const PASSFILE_VARIABLES: [&str; 2] = ["PGPASSFILE", "HOME"];

/// A set of environment variables as libpq reads them: the `PG*`
/// variables of [`Config::parse_with_env`] and `HOME` (for `~/.pgpass`).
///
/// [`Environment::process`] takes them from this process; tests and
/// tools build one with [`Environment::from_vars`]. An empty variable is
/// treated as unset. `Debug` never shows `PGPASSWORD`.
///
/// ```
/// use green_postgres::{Config, Environment};
///
/// let env = Environment::from_vars([("PGHOST", "db.example.com"), ("PGUSER", "app")]);
/// let config = Config::parse_with_env("postgresql://localhost/orders", &env)?;
/// assert_eq!(config.user(), "app"); // the URL names no user
/// assert_eq!(config.dbname(), "orders");
/// assert_eq!(config.host(), &green_postgres::Host::Tcp("localhost".into())); // the URL's
/// # Ok::<(), green_postgres::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.vars.iter().map(|(name, value)| match name.as_str() {
            "PGPASSWORD" => (name.as_str(), "<redacted>"),
            _ => (name.as_str(), value.as_str()),
        });
        f.debug_map().entries(shown).finish()
    }
}

impl Environment {
    /// No variables: only the connection string and the defaults count.
    pub fn empty() -> Environment {
        Environment::default()
    }

    /// The variables libpq reads, taken from this process's environment
    /// now (later changes to it are not seen). Variables that are not
    /// valid UTF-8 are treated as unset.
    pub fn process() -> Environment {
        let names = SETTING_VARIABLES
            .iter()
            .map(|(name, _)| *name)
            .chain(PASSFILE_VARIABLES);
        Environment::from_vars(names.filter_map(|name| Some((name, std::env::var(name).ok()?))))
    }

    /// The given `(name, value)` pairs as the environment.
    pub fn from_vars<I, K, V>(vars: I) -> Environment
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Environment {
            vars: vars
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .filter(|(_, value)| !value.is_empty())
                .collect(),
        }
    }

    /// The value of `name`, when set and not empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

impl Config {
    /// [`Config::parse_with_env`], also returning the pool's settings.
    pub(crate) fn parse_with_env_and_pool_settings(
        s: &str,
        env: &Environment,
    ) -> Result<(Config, Vec<(String, String)>), Error> {
        let base = Config::from_variables(env)?;
        let (mut config, pool_settings) = if s.trim().is_empty() {
            let mut config = base;
            config.fill_default_names();
            config.fit_ports_to_hosts()?;
            (config, Vec::new())
        } else {
            Config::parse_over(base, s)?
        };
        if config.password.is_none() {
            config.fill_from_passfile(env);
        }
        Ok((config, pool_settings))
    }

    /// The defaults with every set `PG*` variable applied.
    fn from_variables(env: &Environment) -> Result<Config, Error> {
        let mut config = default_config("postgresql+green");
        for (name, key) in SETTING_VARIABLES {
            if let Some(value) = env.var(name) {
                config.set(key, value.to_owned()).map_err(|err| match err {
                    Error::Config(message) if key != "password" => {
                        config_error(&format!("environment variable {name}: {message}"))
                    }
                    _ => config_error(&format!("invalid environment variable {name}")),
                })?;
            }
        }
        Ok(config)
    }

    /// The password file's password for each host (see `passfile`): the
    /// password itself with one host, one per host with several.
    fn fill_from_passfile(&mut self, env: &Environment) {
        let Some(path) = passfile_path(env.var("PGPASSFILE"), env.var("HOME")) else {
            return;
        };
        let Ok(entries) = read_passfile(&path) else {
            return;
        };
        let found: Vec<Option<String>> = self
            .hosts()
            .iter()
            .map(|(host, port)| find_password(&entries, host, *port, &self.dbname, &self.user))
            .collect();
        match found.as_slice() {
            [one] => self.password = one.clone(),
            _ => self.passfile_passwords = found,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Host, SslMode};

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::from_vars(vars.iter().copied())
    }

    #[test]
    fn the_environment_alone_gives_every_setting() {
        let env = env(&[
            ("PGHOST", "db.example.com"),
            ("PGPORT", "6543"),
            ("PGUSER", "alice"),
            ("PGPASSWORD", "s3cret"),
            ("PGDATABASE", "orders"),
            ("PGSSLMODE", "disable"),
            ("PGAPPNAME", "reports"),
            ("PGCONNECT_TIMEOUT", "7"),
        ]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.host(), &Host::Tcp("db.example.com".into()));
        assert_eq!(config.port(), 6543);
        assert_eq!(config.user(), "alice");
        assert_eq!(config.password(), Some("s3cret"));
        assert_eq!(config.dbname(), "orders");
        assert_eq!(config.ssl_mode(), SslMode::Disable);
        assert_eq!(config.application_name(), Some("reports"));
        assert_eq!(config.connect_timeout(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn the_url_wins_over_the_environment_which_wins_over_the_defaults() {
        let env = env(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "6543"),
            ("PGUSER", "alice"),
            ("PGPASSWORD", "envpass"),
            ("PGDATABASE", "envdb"),
            ("PGSSLMODE", "disable"),
        ]);
        let config = Config::parse_with_env(
            "postgresql://bob:urlpass@urlhost/urldb?sslmode=require",
            &env,
        )
        .unwrap();
        assert_eq!(config.host(), &Host::Tcp("urlhost".into()));
        assert_eq!(config.port(), 6543, "the url gives no port");
        assert_eq!((config.user(), config.password()), ("bob", Some("urlpass")));
        assert_eq!(config.dbname(), "urldb");
        assert_eq!(config.ssl_mode(), SslMode::Require);
        let config = Config::parse_with_env("postgresql://", &env).unwrap();
        assert_eq!(config.host(), &Host::Tcp("envhost".into()));
        assert_eq!(
            (config.user(), config.password()),
            ("alice", Some("envpass"))
        );
        assert_eq!(config.dbname(), "envdb");
        let config = Config::parse_with_env("dbname=kv", &env).unwrap();
        assert_eq!((config.dbname(), config.user()), ("kv", "alice"));
    }

    #[test]
    fn without_variables_it_parses_as_parse_does() {
        for url in [
            "postgresql://u:p@h:1/d?sslmode=require",
            "postgres://h",
            "host=/tmp port=5439 user=x",
        ] {
            assert_eq!(
                Config::parse_with_env(url, &Environment::empty()).unwrap(),
                Config::parse(url).unwrap()
            );
        }
        let config = Config::from_env(&Environment::empty()).unwrap();
        assert_eq!((config.user(), config.dbname()), ("postgres", "postgres"));
    }

    #[test]
    fn a_bad_variable_is_an_error_naming_it_and_never_the_password() {
        let err = Config::from_env(&env(&[("PGPORT", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PGPORT") && err.contains("lots"), "{err}");
        let err = Config::from_env(&env(&[("PGSSLMODE", "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PGSSLMODE"), "{err}");
        // An empty variable is unset, as a blank PGPORT in a shell script.
        assert_eq!(
            Config::from_env(&env(&[("PGPORT", "")])).unwrap().port(),
            5432
        );
    }

    #[test]
    fn debug_of_an_environment_hides_pgpassword() {
        let shown = format!("{:?}", env(&[("PGPASSWORD", "s3cret"), ("PGUSER", "a")]));
        assert!(
            !shown.contains("s3cret") && shown.contains("PGUSER"),
            "{shown}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_password_file_gives_a_password_only_when_none_was_given() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("odm-env-passfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".pgpass");
        std::fs::write(&path, "h1:5432:app:alice:one\nh2:*:app:alice:two\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let home = dir.to_str().unwrap();
        let env = env(&[("HOME", home)]);
        let config = Config::parse_with_env("postgresql://alice@h1/app", &env).unwrap();
        assert_eq!(config.password(), Some("one"));
        let config = Config::parse_with_env("postgresql://alice:given@h1/app", &env).unwrap();
        assert_eq!(config.password(), Some("given"));
        let config = Config::parse_with_env("postgresql://bob@h1/app", &env).unwrap();
        assert_eq!(config.password(), None);
        // Several hosts: each its own line, taken when connecting to it.
        let config = Config::parse_with_env("postgresql://alice@h1,h2:6000/app", &env).unwrap();
        assert_eq!(config.password(), None);
        let h2 = config.with_single_host(Host::Tcp("h2".into()), 6000);
        assert_eq!(h2.password(), Some("two"));
        let h1 = config.with_single_host(Host::Tcp("h1".into()), 5432);
        assert_eq!(h1.password(), Some("one"));
        // PGPASSFILE comes before HOME; a file others can read is ignored.
        let other = dir.join("other");
        std::fs::write(&other, "*:*:*:*:elsewhere\n").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o640)).unwrap();
        let env = self::env(&[("HOME", home), ("PGPASSFILE", other.to_str().unwrap())]);
        let config = Config::parse_with_env("postgresql://alice@h1/app", &env).unwrap();
        assert_eq!(config.password(), None);
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = Config::parse_with_env("postgresql://alice@h1/app", &env).unwrap();
        assert_eq!(config.password(), Some("elsewhere"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
