//! [`Standby`]: a throwaway streaming-replication standby of a
//! [`TempCluster`] started with [`TempCluster::start_primary`], and
//! [`ReplicatedCluster`], the pair of both (with the primary stoppable, for
//! failover tests).
//!
//! The standby's data directory is a `pg_basebackup -R` of the primary
//! (which writes `standby.signal` and `primary_conninfo`); its server runs
//! under the same watchdog as a cluster's, so it is stopped and its
//! directory removed on drop, or when the process dies.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::binaries::is_executable;
use super::cluster::{free_port, open_log, postgres_command, Transport, Wal};
use super::file_backup::file_base_backup;
use super::psql;
use super::scratch::{tail_of, RunAs, ScratchDir};
use super::server_process::ServerProcess;
use super::url::cluster_url;
use super::{TempCluster, SUPERUSER, SUPERUSER_PASSWORD};
use crate::Error;

/// How long a standby may take to accept connections, and a promotion to
/// finish.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How many fresh ports are tried when another process takes the chosen one.
const PORT_ATTEMPTS: usize = 8;

/// A hot standby streaming from a primary [`TempCluster`].
///
/// ```no_run
/// use odm_testing::{Standby, TempCluster};
///
/// let primary = TempCluster::start_primary()?;
/// let standby = Standby::start_from(&primary)?;
/// assert!(standby.is_in_recovery()?);
/// standby.wait_caught_up(&primary)?;
/// standby.promote()?;
/// assert!(!standby.is_in_recovery()?);
/// # Ok::<(), odm_testing::Error>(())
/// ```
#[derive(Debug)]
pub struct Standby {
    // Field order matters: the server stops before its directory goes.
    server: ServerProcess,
    /// Watchdogs of attempts that lost their port; kept leashed until the
    /// standby is dropped, as they remove the directory.
    _failed_attempts: Vec<ServerProcess>,
    scratch: ScratchDir,
    port: u16,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
}

impl Standby {
    /// Takes a base backup of `primary` (`pg_basebackup -R -X stream` over
    /// its unix socket) into a fresh directory and starts it as a hot
    /// standby on a free port; it accepts read-only connections when this
    /// returns. The primary must have been started with
    /// [`TempCluster::start_primary`].
    ///
    /// When the primary's installation has no `pg_basebackup` (the
    /// `@embedded-postgres` packages of 16 and later), the copy is taken
    /// as [`Standby::start_by_file_copy_from`] takes it.
    pub fn start_from(primary: &TempCluster) -> Result<Standby, Error> {
        let copy = match is_executable(&primary.bin_dir().join("pg_basebackup")) {
            true => Copy::BaseBackup,
            false => Copy::Files,
        };
        Standby::start_with(primary, copy)
    }

    /// Starts a hot standby of `primary` as [`Standby::start_from`] does,
    /// but copies the data directory by hand under the low-level backup
    /// API (`pg_backup_start`, a file copy, `pg_backup_stop`) instead of
    /// running `pg_basebackup`; the standby streams the WAL it lacks.
    pub fn start_by_file_copy_from(primary: &TempCluster) -> Result<Standby, Error> {
        Standby::start_with(primary, Copy::Files)
    }

