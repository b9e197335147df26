//! The small amount of URL handling the test servers need: building
//! `postgresql+green://` URLs and re-targeting the `DATABASE_URL` at another
//! database or user (the driver's `Config` does the real parsing).

use std::fmt;

use super::psql;
use crate::pg::UrlParts;
use crate::Error;

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

/// A server URL split into the parts a test database replaces.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    /// `user[:password]`, still percent-encoded; may be empty.
    userinfo: String,
    /// `host[:port]` (or a comma-separated host list), may be empty.
    hostport: String,
    /// Percent-encoded database name; may be empty.
    dbname: String,
    /// The query string without `?`; may be empty.
    query: String,
}

impl ServerUrl {
    /// Splits a `postgresql+green://`, `postgresql://` or `postgres://` URL
    /// by the driver's rules ([`UrlParts`]: an ambiguous user name or
    /// password is refused, never misread). `source` names where it came
    /// from, for the error message.
    pub(crate) fn parse(url: &str, source: &str) -> Result<ServerUrl, Error> {
        let rest = SCHEMES
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| {
                Error::Config(format!(
                    "{source} must start with postgresql+green://, postgresql:// or postgres://"
                ))
            })?;
        let parts = UrlParts::split(rest)?;
        Ok(ServerUrl {
            userinfo: parts.userinfo().unwrap_or_default().to_string(),
            hostport: parts.host_port.to_string(),
            dbname: parts.path.to_string(),
            query: parts.query.unwrap_or_default().to_string(),
        })
    }

    /// This server's URL (`postgresql+green://`) for database `dbname`, as
    /// `user`/`password` when given, else as the original user.
    pub(crate) fn green_url(&self, credentials: Option<(&str, &str)>, dbname: &str) -> String {
        let userinfo = match credentials {
            Some((user, password)) => encode_userinfo(user, password),
            None => self.userinfo.clone(),
        };
        self.assemble(
            GREEN_SCHEME,
            &userinfo,
            &encode_component(dbname),
            &self.query,
        )
    }

    /// This URL (`postgresql+green://`, same user, database and settings)
    /// aimed at `hostport` instead of its own host and port.
    pub(crate) fn green_url_at(&self, hostport: &str) -> String {
        ServerUrl {
            hostport: hostport.to_string(),
            ..self.clone()
        }
        .assemble(GREEN_SCHEME, &self.userinfo, &self.dbname, &self.query)
    }

    /// How `psql` reaches database `dbname`: a `postgresql://` URL with
    /// only the parameters libpq knows and without the password, which is
    /// handed over on its own (from the query's `password=`, else the
    /// userinfo's), decoded.
    pub(crate) fn psql_target(&self, dbname: &str) -> psql::Target {
        let (user, userinfo_password) = match self.userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (self.userinfo.as_str(), None),
        };
        let mut query_password = None;
        let query: Vec<&str> = self
            .query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if key == "password" {
                    query_password = Some(value);
                }
                LIBPQ_PARAMS.contains(&key)
            })
            .collect();
        psql::Target {
            conninfo: self.assemble(
                "postgresql://",
                user,
                &encode_component(dbname),
                &query.join("&"),
            ),
            password: query_password.or(userinfo_password).map(percent_decode),
        }
    }

    /// The database the URL names, still percent-encoded (empty if none).
    pub(crate) fn dbname(&self) -> &str {
        &self.dbname
    }

    fn assemble(&self, scheme: &str, userinfo: &str, dbname: &str, query: &str) -> String {
        let mut url = String::from(scheme);
        if !userinfo.is_empty() {
            url.push_str(userinfo);
            url.push('@');
        }
        url.push_str(&self.hostport);
        url.push('/');
        url.push_str(dbname);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

impl fmt::Debug for ServerUrl {
    /// Shows the URL with the password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.userinfo.split(':').next().unwrap_or("");
        let userinfo = if self.userinfo.contains(':') {
            format!("{user}:***")
        } else {
            user.to_string()
        };
        f.write_str(&self.assemble(GREEN_SCHEME, &userinfo, &self.dbname, &self.query))
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

/// `user:password`, each percent-encoded.
pub(crate) fn encode_userinfo(user: &str, password: &str) -> String {
    format!("{}:{}", encode_component(user), encode_component(password))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn encode_component(text: &str) -> String {
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
        let url = ServerUrl::parse(
            "postgres://odm:odmtest@db.example:5433/odmtests?pool_size=7&sslmode=disable",
            "DATABASE_URL",
        )
        .unwrap();
        assert_eq!(url.dbname(), "odmtests");
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
    }

    #[test]
    fn a_url_is_aimed_at_another_host_and_port_keeping_everything_else() {
        let url =
            ServerUrl::parse("postgres://odm:p%40ss@db.example:5433/d%20b?x=1", "the url").unwrap();
        assert_eq!(
            url.green_url_at("127.0.0.1:9"),
            "postgresql+green://odm:p%40ss@127.0.0.1:9/d%20b?x=1"
        );
    }

    #[test]
    fn the_psql_target_carries_the_password_outside_its_connection_string() {
        let url = ServerUrl::parse(
            "postgres://odm:p%40ss%2Fw0rd@h:1/db?password=from%20query&pool_size=2",
            "DATABASE_URL",
        )
        .unwrap();
        let target = url.psql_target("postgres");
        assert_eq!(target.conninfo, "postgresql://odm@h:1/postgres");
        assert_eq!(target.password.as_deref(), Some("from query"));
        let target = ServerUrl::parse("postgres://odm:p%40ss@h/db", "DATABASE_URL")
            .unwrap()
            .psql_target("x");
        assert_eq!(target.conninfo, "postgresql://odm@h/x");
        assert_eq!(target.password.as_deref(), Some("p@ss"));
        assert!(!format!("{target:?}").contains("p@ss"));
        let target = ServerUrl::parse("postgres://odm@h/db", "DATABASE_URL")
            .unwrap()
            .psql_target("x");
        assert_eq!(target.password, None);
    }

    #[test]
    fn a_database_url_with_a_raw_slash_in_its_password_is_refused_without_it() {
        let err = ServerUrl::parse("postgres://odm:hun/ter2@h/db", "DATABASE_URL").unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(!err.to_string().contains("hun"), "{err}");
        assert!(!err.to_string().contains("ter2"), "{err}");
    }

    #[test]
    fn the_debug_form_of_a_server_url_hides_the_password() {
        let url = ServerUrl::parse("postgresql://odm:hunter2@h:1/db?x=1", "DATABASE_URL").unwrap();
        assert_eq!(format!("{url:?}"), "postgresql+green://odm:***@h:1/db?x=1");
    }

    #[test]
    fn a_database_url_with_another_scheme_is_a_config_error() {
        let err = ServerUrl::parse("mysql://x@y/z", "DATABASE_URL").unwrap_err();
        assert!(matches!(err, Error::Config(_)));
        assert_eq!(
            err.to_string(),
            "invalid configuration: DATABASE_URL must start with postgresql+green://, \
             postgresql:// or postgres://"
        );
    }
}
