//! The small amount of URL handling the test servers need: building
//! `postgresql+green://` URLs and re-targeting the `DATABASE_URL` at another
//! database or user (the driver's `Config` does the real parsing).

use std::fmt;

use crate::Error;

/// The scheme of the URLs handed to odm.
pub(crate) const GREEN_SCHEME: &str = "postgresql+green://";

/// The schemes accepted in `DATABASE_URL`.
const SCHEMES: [&str; 3] = ["postgresql+green://", "postgresql://", "postgres://"];

/// Query parameters that libpq (and so `psql`) understands; odm's own
/// (`pool_size`, `statement_cache`, ...) are left out of [`ServerUrl::libpq_url`].
const LIBPQ_PARAMS: [&str; 16] = [
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
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
    /// Splits a `postgresql+green://`, `postgresql://` or `postgres://` URL.
    /// `source` names where it came from, for the error message.
    pub(crate) fn parse(url: &str, source: &str) -> Result<ServerUrl, Error> {
        let rest = SCHEMES
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| {
                Error::Config(format!(
                    "{source} must start with postgresql+green://, postgresql:// or postgres://"
                ))
            })?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, dbname) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        Ok(ServerUrl {
            userinfo: userinfo.to_string(),
            hostport: hostport.to_string(),
            dbname: dbname.to_string(),
            query: query.to_string(),
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

    /// A `postgresql://` URL that `psql` accepts, for database `dbname`
    /// (odm-only query parameters removed).
    pub(crate) fn libpq_url(&self, dbname: &str) -> String {
        let query: Vec<&str> = self
            .query
            .split('&')
            .filter(|pair| {
                let key = pair.split('=').next().unwrap_or("");
                LIBPQ_PARAMS.contains(&key)
            })
            .collect();
        self.assemble(
            "postgresql://",
            &self.userinfo,
            &encode_component(dbname),
            &query.join("&"),
        )
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
            url.libpq_url("postgres"),
            "postgresql://odm:odmtest@db.example:5433/postgres?sslmode=disable"
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
