//! [`PgBouncer`]: a throwaway PgBouncer in transaction pooling mode in front
//! of a [`TempCluster`].
//!
//! Clients log in to PgBouncer with the cluster's own roles and passwords:
//! its `auth_file` holds the SCRAM (and md5) secrets read from the cluster's
//! `pg_authid`, so PgBouncer checks a client's password and then logs in to
//! the server with the client's SCRAM keys — no password is written
//! anywhere. It runs under the same watchdog as a cluster's server, so it is
//! stopped and its directory removed on drop, or when the process dies.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::binaries::{find_on_path, is_executable};
use super::cluster::{free_port, open_log};
use super::psql;
use super::scratch::{tail_of, RunAs, ScratchDir};
use super::server_process::ServerProcess;
use super::url::cluster_url;
use super::{TempCluster, SUPERUSER, SUPERUSER_PASSWORD};
use crate::Error;

/// Where PgBouncer is looked for after `PATH` (Debian installs it in
/// `/usr/sbin`, which a normal user's `PATH` may lack).
const SEARCH_DIRS: [&str; 3] = ["/usr/sbin", "/usr/bin", "/usr/local/bin"];

/// The first PgBouncer version with protocol-level prepared statements in
/// transaction mode (`max_prepared_statements`).
const PREPARED_STATEMENTS_SINCE: (u32, u32) = (1, 21);

/// How long PgBouncer may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many fresh ports are tried when another process takes the chosen one.
const PORT_ATTEMPTS: usize = 8;

/// A PgBouncer in front of a [`TempCluster`], in transaction pooling mode
/// with `pool_size` server connections per database and user, listening on
/// a free port of 127.0.0.1. Any database of the cluster is reachable
/// through it by name.
///
/// ```no_run
/// use odm_testing::{PgBouncer, TempCluster};
///
/// let cluster = TempCluster::start()?;
/// let bouncer = PgBouncer::start(&cluster, 4)?;
/// // e.g. odm::Pool::from_url(&bouncer.url()) in odm
/// println!("through pgbouncer: {}", bouncer.url());
/// # Ok::<(), odm_testing::Error>(())
/// ```
#[derive(Debug)]
pub struct PgBouncer {
    // Field order matters: the process stops before its directory goes.
    process: ServerProcess,
    /// Watchdogs of attempts that lost their port; kept leashed until the
    /// bouncer is dropped, as they remove the directory.
    _failed_attempts: Vec<ServerProcess>,
    scratch: ScratchDir,
    port: u16,
    pool_size: usize,
    version: String,
    /// Where the running PgBouncer wrote its process id.
    pid_file: PathBuf,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `cluster` with `pool_size` server
    /// connections per database and user (also the most a database gets);
    /// it accepts connections when this returns.
    ///
    /// # Errors
    ///
    /// [`Error::Server`] when PgBouncer is not installed (install the
    /// `pgbouncer` package), `pool_size` is 0, or it does not start.
    pub fn start(cluster: &TempCluster, pool_size: usize) -> Result<PgBouncer, Error> {
        if pool_size == 0 {
            return Err(Error::Server(
                "a pgbouncer pool_size must be at least 1".to_string(),
            ));
        }
        let program = find_pgbouncer()?;
        let version = version_of(&program)?;
        let run_as = RunAs::for_server()?;
        let scratch = ScratchDir::create(run_as)?;
        let auth_file = scratch.path().join("userlist.txt");
        write_private(&auth_file, &auth_file_for(cluster)?, run_as)?;

        let mut failed_attempts = Vec::new();
        let (process, port, attempt) = loop {
            let attempt = failed_attempts.len() + 1;
            let port = free_port()?;
            let config = scratch.path().join(format!("pgbouncer-{attempt}.ini"));
            write_private(
                &config,
                &config_text(
                    cluster.port(),
                    port,
                    pool_size,
                    &auth_file,
                    &scratch.path().join(format!("pgbouncer-{attempt}.pid")),
                    &version,
                ),
                run_as,
            )?;
            let log_path = scratch.path().join(format!("pgbouncer-{attempt}.log"));
            let exited_marker = scratch.path().join(format!("pgbouncer-{attempt}.exited"));
            // Dropped, it is stopped with SIGTERM (immediate shutdown, see
            // `Drop`); should the process die, its watchdog stops it with
            // SIGINT, PgBouncer's safe shutdown, which the gone clients
            // cannot hold up.
            let command = vec![
                program.to_string_lossy().into_owned(),
                config.to_string_lossy().into_owned(),
            ];
            let mut process = ServerProcess::spawn(
                &command,
                scratch.path(),
                scratch.path(),
                &exited_marker,
                open_log(&log_path)?,
                run_as,
            )
            .map_err(|e| Error::Server(format!("cannot start the pgbouncer watchdog: {e}")))?;
            match wait_listening(&mut process, &log_path, port) {
                Ok(()) => break (process, port, attempt),
                Err(tail) if attempt < PORT_ATTEMPTS && tail.contains("in use") => {
                    failed_attempts.push(process);
                }
                Err(tail) => {
                    return Err(Error::Server(format!(
                        "pgbouncer did not start; its log:\n{tail}"
                    )))
                }
            }
        };
        Ok(PgBouncer {
            pid_file: scratch.path().join(format!("pgbouncer-{attempt}.pid")),
            process,
            _failed_attempts: failed_attempts,
            scratch,
            port,
            pool_size,
            version,
        })
    }

