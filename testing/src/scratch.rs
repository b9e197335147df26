//! The scratch directory of a [`TempCluster`](super::TempCluster) and the
//! system user its server runs as.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// How many lines of a server log an error quotes.
const LOG_TAIL_LINES: usize = 20;

/// The system user PostgreSQL runs as when the test process is root.
pub(crate) const SERVER_USER: &str = "postgres";

/// A directory removed (with everything in it) when dropped.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates a fresh, uniquely named directory under the system temp
    /// directory, owned by `owner` when set.
    pub(crate) fn create(owner: Option<RunAs>) -> Result<ScratchDir, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let mut last_error = None;
        for _ in 0..16 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let name = format!(
                "odm-pg-{}-{}-{:08x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                nanos
            );
            let path = base.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let dir = ScratchDir { path };
                    if let Some(owner) = owner {
                        owner.chown(&dir.path)?;
                    }
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(scratch_error(&base, &e)),
            }
        }
        Err(scratch_error(
            &base,
            &last_error.unwrap_or_else(|| std::io::Error::other("no free name")),
        ))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the subdirectory `name`, owned by `owner` when set.
    /// The last lines of the newest `*.log` file in the directory (by
    /// name: attempts are numbered), empty when there is none.
    pub(crate) fn newest_log_tail(&self) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|ext| ext == "log"))
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        logs.last().map(|p| tail_of(p)).unwrap_or_default()
    }

    pub(crate) fn subdir(&self, name: &str, owner: Option<RunAs>) -> Result<PathBuf, Error> {
        let path = self.path.join(name);
        std::fs::create_dir(&path).map_err(|e| scratch_error(&self.path, &e))?;
        if let Some(owner) = owner {
            owner.chown(&path)?;
        }
        Ok(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // The watchdog normally removed it already.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn scratch_error(base: &Path, e: &std::io::Error) -> Error {
    Error::Server(format!(
        "cannot create a scratch directory under {}: {e}",
        base.display()
    ))
}

/// The user and group a child process is switched to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `Some(postgres user)` when this process runs as root (the server
    /// refuses to run as root), `None` otherwise.
    pub(crate) fn for_server() -> Result<Option<RunAs>, Error> {
        if !is_root() {
            return Ok(None);
        }
        let uid = id_of(&["-u", SERVER_USER]);
        let gid = id_of(&["-g", SERVER_USER]);
        match (uid, gid) {
            (Some(uid), Some(gid)) => Ok(Some(RunAs { uid, gid })),
            _ => Err(Error::Server(format!(
                "running as root, and there is no `{SERVER_USER}` system user to run the server \
                 as: install the postgresql server package (it creates one) or run the tests as \
                 a normal user"
            ))),
        }
    }

    /// Makes `command` run as this user and group.
    pub(crate) fn apply(self, command: &mut Command) {
        command.uid(self.uid).gid(self.gid);
    }

    /// Gives `path` to this user and group.
    pub(crate) fn chown(self, path: &Path) -> Result<(), Error> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).map_err(|e| {
            Error::Server(format!(
                "cannot give {} to the `{SERVER_USER}` user: {e}",
                path.display()
            ))
        })
    }
}

/// True when this process runs with user id 0.
fn is_root() -> bool {
    match std::fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => id_of(&["-u"]) == Some(0),
    }
}

/// The number printed by `id <args>`.
fn id_of(args: &[&str]) -> Option<u32> {
    let output = Command::new("id")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

/// The last [`LOG_TAIL_LINES`] lines of the file at `path`.
pub(crate) fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
