//! The running `postgres` of a [`TempCluster`](super::TempCluster), kept on a
//! leash by a small `sh` watchdog.
//!
//! The watchdog's standard input is a pipe whose only writer is the test
//! process. When that pipe closes — because the cluster is dropped, or
//! because the test process exits in any way, even without running
//! destructors (the per-process shared cluster lives in a `static`) — the
//! watchdog stops `postgres` with SIGINT (fast shutdown), waits for it, and
//! removes the cluster's scratch directory. No signal handling, `unsafe` or
//! `libc` is needed in the test process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::scratch::RunAs;

/// The watchdog script. `$1` is the directory to remove once the leash is
/// closed and `postgres` has exited, `$2` the file to create when `postgres`
/// exits (on its own or stopped); the rest of the arguments are the
/// `postgres` command line. SIGUSR2 restarts the server: a fast shutdown,
/// then the same command again (unless the leash closed meanwhile).
///
/// The leash (standard input) is watched by a subshell that signals the
/// watchdog with SIGUSR1 at end of file; the watchdog then stops `postgres`
/// with SIGINT. The postmaster's process id is only signalled while it has
/// not been reaped, so it can never hit a recycled process id.
const WATCHDOG: &str = r#"
root=$1
exited=$2
shift 2
exec 3<&0 0</dev/null
"$@" 3<&- &
pid=$!
stop=0
restart=0
trap 'stop=1; kill -INT "$pid" 2>/dev/null' USR1 INT TERM HUP
trap 'restart=1; kill -INT "$pid" 2>/dev/null' USR2
(cat <&3 >/dev/null 2>&1; kill -USR1 $$ 2>/dev/null) &
watcher=$!
exec 3<&-
while :; do
    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
    if [ "$restart" != 1 ] || [ "$stop" = 1 ]; then break; fi
    restart=0
    "$@" &
    pid=$!
done
trap '' USR1 USR2 INT TERM HUP
: >"$exited"
wait "$watcher"
rm -rf "$root"
"#;

/// How long a restarted server may take to be ready again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a dropped server may take to shut down before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A `postgres` process under its watchdog; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    watchdog: Child,
    /// The write end of the watchdog's leash; dropping it stops the server.
    leash: Option<ChildStdin>,
    data_dir: PathBuf,
    /// Created by the watchdog when `postgres` has exited.
    exited_marker: PathBuf,
}

impl ServerProcess {
    /// Starts `postgres_command` (program and arguments) under the watchdog,
    /// as `run_as` when set, with its output appended to `log`. `scratch` is
    /// removed by the watchdog once this value is dropped (or the process
    /// exits) and the server has stopped; `exited_marker` is created (in
    /// `scratch`) as soon as the server exits.
    pub(crate) fn spawn(
        postgres_command: &[String],
        scratch: &Path,
        data_dir: &Path,
        exited_marker: &Path,
        log: File,
        run_as: Option<RunAs>,
    ) -> std::io::Result<ServerProcess> {
        let log_err = log.try_clone()?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("odm-pg-watchdog")
            .arg(scratch)
            .arg(exited_marker)
            .args(postgres_command)
            .current_dir(scratch)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if let Some(run_as) = run_as {
            run_as.apply(&mut command);
        }
        let mut watchdog = command.spawn()?;
        let leash = watchdog.stdin.take();
        Ok(ServerProcess {
            watchdog,
            leash,
            data_dir: data_dir.to_path_buf(),
            exited_marker: exited_marker.to_path_buf(),
        })
    }

    /// True once the server has exited (or its watchdog is gone).
    pub(crate) fn has_exited(&mut self) -> bool {
        self.exited_marker.exists() || self.watchdog_has_exited()
    }

    fn watchdog_has_exited(&mut self) -> bool {
        !matches!(self.watchdog.try_wait(), Ok(None))
    }

    /// The status line of `postmaster.pid` (`"starting"`, `"ready"`, ...),
    /// when the file exists and has one.
    pub(crate) fn postmaster_status(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        text.lines().nth(7).map(|line| line.trim().to_string())
    }

    /// The postmaster's process id, from `postmaster.pid`.
    fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Restarts the server as `pg_ctl restart -m fast` would (every
    /// connection is ended, committed work is kept) and waits until the new
    /// postmaster is ready.
    pub(crate) fn restart(&mut self) -> std::io::Result<()> {
        let before = self.postmaster_pid();
        let signalled = Command::new("kill")
            .arg("-USR2")
            .arg(self.watchdog.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !signalled.success() {
            return Err(std::io::Error::other("the server's watchdog is gone"));
        }
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            let pid = self.postmaster_pid();
            if pid.is_some()
                && pid != before
                && self.postmaster_status().as_deref() == Some("ready")
            {
                return Ok(());
            }
            if self.has_exited() {
                return Err(std::io::Error::other(
                    "the server exited instead of restarting",
                ));
            }
            if Instant::now() >= deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the restarted server did not become ready in time",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout` for the watchdog to exit.
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.watchdog_has_exited() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing the leash makes the watchdog stop postgres and clean up.
        drop(self.leash.take());
        if self.wait_exit(STOP_TIMEOUT) {
            return;
        }
        // The server ignored a fast shutdown: ask for an immediate one, then
        // give up on the watchdog.
        if let Some(pid) = self.postmaster_pid() {
            let _ = Command::new("kill")
                .arg("-QUIT")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if !self.wait_exit(Duration::from_secs(5)) {
            let _ = self.watchdog.kill();
            let _ = self.watchdog.wait();
        }
    }
}
