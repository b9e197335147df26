//! Tests of `odm::testing`: throwaway clusters and test databases, checked
//! with `psql` against the real servers they start.

mod green_tasks;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use green_tasks::on_green;
use odm::testing::{
    find_server_bin_dir_in, shared_cluster, test_database, TempCluster, TestDatabase,
    CLEARTEXT_PASSWORD, CLEARTEXT_USER, MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER,
    SUPERUSER, SUPERUSER_PASSWORD,
};
use odm::Error;

/// `psql -X` connected to the database of `url`: the password goes through
/// the environment (`PGPASSWORD`), never the command line, where `ps` shows
/// it.
fn psql_command(url: &str) -> Command {
    // The url may carry pool settings (a DATABASE_URL's `pool_size`): read
    // them apart from the connection's.
    let (config, _) = odm::pool::parse_url(url).expect("the url parses");
    let host = match config.host() {
        odm::pg::Host::Tcp(host) => host.clone(),
        odm::pg::Host::Unix(dir) => dir.display().to_string(),
    };
    let mut command = Command::new("psql");
    command
        .args(["-X", "-h", &host, "-p", &config.port().to_string()])
        .args(["-U", config.user(), "-d", config.dbname()])
        .env_remove("PGPASSWORD");
    if let Some(password) = config.password() {
        command.env("PGPASSWORD", password);
    }
    command
}

