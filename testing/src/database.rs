//! [`TestDatabase`]: a fresh, uniquely named database that is dropped again
//! when the test is done with it.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::cluster::TempCluster;
use super::psql;
use super::url::ServerUrl;
use crate::Error;

/// A fresh database on a test server; dropping it drops the database
/// (`DROP DATABASE ... WITH (FORCE)`, so connections still open to it do not
/// keep it alive). Its `Debug` form never shows a password.
pub struct TestDatabase {
    name: String,
    server: ServerUrl,
    /// How `psql` reaches the maintenance database.
    admin: psql::Target,
    psql: PathBuf,
    /// Set by [`TestDatabase::keep`]: dropping it leaves the database.
    kept: bool,
}

impl TestDatabase {
    /// Creates a fresh database on `cluster`.
    pub fn create_on(cluster: &TempCluster) -> Result<TestDatabase, Error> {
        let server = ServerUrl::Cluster {
            port: cluster.port(),
        };
        let psql = psql::psql_program(Some(cluster.bin_dir()))?;
        TestDatabase::create(server, cluster.socket_target("postgres"), psql)
    }

    /// Creates a fresh database on the server of `url` (a
    /// `postgresql+green://`, `postgresql://` or `postgres://` URL whose user
    /// may create databases), connecting to its maintenance database
    /// `postgres`. The database's URLs are `url` naming it instead, with the
    /// same host, port and parameters.
    pub fn create_on_url(url: &str) -> Result<TestDatabase, Error> {
        let server = ServerUrl::given(url, "DATABASE_URL")?;
        let admin = server.psql_target("postgres");
        let psql = psql::psql_program(None)?;
        TestDatabase::create(server, admin, psql)
    }

    fn create(
        server: ServerUrl,
        admin: psql::Target,
        psql: PathBuf,
    ) -> Result<TestDatabase, Error> {
        let name = unique_name();
        let create = format!("CREATE DATABASE {}", psql::quote_ident(&name));
        psql::run(
            &psql,
            &admin,
            &[&create],
            &format!("creating test database {name}"),
        )?;
        Ok(TestDatabase {
            name,
            server,
            admin,
            psql,
            kept: false,
        })
    }

    /// The superuser URL of this database (`postgresql+green://...`).
    pub fn url(&self) -> String {
        self.server.green_url(None, &self.name)
    }

    /// The URL of this database for `user` with `password`.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        self.server.green_url(Some((user, password)), &self.name)
    }

    /// The database's name (`odm_test_<pid>_<stamp>_<n>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The superuser URL of the server's maintenance database `postgres`.
    pub fn server_url(&self) -> String {
        self.server.green_url(None, "postgres")
    }

    /// Keeps the database: it is not dropped, and its URL is returned (to
    /// look at after a failed test). On a [`TempCluster`] it still goes
    /// when the cluster does; on a server named by `DATABASE_URL` it stays
    /// until dropped by hand.
    pub fn keep(mut self) -> String {
        self.kept = true;
        self.url()
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("psql", &self.psql)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let drop_sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            psql::quote_ident(&self.name)
        );
        if let Err(e) = psql::run(
            &self.psql,
            &self.admin,
            &[&drop_sql],
            &format!("dropping test database {}", self.name),
        ) {
            log::warn!("{e}");
        }
    }
}

/// `odm_test_<pid>_<stamp>_<n>`: the process id and a per-process stamp keep
/// names apart across processes (and machines sharing a `DATABASE_URL`), the
/// counter within one.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static STAMP: OnceLock<u32> = OnceLock::new();
    let stamp = *STAMP.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0)
    });
    format!(
        "odm_test_{}_{stamp:08x}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
