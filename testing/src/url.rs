//! The little URL handling the test servers need: building a
//! [`TempCluster`]'s URLs, and aiming a `DATABASE_URL` at another database,
//! user or host. A URL is only cut where its authority ends and its
//! userinfo ends, never read further: odm's `pg::Config` parses it (and
//! refuses one where a password could be misread) when it connects.
//!
//! [`TempCluster`]: super::TempCluster

use std::fmt;

use super::psql;
use super::{Error, SUPERUSER, SUPERUSER_PASSWORD};

/// The scheme of the URLs handed to odm.
pub(crate) const GREEN_SCHEME: &str = "postgresql+green://";

/// The schemes accepted in `DATABASE_URL`.
const SCHEMES: [&str; 3] = ["postgresql+green://", "postgresql://", "postgres://"];

/// Query parameters that libpq (and so `psql`) understands; odm's own
/// (`pool_size`, `statement_cache`, ...) are left out of [`ServerUrl::psql_target`].
/// `password` is not among them: it goes to `psql` through its environment.
const LIBPQ_PARAMS: [&str; 15] = [
    "host",
    "hostaddr",
    "port",
    "user",
    "connect_timeout",
    "application_name",
    "options",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "target_session_attrs",
    "keepalives",
    "gssencmode",
];

/// The server a test database lives on, and how to write its URLs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ServerUrl {
    /// A [`TempCluster`](super::TempCluster) on `127.0.0.1:port`.
    Cluster {
        /// The cluster's TCP port.
        port: u16,
    },
    /// A URL given from outside (`DATABASE_URL`), kept as written after
    /// `scheme://`; a database, user or host is chosen by appending query
    /// parameters.
    Given {
        /// The URL after its scheme.
        rest: String,
    },
}

impl ServerUrl {
    /// A given `postgresql+green://`, `postgresql://` or `postgres://` URL.
    /// `source` names where it came from, for the error message.
    pub(crate) fn given(url: &str, source: &str) -> Result<ServerUrl, Error> {
        let rest = SCHEMES
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| {
                Error::Url(format!(
                    "{source} must start with postgresql+green://, postgresql:// or postgres://"
                ))
            })?;
        Ok(ServerUrl::Given {
            rest: rest.to_string(),
        })
    }

    /// This server's URL (`postgresql+green://`) for database `dbname`, as
    /// `user`/`password` when given, else as the original user; a given
    /// URL keeps its host, port and parameters.
    pub(crate) fn green_url(&self, credentials: Option<(&str, &str)>, dbname: &str) -> String {
        let rest = match self {
            ServerUrl::Cluster { port } => {
                let (user, password) = credentials.unwrap_or((SUPERUSER, SUPERUSER_PASSWORD));
                return cluster_url(*port, user, password, dbname);
            }
            ServerUrl::Given { rest } => rest,
        };
        let (userinfo, host_port, after) = split_authority(rest);
        let userinfo = match credentials {
            Some((user, password)) => Some(format!(
                "{}:{}",
                encode_component(user),
                encode_component(password)
            )),
            None => userinfo.map(str::to_string),
        };
        let query: Vec<&str> = query_pairs(after)
            .filter(|pair| !pair.starts_with("dbname="))
            .collect();
        assemble(GREEN_SCHEME, userinfo.as_deref(), host_port, dbname, &query)
    }

    /// How `psql` reaches database `dbname`: a `postgresql://` URL with
    /// only the parameters libpq knows and without the password, which is
    /// handed over on its own (the query's `password=`, else the
    /// userinfo's), decoded.
    pub(crate) fn psql_target(&self, dbname: &str) -> psql::Target {
        let rest = match self {
            ServerUrl::Cluster { port } => {
                return psql::Target {
                    conninfo: format!(
                        "postgresql://{SUPERUSER}@127.0.0.1:{port}/{}",
                        encode_component(dbname)
                    ),
                    password: Some(SUPERUSER_PASSWORD.to_string()),
                }
            }
            ServerUrl::Given { rest } => rest,
        };
        let (userinfo, host_port, after) = split_authority(rest);
        let (user, userinfo_password) = match userinfo.map(|info| info.split_once(':')) {
            Some(Some((user, password))) => (Some(user), Some(password)),
            Some(None) => (userinfo, None),
            None => (None, None),
        };
        let mut query_password = None;
        let query: Vec<&str> = query_pairs(after)
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if key == "password" {
                    query_password = Some(value);
                }
                LIBPQ_PARAMS.contains(&key)
            })
            .collect();
        psql::Target {
            conninfo: assemble("postgresql://", user, host_port, dbname, &query),
            password: query_password.or(userinfo_password).map(percent_decode),
        }
    }
}

/// `scheme[userinfo@]host_port/dbname[?query]`, the database name
/// percent-encoded.
fn assemble(
    scheme: &str,
    userinfo: Option<&str>,
    host_port: &str,
    dbname: &str,
    query: &[&str],
) -> String {
    let mut url = String::from(scheme);
    if let Some(userinfo) = userinfo {
        url.push_str(userinfo);
        url.push('@');
    }
    url.push_str(host_port);
    url.push('/');
    url.push_str(&encode_component(dbname));
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    url
}

/// The `key=value` pairs of the query in `after` (a URL's path and query).
fn query_pairs(after: &str) -> impl Iterator<Item = &str> {
    after
        .split_once('?')
        .map_or("", |(_, query)| query)
        .split('&')
        .filter(|pair| !pair.is_empty())
}

impl fmt::Debug for ServerUrl {
    /// Shows the server without its URL, which may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerUrl::Cluster { port } => write!(f, "Cluster(127.0.0.1:{port})"),
            ServerUrl::Given { .. } => f.write_str("Given(DATABASE_URL)"),
        }
    }
}

