//! Data directories for [`TempCluster`](super::TempCluster)s: `initdb` runs
//! once per process and server installation into a template, which every
//! cluster then copies (a copy takes a fraction of `initdb`'s second).
//!
//! The template lives as long as the process. Like a cluster's directory, it
//! is removed by a small `sh` process leashed to this one through a pipe, so
//! it goes away however the process exits.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use super::scratch::{RunAs, ScratchDir};
use super::SUPERUSER;
use crate::Error;

/// Removes `$1` when its standard input closes; ignores the terminal's
/// signals so that a Ctrl-C of the test run does not skip the cleanup.
const LEASHED_REMOVAL: &str = r#"trap '' INT TERM HUP; cat >/dev/null 2>&1; rm -rf "$1""#;

/// An initialized data directory kept for copying.
#[derive(Debug)]
struct Template {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    /// Never dropped (templates live in a `static`): the directory is removed
    /// by the leashed process once this process has exited.
    _scratch: ScratchDir,
    _remover: Child,
    _leash: ChildStdin,
}

/// Templates made so far, one per server installation.
static TEMPLATES: Mutex<Vec<&'static Template>> = Mutex::new(Vec::new());

/// Creates the data directory `data_dir` (which must not exist) for the
/// server binaries in `bin_dir`, as a copy of this process's template.
pub(crate) fn create_data_dir(
    bin_dir: &Path,
    data_dir: &Path,
    run_as: Option<RunAs>,
) -> Result<(), Error> {
    let template = template_for(bin_dir, run_as)?;
    let mut command = Command::new("cp");
    command
        .arg("-a")
        .arg(&template.data_dir)
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(run_as) = run_as {
        run_as.apply(&mut command);
    }
    let output = command
        .output()
        .map_err(|e| Error::Server(format!("cannot run cp: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Server(format!(
        "cannot copy the template data directory to {}: {}",
        data_dir.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// This process's template for `bin_dir`, made on first use.
fn template_for(bin_dir: &Path, run_as: Option<RunAs>) -> Result<&'static Template, Error> {
    let mut templates = TEMPLATES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(template) = templates.iter().find(|t| t.bin_dir == bin_dir) {
        return Ok(template);
    }
    let scratch = ScratchDir::create(run_as)?;
    let data_dir = scratch.path().join("data");
    init_data_dir(bin_dir, scratch.path(), &data_dir, run_as)?;
    let mut remover = Command::new("sh")
        .arg("-c")
        .arg(LEASHED_REMOVAL)
        .arg("odm-pg-template")
        .arg(scratch.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Server(format!("cannot start the template remover: {e}")))?;
    let Some(leash) = remover.stdin.take() else {
        let _ = remover.kill();
        return Err(Error::Server(
            "the template remover has no standard input".to_string(),
        ));
    };
    let template: &'static Template = Box::leak(Box::new(Template {
        bin_dir: bin_dir.to_path_buf(),
        data_dir,
        _scratch: scratch,
        _remover: remover,
        _leash: leash,
    }));
    templates.push(template);
    Ok(template)
}

/// Runs `initdb` for a fast, trusting, C-locale cluster owned by `SUPERUSER`.
fn init_data_dir(
    bin_dir: &Path,
    scratch: &Path,
    data_dir: &Path,
    run_as: Option<RunAs>,
) -> Result<(), Error> {
    let mut command = Command::new(bin_dir.join("initdb"));
    command
        .arg("-D")
        .arg(data_dir)
        .args(["--no-sync", "-A", "trust", "-U", SUPERUSER, "-E", "UTF8"])
        .arg("--locale=C")
        .current_dir(scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(run_as) = run_as {
        run_as.apply(&mut command);
    }
    let output = command
        .output()
        .map_err(|e| Error::Server(format!("cannot run initdb in {}: {e}", bin_dir.display())))?;
    if output.status.success() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(Error::Server(format!(
        "initdb failed ({}): {}",
        output.status,
        [stdout.trim(), stderr.trim()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    )))
}