    /// The superuser URL of the cluster's maintenance database through
    /// PgBouncer, with `statement_cache=false` (named prepared statements do
    /// not survive transaction pooling before PgBouncer 1.21).
    pub fn url(&self) -> String {
        self.url_for(SUPERUSER, SUPERUSER_PASSWORD, "postgres")
    }

    /// A URL through PgBouncer for `user` with `password` to database
    /// `dbname`, with `statement_cache=false`.
    pub fn url_for(&self, user: &str, password: &str, dbname: &str) -> String {
        cluster_url(self.port, user, password, dbname) + "?statement_cache=false"
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server connections per database and user.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The version PgBouncer reports (`"1.18.0"`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// True when this PgBouncer keeps protocol-level prepared statements in
    /// transaction mode (version 1.21 or later, `max_prepared_statements`),
    /// so odm's statement cache may stay on.
    pub fn supports_prepared_statements(&self) -> bool {
        version_at_least(&self.version, PREPARED_STATEMENTS_SINCE)
    }

    /// True while PgBouncer is running.
    pub fn is_running(&mut self) -> bool {
        !self.process.has_exited()
    }

    /// The last lines of PgBouncer's log.
    pub fn log_tail(&self) -> String {
        self.scratch.newest_log_tail()
    }
}

impl Drop for PgBouncer {
    /// Stops PgBouncer at once (SIGTERM), even with client transactions in
    /// flight; the watchdog then removes the directory.
    fn drop(&mut self) {
        if !self.process.has_exited() {
            let pid = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
            if let Ok(pid) = pid.trim().parse::<u32>() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// The installed `pgbouncer`: on `PATH`, else in [`SEARCH_DIRS`].
fn find_pgbouncer() -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = find_on_path("pgbouncer", &path) {
        return Ok(found);
    }
    let dirs: OsString = std::env::join_paths(SEARCH_DIRS).unwrap_or_default();
    find_on_path("pgbouncer", &dirs)
        .filter(|p| is_executable(p))
        .ok_or_else(|| {
            Error::Server(format!(
                "pgbouncer not found on PATH or in {}: install the pgbouncer package (e.g. \
                 `apt-get install pgbouncer`)",
                SEARCH_DIRS.join(", ")
            ))
        })
}

/// The version `program --version` prints on its first line
/// (`PgBouncer 1.18.0` → `1.18.0`).
fn version_of(program: &Path) -> Result<String, Error> {
    let output = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Error::Server(format!("cannot run {}: {e}", program.display())))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .next()
        .and_then(|line| line.strip_prefix("PgBouncer "))
        .map(|version| version.trim().to_string())
        .ok_or_else(|| {
            Error::Server(format!(
                "unexpected pgbouncer --version output: {}",
                text.trim()
            ))
        })
}

/// True when the dotted `version` is at least `major.minor`.
fn version_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

/// The `auth_file` lines (`"role" "secret"`) of every role of `cluster`
/// that can log in with a password.
fn auth_file_for(cluster: &TempCluster) -> Result<String, Error> {
    let rows = psql::query(
        &psql::psql_program(Some(cluster.bin_dir()))?,
        &cluster.socket_target("postgres"),
        "SELECT rolname || '|' || rolpassword FROM pg_authid \
         WHERE rolcanlogin AND rolpassword IS NOT NULL ORDER BY rolname",
        "reading the roles' secrets for pgbouncer",
    )?;
    Ok(rows
        .lines()
        .filter_map(|row| row.split_once('|'))
        .map(|(role, secret)| format!("{} {}\n", quoted(role), quoted(secret)))
        .collect())
}

/// `value` in double quotes, as PgBouncer's files quote (`"` doubled).
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// The configuration: every database of the server on `server_port`,
/// transaction pooling with `pool_size` server connections, md5 or SCRAM
/// logins (whichever secret the role has) checked against `auth_file`;
/// protocol-level prepared statements kept when `version` has them.
fn config_text(
    server_port: u16,
    port: u16,
    pool_size: usize,
    auth_file: &Path,
    pid_file: &Path,
    version: &str,
) -> String {
    let mut text = format!(
        "; written by odm::testing::PgBouncer\n\
         [databases]\n\
         * = host=127.0.0.1 port={server_port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = md5\n\
         auth_file = {}\n\
         pool_mode = transaction\n\
         default_pool_size = {pool_size}\n\
         max_db_connections = {pool_size}\n\
         min_pool_size = 0\n\
         reserve_pool_size = 0\n\
         max_client_conn = 2000\n\
         ignore_startup_parameters = extra_float_digits\n\
         admin_users = {SUPERUSER}\n\
         server_login_retry = 1\n\
         pidfile = {}\n",
        auth_file.display(),
        pid_file.display()
    );
    if version_at_least(version, PREPARED_STATEMENTS_SINCE) {
        text.push_str("max_prepared_statements = 200\n");
    }
    text
}

/// Writes `text` to `path`, readable by its owner only (`run_as` when set).
fn write_private(path: &Path, text: &str, run_as: Option<RunAs>) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: std::io::Error| Error::Server(format!("cannot write {}: {e}", path.display()));
    std::fs::write(path, text).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    if let Some(run_as) = run_as {
        run_as.chown(path)?;
    }
    Ok(())
}

/// Waits until PgBouncer's log says it listens on `port`; on failure, the
/// end of the log.
fn wait_listening(process: &mut ServerProcess, log_path: &Path, port: u16) -> Result<(), String> {
    let listening = format!("listening on 127.0.0.1:{port}");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        if log.contains(&listening) {
            return Ok(());
        }
        if process.has_exited() {
            return Err(tail_of(log_path));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "(not listening within {READY_TIMEOUT:?})\n{}",
                tail_of(log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_statements_need_pgbouncer_1_21() {
        assert!(!version_at_least("1.18.0", PREPARED_STATEMENTS_SINCE));
        assert!(!version_at_least("1.9.0", PREPARED_STATEMENTS_SINCE));
        assert!(version_at_least("1.21.0", PREPARED_STATEMENTS_SINCE));
        assert!(version_at_least("2.0", PREPARED_STATEMENTS_SINCE));
    }

    #[test]
    fn auth_file_values_double_their_quotes() {
        assert_eq!(quoted("odm"), "\"odm\"");
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