    fn start_with(primary: &TempCluster, copy: Copy) -> Result<Standby, Error> {
        let bin_dir = primary.bin_dir().to_path_buf();
        let run_as = RunAs::for_server()?;
        let scratch = ScratchDir::create(run_as)?;
        let socket_dir = scratch.subdir("socket", run_as)?;
        let data_dir = scratch.path().join("data");
        match copy {
            Copy::BaseBackup => base_backup(primary, &data_dir, run_as)?,
            Copy::Files => file_base_backup(primary, &data_dir, run_as)?,
        }
        let mut failed_attempts = Vec::new();
        let (server, port) = loop {
            let attempt = failed_attempts.len() + 1;
            let port = free_port()?;
            let log_path = scratch.path().join(format!("postgres-{attempt}.log"));
            let exited_marker = scratch.path().join(format!("postgres-{attempt}.exited"));
            let command = postgres_command(
                &bin_dir,
                &data_dir,
                &socket_dir,
                port,
                Transport::Plain,
                Wal::Replica,
            );
            let mut server = ServerProcess::spawn(
                &command,
                scratch.path(),
                &data_dir,
                &exited_marker,
                open_log(&log_path)?,
                run_as,
            )
            .map_err(|e| Error::Server(format!("cannot start the standby watchdog: {e}")))?;
            match wait_accepting(&mut server, &log_path) {
                Ok(()) => break (server, port),
                Err(tail) if attempt < PORT_ATTEMPTS && tail.contains("could not bind") => {
                    failed_attempts.push(server);
                }
                Err(tail) => {
                    return Err(Error::Server(format!(
                        "the standby did not start; server log:\n{tail}"
                    )))
                }
            }
        };
        Ok(Standby {
            server,
            _failed_attempts: failed_attempts,
            scratch,
            port,
            data_dir,
            socket_dir,
            bin_dir,
            run_as,
        })
    }

    /// The superuser URL of the maintenance database, as
    /// [`TempCluster::url`].
    pub fn url(&self) -> String {
        self.url_for(SUPERUSER, SUPERUSER_PASSWORD, "postgres")
    }

