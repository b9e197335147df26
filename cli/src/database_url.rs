//! Which database a command works on: the URL from `--database-url`, else
//! `DATABASE_URL` from the environment, else `DATABASE_URL` from a `.env`
//! file in the current folder, else libpq's `PG*` variables alone. In
//! every case the `PG*` variables and the password file (`PGPASSFILE` or
//! `~/.pgpass`) fill what the URL leaves out, as in `psql`
//! (`odm::pg::Config::parse_with_env`). Variables of the process win over
//! those of the `.env` file, which never changes the process environment.

use std::collections::BTreeMap;
use std::path::Path;

use odm::pg::{Config, Environment, Host};
use odm::pool::PoolOptions;

use crate::outcome::CliError;

/// Where the URL was found, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlSource {
    /// `--database-url`.
    Flag,
    /// `DATABASE_URL` in the environment.
    Environment,
    /// `DATABASE_URL` in the `.env` file.
    DotEnv,
    /// No URL: the `PG*` variables and the defaults.
    PgVariables,
}

impl UrlSource {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            UrlSource::Flag => "--database-url",
            UrlSource::Environment => "DATABASE_URL",
            UrlSource::DotEnv => "DATABASE_URL in .env",
            UrlSource::PgVariables => "the PG* environment variables",
        }
    }
}

/// The database a command works on.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) options: PoolOptions,
    pub(crate) source: UrlSource,
}

impl Target {
    /// `database "app" on 127.0.0.1:5432`, never the password.
    pub(crate) fn describe(&self) -> String {
        format!(
            "database \"{}\" on {}",
            self.config.dbname(),
            describe_host(&self.config)
        )
    }

    /// The same server, database `dbname`.
    pub(crate) fn with_dbname(&self, dbname: &str) -> Config {
        self.config.with_dbname(dbname)
    }
}

/// `host:port` of every host, comma separated.
fn describe_host(config: &Config) -> String {
    config
        .hosts()
        .iter()
        .map(|(host, port)| match host {
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Finds the database URL (see the module's doc) with `dotenv` as the
/// `.env` file.
pub(crate) fn resolve(flag: Option<&str>, dotenv: &Path) -> Result<Target, CliError> {
    let mut vars = read_dotenv(dotenv)?;
    let from_dotenv = vars.get("DATABASE_URL").cloned();
    for (name, value) in std::env::vars_os() {
        if let (Ok(name), Ok(value)) = (name.into_string(), value.into_string()) {
            vars.insert(name, value);
        }
    }
    let from_process = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty());
    let (url, source) = match (flag, from_process, from_dotenv) {
        (Some(url), _, _) => (url.to_owned(), UrlSource::Flag),
        (None, Some(url), _) => (url, UrlSource::Environment),
        (None, None, Some(url)) if !url.is_empty() => (url, UrlSource::DotEnv),
        _ => (String::new(), UrlSource::PgVariables),
    };
    let env = Environment::from_vars(vars);
    let (config, options) = odm::pool::parse_url_with_env(&url, &env).map_err(|err| {
        CliError::failure(format!(
            "the database url from {} is not valid: {err}",
            source.describe()
        ))
    })?;
    Ok(Target {
        config,
        options,
        source,
    })
}

/// The variables of the `.env` file at `path`; none when there is no file.
fn read_dotenv(path: &Path) -> Result<BTreeMap<String, String>, CliError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BTreeMap::new())
        }
        Err(err) => return Err(dotenv_error(path, err)),
    };
    iter.map(|item| item.map_err(|err| dotenv_error(path, err)))
        .collect()
}

/// A `.env` error that never shows a line of the file, which may hold a
/// password.
fn dotenv_error(path: &Path, err: dotenvy::Error) -> CliError {
    let why = match err {
        dotenvy::Error::LineParse(_, at) => {
            format!("a line does not parse at character {at} (not shown: it may hold a password)")
        }
        dotenvy::Error::Io(err) => err.to_string(),
        _ => "a variable it uses is not set".to_owned(),
    };
    CliError::failure(format!("cannot read {}: {why}", path.display()))
}