/// Runs `sql` through `psql` against a `postgresql+green://` URL (its query
/// parameters, which may be odm's own, left out) and returns the unaligned,
/// tuples-only output, or psql's error text.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = psql_command(url)
        .args(["-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// The postmaster's process id, from `postmaster.pid`.
fn postmaster_pid(data_dir: &Path) -> u32 {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

/// True while a process with `pid` runs a postgres server.
fn postgres_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains("postgres"))
        .unwrap_or(false)
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn a_cluster_starts_and_accepts_the_superuser_over_tcp_with_scram() {
    let cluster = TempCluster::start().unwrap();
    assert_eq!(
        cluster.url(),
        format!(
            "postgresql+green://odm:odmtest@127.0.0.1:{}/postgres",
            cluster.port()
        )
    );
    let who = psql(
        &cluster.url(),
        "SELECT current_user || ' ' || rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .unwrap();
    assert_eq!(who, "odm true");
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    assert!(cluster
        .socket_dir()
        .join(format!(".s.PGSQL.{}", cluster.port()))
        .exists());
}

#[test]
fn every_test_role_logs_in_over_tcp_with_its_own_method_and_password() {
    let cluster = TempCluster::start().unwrap();
    let roles = [
        (SUPERUSER, SUPERUSER_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
        (SCRAM_USER, SCRAM_PASSWORD),
        (CLEARTEXT_USER, CLEARTEXT_PASSWORD),
    ];
    for (user, password) in roles {
        let url = cluster.url_for(user, password, "postgres");
        assert_eq!(psql(&url, "SELECT current_user").unwrap(), user);
        let wrong = cluster.url_for(user, "wrong", "postgres");
        let err = psql(&wrong, "SELECT 1").unwrap_err();
        assert!(
            err.contains("password authentication failed"),
            "{user}: {err}"
        );
    }
    let stored = psql(
        &cluster.url(),
        "SELECT string_agg(rolname || '=' || split_part(rolpassword, '$', 1), ',' ORDER BY rolname) \
         FROM pg_authid WHERE rolname LIKE 'odm%'",
    )
    .unwrap();
    let md5_hash = stored
        .split(',')
        .find(|s| s.starts_with("odm_md5="))
        .unwrap();
    assert!(md5_hash.starts_with("odm_md5=md5"), "{stored}");
    for scram in [
        "odm=SCRAM-SHA-256",
        "odm_clear=SCRAM-SHA-256",
        "odm_scram=SCRAM-SHA-256",
    ] {
        assert!(stored.split(',').any(|s| s == scram), "{stored}");
    }
    let rules = psql(
        &cluster.url(),
        "SELECT string_agg(type || ' ' || array_to_string(database, ',') || ' ' \
         || array_to_string(user_name, ',') || ' ' || auth_method, '; ' \
         ORDER BY line_number) FROM pg_hba_file_rules",
    )
    .unwrap();
    assert_eq!(
        rules,
        "local all all trust; local replication all trust; host all odm_md5 md5; \
         host all odm_clear password; host all all scram-sha-256"
    );
}

#[test]
fn the_odm_driver_logs_in_as_every_test_role_with_its_own_method() {
    let db = test_database().unwrap();
    let roles = [
        (SUPERUSER, SUPERUSER_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
        (SCRAM_USER, SCRAM_PASSWORD),
        (CLEARTEXT_USER, CLEARTEXT_PASSWORD),
    ];
    for (user, password) in roles {
        let url = db.url_as(user, password);
        let name = db.name().to_string();
        let (who, database) = on_green(move || {
            let config = odm::pg::Config::parse(&url).unwrap();
            let client = odm::pg::Client::connect(&config).unwrap();
            let row = client
                .query_one("SELECT current_user::text, current_database()::text", &[])
                .unwrap();
            (row.get::<_, String>(0), row.get::<_, String>(1))
        });
        assert_eq!((who.as_str(), database), (user, name));
    }
}

#[test]
fn two_clusters_run_at_once_without_colliding() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(TempCluster::start);
        let b = s.spawn(TempCluster::start);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    assert_ne!(a.socket_dir(), b.socket_dir());
    psql(&a.url(), "CREATE TABLE only_in_a (id int)").unwrap();
    assert_eq!(
        psql(
            &a.url(),
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        )
        .unwrap(),
        "1"
    );
    assert_eq!(
        psql(
            &b.url(),
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        )
        .unwrap(),
        "0"
    );
}

#[test]
fn a_restarted_cluster_serves_again_on_its_port_and_is_still_removed_on_drop() {
    let mut cluster = TempCluster::start().unwrap();
    let data_dir = cluster.data_dir().to_path_buf();
    let url = cluster.url();
    psql(
        &url,
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)",
    )
    .unwrap();
    let before = postmaster_pid(&data_dir);
    cluster.restart().unwrap();
    let after = postmaster_pid(&data_dir);
    assert_ne!(before, after, "a new postmaster runs");
    assert!(!postgres_alive(before));
    assert!(cluster.is_running());
    assert_eq!(psql(&url, "SELECT x FROM kept").unwrap(), "7");
    drop(cluster);
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(!postgres_alive(after), "postmaster {after} still runs");
}

#[test]
fn dropping_a_cluster_stops_the_server_and_removes_its_data_dir() {
    let cluster = TempCluster::start().unwrap();
    assert_eq!(cluster.port_attempts(), 1);
    let data_dir = cluster.data_dir().to_path_buf();
    let url = cluster.url();
    let pid = postmaster_pid(&data_dir);
    assert!(postgres_alive(pid));
    drop(cluster);
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(!postgres_alive(pid), "postmaster {pid} still runs");
    assert!(psql(&url, "SELECT 1").is_err());
}

#[test]
fn a_cluster_is_stopped_and_removed_when_the_test_panics() {
    let seen: std::sync::Mutex<Option<(PathBuf, u32)>> = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let cluster = TempCluster::start().unwrap();
        let data_dir = cluster.data_dir().to_path_buf();
        *seen.lock().unwrap() = Some((data_dir.clone(), postmaster_pid(&data_dir)));
        panic!("the test failed while the cluster ran");
    });
    assert!(result.is_err());
    let (data_dir, pid) = seen.lock().unwrap().take().unwrap();
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(!postgres_alive(pid), "postmaster {pid} still runs");
}

/// Also run as a child process by the next test, which then checks that the
/// shared cluster is cleaned up once that process has exited.
#[test]
fn the_shared_cluster_is_started_once_per_process() {
    let first = shared_cluster().unwrap();
    let second = shared_cluster().unwrap();
    assert!(std::ptr::eq(first, second));
    assert_eq!(psql(&first.url(), "SELECT 1").unwrap(), "1");
    println!("ODM_SHARED_DATA_DIR={}", first.data_dir().display());
}

/// The scratch directories (clusters and the initdb template) a process
/// with `pid` has in the temp directory.
fn scratch_dirs_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("odm-pg-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

#[test]
fn the_shared_cluster_stops_and_is_removed_when_its_process_exits() {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_shared_cluster_is_started_once_per_process",
            "--nocapture",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let data_dir = stdout
        .lines()
        .find_map(|line| line.split_once("ODM_SHARED_DATA_DIR=").map(|(_, dir)| dir))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no data dir printed: {stdout}"));
    assert!(data_dir.starts_with(std::env::temp_dir()));
    assert!(
        data_dir
            .to_string_lossy()
            .contains(&format!("/odm-pg-{pid}-")),
        "{}",
        data_dir.display()
    );
    // The child exited without dropping the static; its watchdogs clean up
    // the cluster and the initdb template.
    assert!(
        wait_until(Duration::from_secs(30), || scratch_dirs_of(pid).is_empty()),
        "{:?} still exist after their process exited",
        scratch_dirs_of(pid)
    );
    assert!(!data_dir.exists());
}

#[test]
fn test_database_gives_each_caller_a_distinct_database_that_drop_removes() {
    let a = test_database().unwrap();
    let b = test_database().unwrap();
    assert_ne!(a.name(), b.name());
    assert!(a.name().starts_with("odm_test_"));
    assert_eq!(
        psql(&a.url(), "SELECT current_database()").unwrap(),
        a.name()
    );
    assert_eq!(
        psql(&b.url(), "SELECT current_database()").unwrap(),
        b.name()
    );
    assert_eq!(
        psql(&a.server_url(), "SELECT current_database()").unwrap(),
        "postgres"
    );
    let server = a.server_url();
    let exists = |name: &str| {
        psql(
            &server,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
        )
        .unwrap()
    };
    let name = a.name().to_string();
    assert_eq!(exists(&name), "1");
    drop(a);
    assert_eq!(exists(&name), "0");
    assert_eq!(exists(b.name()), "1");
}

#[test]
fn dropping_a_test_database_succeeds_while_a_connection_to_it_is_open() {
    let db = test_database().unwrap();
    let mut holder = psql_command(&db.url())
        .args(["-q", "-c", "SELECT pg_sleep(60)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = db.server_url();
    let name = db.name().to_string();
    let connected = || {
        psql(
            &server,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"),
        )
        .unwrap()
            != "0"
    };
    assert!(wait_until(Duration::from_secs(30), connected));
    drop(db);
    assert_eq!(
        psql(
            &server,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")
        )
        .unwrap(),
        "0"
    );
    let status = holder.wait().unwrap();
    assert!(!status.success(), "the held connection was terminated");
}

/// Also run as a child process with `DATABASE_URL` set, by the next test.
#[test]
fn a_test_database_url_logs_in_as_another_role() {
    let db = test_database().unwrap();
    println!("ODM_TEST_DATABASE_URL={}", db.url());
    let url = db.url_as(SCRAM_USER, SCRAM_PASSWORD);
    assert!(url.starts_with("postgresql+green://odm_scram:scramsecret@"));
    assert_eq!(
        psql(&url, "SELECT current_user || '@' || current_database()").unwrap(),
        format!("odm_scram@{}", db.name())
    );
}

#[test]
fn test_database_uses_the_server_of_database_url_when_it_is_set() {
    let cluster = TempCluster::start().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_test_database_url_logs_in_as_another_role",
            "--nocapture",
        ])
        .env("DATABASE_URL", format!("{}?pool_size=4", cluster.url()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let url = stdout
        .lines()
        .find_map(|line| {
            line.split_once("ODM_TEST_DATABASE_URL=")
                .map(|(_, url)| url)
        })
        .unwrap_or_else(|| panic!("no url printed: {stdout}"));
    let prefix = format!(
        "postgresql+green://odm:odmtest@127.0.0.1:{}/odm_test_",
        cluster.port()
    );
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.ends_with("?pool_size=4"), "{url}");
    // The child dropped its database on the DATABASE_URL server.
    assert_eq!(
        psql(
            &cluster.url(),
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'odm_test_%'"
        )
        .unwrap(),
        "0"
    );
}

#[test]
fn a_database_url_server_gets_databases_that_keep_its_query_parameters() {
    let cluster = shared_cluster().unwrap();
    let url = format!(
        "postgres://odm:odmtest@127.0.0.1:{}/postgres?pool_size=3&application_name=odmtest",
        cluster.port()
    );
    let db = TestDatabase::create_on_url(&url).unwrap();
    assert_eq!(
        db.url(),
        format!(
            "postgresql+green://odm:odmtest@127.0.0.1:{}/{}?pool_size=3&application_name=odmtest",
            cluster.port(),
            db.name()
        )
    );
    // psql cannot take pool_size: connect with the libpq-only part.
    let libpq = format!(
        "postgresql://odm:odmtest@127.0.0.1:{}/{}",
        cluster.port(),
        db.name()
    );
    assert_eq!(
        psql(&libpq, "SELECT current_database()").unwrap(),
        db.name()
    );
}

#[test]
fn a_database_url_with_an_unknown_scheme_is_a_url_error() {
    let err = TestDatabase::create_on_url("mysql://odm@localhost/odm").unwrap_err();
    assert!(matches!(err, odm::testing::Error::Url(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid test server url: DATABASE_URL must start with postgresql+green://, postgresql:// or postgres://"
    );
}

#[test]
fn a_test_server_error_goes_into_an_odm_error_with_question_mark_keeping_its_message() {
    fn create(url: &str) -> odm::Result<TestDatabase> {
        Ok(TestDatabase::create_on_url(url)?)
    }
    let err = create("mysql://odm@localhost/odm").unwrap_err();
    assert!(
        matches!(err, Error::Testing(odm::testing::Error::Url(_))),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid test server url: DATABASE_URL must start with postgresql+green://, postgresql:// or postgres://"
    );
}

#[test]
fn a_database_url_names_the_test_database_and_role_by_odms_own_parsing() {
    let cluster = shared_cluster().unwrap();
    let url = format!(
        "postgres://odm:odmtest@127.0.0.1:{}/postgres?dbname=postgres&application_name=x",
        cluster.port()
    );
    let db = TestDatabase::create_on_url(&url).unwrap();
    let config = odm::pg::Config::parse(&db.url_as(SCRAM_USER, SCRAM_PASSWORD)).unwrap();
    assert_eq!(config.dbname(), db.name());
    assert_eq!(config.user(), SCRAM_USER);
    assert_eq!(config.password(), Some(SCRAM_PASSWORD));
    assert_eq!(config.port(), cluster.port());
}

#[test]
fn a_database_url_server_that_refuses_is_a_test_server_error_without_the_password() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = TestDatabase::create_on_url(&format!(
        "postgresql://odm:hunter2@127.0.0.1:{port}/postgres?connect_timeout=5"
    ))
    .unwrap_err();
    assert!(matches!(err, odm::testing::Error::Server(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("test server: creating test database odm_test_"),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

fn fake_server_binaries(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for name in ["initdb", "postgres"] {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("odm-bin-search-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn missing_server_binaries_are_a_clear_error_naming_the_package_and_database_url() {
    let empty = scratch("empty");
    let err = find_server_bin_dir_in(empty.as_os_str(), &empty.join("no-such-root")).unwrap_err();
    assert!(matches!(err, odm::testing::Error::Server(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "test server: postgresql server binaries (initdb, postgres) not found on PATH, via \
             pg_config --bindir or in {}/<version>/bin: install the postgresql server package \
             (e.g. `apt-get install postgresql`) or set DATABASE_URL to an existing server",
            empty.join("no-such-root").display()
        )
    );
    let _ = std::fs::remove_dir_all(empty);
}

#[test]
fn the_binary_search_prefers_the_path_then_the_highest_versioned_folder() {
    let root = scratch("search");
    let on_path = root.join("on-path");
    fake_server_binaries(&on_path);
    let versioned = root.join("versioned");
    for version in ["9.6", "15", "16"] {
        fake_server_binaries(&versioned.join(version).join("bin"));
    }
    std::fs::create_dir_all(versioned.join("common")).unwrap();
    let only_initdb = root.join("only-initdb");
    std::fs::create_dir_all(&only_initdb).unwrap();
    std::fs::copy(on_path.join("initdb"), only_initdb.join("initdb")).unwrap();

    let path = std::env::join_paths([&only_initdb, &on_path]).unwrap();
    assert_eq!(find_server_bin_dir_in(&path, &versioned).unwrap(), on_path);
    assert_eq!(
        find_server_bin_dir_in(only_initdb.as_os_str(), &versioned).unwrap(),
        versioned.join("16").join("bin")
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_cluster_from_a_folder_without_server_binaries_is_a_test_server_error() {
    let empty = scratch("no-binaries");
    let err = TempCluster::start_with_bin_dir(&empty).unwrap_err();
    assert!(matches!(err, odm::testing::Error::Server(_)), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "test server: cannot run initdb in {}",
            empty.display()
        )),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(empty);
}