    /// A TCP URL for `user` with `password` to database `dbname`.
    pub fn url_for(&self, user: &str, password: &str, dbname: &str) -> String {
        cluster_url(self.port, user, password, dbname)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (removed on drop).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// True while the server process is running.
    pub fn is_running(&mut self) -> bool {
        !self.server.has_exited()
    }

    /// `pg_is_in_recovery()`: true while it is a standby, false once
    /// promoted.
    pub fn is_in_recovery(&self) -> Result<bool, Error> {
        Ok(self.query("SELECT pg_is_in_recovery()", "asking the standby")? == "t")
    }

    /// Waits up to 60 s until the standby has replayed the WAL up to `lsn`
    /// (as `pg_current_wal_lsn()` prints it, e.g. `0/3000148`).
    pub fn wait_replayed(&self, lsn: &str) -> Result<(), Error> {
        let sql = format!(
            "SELECT coalesce(pg_last_wal_replay_lsn() >= {}::pg_lsn, false)",
            psql::quote_literal(lsn)
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.query(&sql, "asking the standby how far it replayed")? == "t" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Server(format!(
                    "the standby did not replay up to {lsn} within {READY_TIMEOUT:?}; server \
                     log:\n{}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the standby has replayed everything `primary` has
    /// written so far, committed or not: its `pg_current_wal_insert_lsn()`.
    ///
    /// Not `pg_current_wal_lsn()`, the position written out to disk: the
    /// throwaway servers run `synchronous_commit=off`, so a commit that
    /// returned may still sit in the WAL buffers, past that position, and
    /// the wait would end before the standby replays it.
    pub fn wait_caught_up(&self, primary: &TempCluster) -> Result<(), Error> {
        let lsn = psql::query(
            &psql::psql_program(Some(primary.bin_dir()))?,
            &primary.socket_target("postgres"),
            "SELECT pg_current_wal_insert_lsn()",
            "asking the primary for its wal position",
        )?;
        self.wait_replayed(lsn.trim())
    }

    /// Promotes the standby to a primary (`pg_ctl promote`, waiting up to
    /// 60 s); it accepts writes when this returns.
    pub fn promote(&self) -> Result<(), Error> {
        let mut command = Command::new(self.bin_dir.join("pg_ctl"));
        command
            .arg("promote")
            .arg("-w")
            .args(["-t", &READY_TIMEOUT.as_secs().to_string()])
            .arg("-D")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(run_as) = self.run_as {
            run_as.apply(&mut command);
        }
        let output = command
            .output()
            .map_err(|e| Error::Server(format!("cannot run pg_ctl promote: {e}")))?;
        if !output.status.success() {
            return Err(Error::Server(format!(
                "pg_ctl promote failed ({}): {}; server log:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                self.log_tail()
            )));
        }
        Ok(())
    }

    /// The last lines of the standby's server log.
    pub fn log_tail(&self) -> String {
        self.scratch.newest_log_tail()
    }

    /// The trimmed answer of `sql` over the unix socket, as the superuser.
    fn query(&self, sql: &str, what: &str) -> Result<String, Error> {
        let target = psql::socket_target(&self.socket_dir, self.port, SUPERUSER, "postgres");
        let answer = psql::query(
            &psql::psql_program(Some(&self.bin_dir))?,
            &target,
            sql,
            what,
        )?;
        Ok(answer.trim().to_string())
    }
}

/// How a standby's data directory is copied from the primary.
#[derive(Debug, Clone, Copy)]
enum Copy {
    /// `pg_basebackup -R -X stream`.
    BaseBackup,
    /// [`file_base_backup`].
    Files,
}

/// Waits until the postmaster accepts connections (`standby` once hot
/// standby is consistent, `ready` when promoted); on failure, the end of the
/// log at `log_path`.
fn wait_accepting(server: &mut ServerProcess, log_path: &Path) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if matches!(
            server.postmaster_status().as_deref(),
            Some("standby" | "ready")
        ) {
            return Ok(());
        }
        if server.has_exited() {
            return Err(tail_of(log_path));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "(not accepting connections within {READY_TIMEOUT:?})\n{}",
                tail_of(log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `pg_basebackup -R -X stream` of `primary` into `data_dir`, run as
/// `run_as`.
fn base_backup(primary: &TempCluster, data_dir: &Path, run_as: Option<RunAs>) -> Result<(), Error> {
    let mut command = Command::new(primary.bin_dir().join("pg_basebackup"));
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
        .arg("-h")
        .arg(primary.socket_dir())
        .args(["-p", &primary.port().to_string(), "-U", SUPERUSER])
        .env_remove("PGSERVICE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(run_as) = run_as {
        run_as.apply(&mut command);
    }
    let output = command
        .output()
        .map_err(|e| Error::Server(format!("cannot run pg_basebackup: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hint = if stderr.contains("max_wal_senders") || stderr.contains("replication") {
        " (was the primary started with TempCluster::start_primary?)"
    } else {
        ""
    };
    Err(Error::Server(format!(
        "pg_basebackup of the primary failed ({}){hint}: {}",
        output.status,
        stderr.trim()
    )))
}

/// A primary started with [`TempCluster::start_primary`] and a [`Standby`]
/// streaming from it; [`ReplicatedCluster::stop_primary`] stops the primary
/// (for failover tests) while the standby keeps running. Both are stopped
/// and removed on drop.
#[derive(Debug)]
pub struct ReplicatedCluster {
    standby: Standby,
    primary: Option<TempCluster>,
}

impl ReplicatedCluster {
    /// Starts a primary and a standby of it.
    pub fn start() -> Result<ReplicatedCluster, Error> {
        let primary = TempCluster::start_primary()?;
        let standby = Standby::start_from(&primary)?;
        Ok(ReplicatedCluster {
            standby,
            primary: Some(primary),
        })
    }

    /// The primary; `None` once [`ReplicatedCluster::stop_primary`] ran.
    pub fn primary(&self) -> Option<&TempCluster> {
        self.primary.as_ref()
    }

    /// The standby (a primary itself once promoted).
    pub fn standby(&self) -> &Standby {
        &self.standby
    }

    /// Waits until the standby has replayed everything the primary wrote so
    /// far.
    ///
    /// # Errors
    ///
    /// [`Error::Server`] when the primary was stopped or the standby
    /// does not catch up within 60 s.
    pub fn wait_caught_up(&self) -> Result<(), Error> {
        let primary = self.primary.as_ref().ok_or_else(|| {
            Error::Server("the primary was stopped: nothing to catch up with".to_string())
        })?;
        self.standby.wait_caught_up(primary)
    }

    /// Stops the primary with a fast shutdown and removes its directory;
    /// the standby keeps running (in recovery, retrying the primary) until
    /// [`Standby::promote`].
    pub fn stop_primary(&mut self) {
        drop(self.primary.take());
    }

    /// Promotes the standby ([`Standby::promote`]).
    pub fn promote(&self) -> Result<(), Error> {
        self.standby.promote()
    }
}