/// The `postgresql+green://` URL of a cluster on `127.0.0.1:port`.
pub(crate) fn cluster_url(port: u16, user: &str, password: &str, dbname: &str) -> String {
    format!(
        "{GREEN_SCHEME}{}:{}@127.0.0.1:{port}/{}",
        encode_component(user),
        encode_component(password),
        encode_component(dbname)
    )
}

/// `url` (`postgresql+green://`, `postgresql://` or `postgres://`) aimed at
/// `host_port` instead of its own host and port, keeping everything else.
pub(crate) fn with_host_port(url: &str, host_port: &str) -> Result<String, Error> {
    let scheme = SCHEMES
        .iter()
        .find(|scheme| url.starts_with(**scheme))
        .ok_or_else(|| {
            Error::Url(
                "the url must start with postgresql+green://, postgresql:// or postgres://"
                    .to_string(),
            )
        })?;
    let (userinfo, _, after) = split_authority(&url[scheme.len()..]);
    Ok(match userinfo {
        Some(userinfo) => format!("{scheme}{userinfo}@{host_port}{after}"),
        None => format!("{scheme}{host_port}{after}"),
    })
}

/// Cuts a URL after its `scheme://` into its userinfo, its host and port,
/// and the rest (path and query): the authority ends at the first `/` or
/// `?`, the userinfo at the authority's last `@`. A URL where these could be
/// misread (a raw `/`, `?` or `@` in a password) is refused by odm's
/// `pg::Config` when it connects.
fn split_authority(rest: &str) -> (Option<&str>, &str, &str) {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..], after),
        None => (None, authority, after),
    }
}

/// `%XX` escapes decoded; a malformed one, or bytes that are not UTF-8,
/// kept as they are (`psql` then reports the failed login).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_is_retargeted_at_another_database_and_user() {
        let url = ServerUrl::given(
            "postgres://odm:odmtest@db.example:5433/odmtests?pool_size=7&sslmode=disable",
            "DATABASE_URL",
        )
        .unwrap();
        assert_eq!(
            url.green_url(None, "t1"),
            "postgresql+green://odm:odmtest@db.example:5433/t1?pool_size=7&sslmode=disable"
        );
        assert_eq!(
            url.green_url(Some(("a b", "p@ss")), "t1"),
            "postgresql+green://a%20b:p%40ss@db.example:5433/t1?pool_size=7&sslmode=disable"
        );
        assert_eq!(
            url.psql_target("postgres"),
            psql::Target {
                conninfo: "postgresql://odm@db.example:5433/postgres?sslmode=disable".to_string(),
                password: Some("odmtest".to_string()),
            }
        );
        let url = ServerUrl::given("postgres://h?dbname=a&x=1", "DATABASE_URL").unwrap();
        assert_eq!(url.green_url(None, "b"), "postgresql+green://h/b?x=1");
    }

    #[test]
    fn a_cluster_url_names_its_user_and_database_in_the_url() {
        let url = ServerUrl::Cluster { port: 5433 };
        assert_eq!(
            url.green_url(Some(("a b", "p@ss")), "d b"),
            "postgresql+green://a%20b:p%40ss@127.0.0.1:5433/d%20b"
        );
        assert_eq!(
            url.green_url(None, "db"),
            "postgresql+green://odm:odmtest@127.0.0.1:5433/db"
        );
    }

    #[test]
    fn a_url_is_aimed_at_another_host_and_port_keeping_everything_else() {
        assert_eq!(
            with_host_port(
                "postgres://odm:p%40ss@db.example:5433/d%20b?x=1",
                "127.0.0.1:9"
            )
            .unwrap(),
            "postgres://odm:p%40ss@127.0.0.1:9/d%20b?x=1"
        );
        assert_eq!(
            with_host_port("postgresql+green://h", "127.0.0.1:9").unwrap(),
            "postgresql+green://127.0.0.1:9"
        );
        assert!(matches!(
            with_host_port("mysql://h/d", "127.0.0.1:9"),
            Err(Error::Url(_))
        ));
    }

    #[test]
    fn the_psql_target_carries_the_password_outside_its_connection_string() {
        let url = ServerUrl::given(
            "postgres://odm:p%40ss%2Fw0rd@h:1/db?password=from%20query&pool_size=2",
            "DATABASE_URL",
        )
        .unwrap();
        let target = url.psql_target("postgres");
        assert_eq!(target.conninfo, "postgresql://odm@h:1/postgres");
        assert_eq!(target.password.as_deref(), Some("from query"));
        let target = ServerUrl::given("postgres://odm:p%40ss@h/db", "DATABASE_URL")
            .unwrap()
            .psql_target("x");
        assert_eq!(target.conninfo, "postgresql://odm@h/x");
        assert_eq!(target.password.as_deref(), Some("p@ss"));
        assert!(!format!("{target:?}").contains("p@ss"));
        let target = ServerUrl::given("postgres://odm@h/db", "DATABASE_URL")
            .unwrap()
            .psql_target("x");
        assert_eq!(target.password, None);
    }

    #[test]
    fn the_debug_form_of_a_server_url_shows_no_password() {
        let url = ServerUrl::given("postgresql://odm:hunter2@h:1/db?x=1", "DATABASE_URL").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn a_database_url_with_another_scheme_is_a_url_error() {
        let err = ServerUrl::given("mysql://x@y/z", "DATABASE_URL").unwrap_err();
        assert!(matches!(err, Error::Url(_)));
        assert_eq!(
            err.to_string(),
            "invalid test server url: DATABASE_URL must start with postgresql+green://, \
             postgresql:// or postgres://"
        );
    }
}
