//! libpq's environment against a real server: connecting with nothing but
//! `PG*` variables, with a password from a `.pgpass` file (found through
//! `HOME` or `PGPASSFILE`), the URL winning over the variables, and a
//! password file that others may read being ignored.
//!
//! Run: `cargo test --test libpq_environment`

mod green_tasks;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use green_tasks::on_green;
use odm::pg::{Client, Config, Environment, Error};
use odm::testing::{
    shared_cluster, TestDatabase, MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER,
};

/// A fresh database on the process's test cluster, and the cluster's port.
fn database() -> (TestDatabase, u16) {
    let cluster = shared_cluster().unwrap();
    (TestDatabase::create_on(cluster).unwrap(), cluster.port())
}

/// A private directory for a password file, removed when dropped.
struct PassDir(PathBuf);

impl PassDir {
    fn new(name: &str) -> PassDir {
        let dir = std::env::temp_dir().join(format!("odm-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        PassDir(dir)
    }

    /// Writes `file` in the directory with `text` and the permission `mode`.
    fn write(&self, file: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PassDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Connects with `config` and reports who, where and as which application.
fn whoami(config: Config) -> Result<(String, String, String), Error> {
    on_green(move || {
        let client = Client::connect(&config)?;
        let row = client.query_one(
            "SELECT current_user::text, current_database()::text, \
             current_setting('application_name')",
            &[],
        )?;
        Ok((row.get(0), row.get(1), row.get(2)))
    })
}

#[test]
fn a_client_connects_with_nothing_but_the_pg_variables() {
    let (db, port) = database();
    let env = Environment::from_vars([
        ("PGHOST", "127.0.0.1".to_owned()),
        ("PGPORT", port.to_string()),
        ("PGUSER", SCRAM_USER.to_owned()),
        ("PGPASSWORD", SCRAM_PASSWORD.to_owned()),
        ("PGDATABASE", db.name().to_owned()),
        ("PGAPPNAME", "from-env".to_owned()),
        ("PGSSLMODE", "disable".to_owned()),
        ("PGCONNECT_TIMEOUT", "5".to_owned()),
    ]);
    let config = Config::from_env(&env).unwrap();
    assert_eq!(
        whoami(config).unwrap(),
        (SCRAM_USER.into(), db.name().into(), "from-env".into())
    );
}

#[test]
fn the_url_wins_over_the_variables_and_they_fill_what_it_leaves_out() {
    let (db, port) = database();
    let env = Environment::from_vars([
        ("PGHOST", "127.0.0.1".to_owned()),
        ("PGPORT", port.to_string()),
        ("PGUSER", SCRAM_USER.to_owned()),
        ("PGPASSWORD", SCRAM_PASSWORD.to_owned()),
        ("PGDATABASE", "no_such_database".to_owned()),
    ]);
    // The URL names the database and the user with their password; the
    // host and port come from the environment.
    let url = format!(
        "postgresql+green://{MD5_USER}:{MD5_PASSWORD}@/{}?application_name=from-url",
        db.name()
    );
    let config = Config::parse_with_env(&url, &env).unwrap();
    assert_eq!(
        whoami(config).unwrap(),
        (MD5_USER.into(), db.name().into(), "from-url".into())
    );
}

#[test]
fn a_pgpass_file_in_home_gives_the_password_for_its_host_port_database_and_user() {
    let (db, port) = database();
    let dir = PassDir::new("pgpass-home");
    dir.write(
        ".pgpass",
        &format!(
            "# test cluster\n\
             127.0.0.1:{port}:{db}:{SCRAM_USER}:{SCRAM_PASSWORD}\n\
             *:*:*:{MD5_USER}:{MD5_PASSWORD}\n",
            db = db.name()
        ),
        0o600,
    );
    let env = Environment::from_vars([("HOME", dir.path().to_str().unwrap())]);
    for user in [SCRAM_USER, MD5_USER] {
        let url = format!("postgresql://{user}@127.0.0.1:{port}/{}", db.name());
        let config = Config::parse_with_env(&url, &env).unwrap();
        assert_eq!(whoami(config).unwrap().0, user);
    }
}

#[test]
fn pgpassfile_names_the_password_file_and_one_others_may_read_is_ignored() {
    let (db, port) = database();
    let dir = PassDir::new("pgpassfile");
    let line = format!("127.0.0.1:{port}:*:{SCRAM_USER}:{SCRAM_PASSWORD}\n");
    let open = dir.write("open", &line, 0o644);
    let url = format!("postgresql://{SCRAM_USER}@127.0.0.1:{port}/{}", db.name());
    let env = Environment::from_vars([("PGPASSFILE", open.to_str().unwrap())]);
    let config = Config::parse_with_env(&url, &env).unwrap();
    assert_eq!(config.password(), None);
    match whoami(config) {
        Err(err @ Error::Auth(_)) => assert!(err.to_string().contains("none was given")),
        other => panic!("expected an authentication error, got {other:?}"),
    }
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = Config::parse_with_env(&url, &env).unwrap();
    assert_eq!(whoami(config).unwrap().0, SCRAM_USER);
}

#[test]
fn an_engine_built_from_the_environment_runs_queries() {
    let (db, port) = database();
    let env = Environment::from_vars([
        ("PGPORT", port.to_string()),
        ("PGUSER", SCRAM_USER.to_owned()),
        ("PGPASSWORD", SCRAM_PASSWORD.to_owned()),
    ]);
    let url = format!("postgresql+green://127.0.0.1/{}?pool_size=2", db.name());
    let (config, options) = odm::pool::parse_url_with_env(&url, &env).unwrap();
    assert_eq!(options.get_max_size(), 2);
    let engine = odm::Engine::with_options(config, options);
    let user: String = on_green(move || {
        let conn = engine.pool().acquire().unwrap();
        conn.query_one("SELECT current_user::text", &[])
            .unwrap()
            .get(0)
    });
    assert_eq!(user, SCRAM_USER);
}
