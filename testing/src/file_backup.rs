//! A base backup by file copy, for installations without `pg_basebackup`
//! (the `@embedded-postgres` packages of PostgreSQL 16 and later ship only
//! `initdb`, `pg_ctl` and `postgres`).
//!
//! The low-level backup API does what `pg_basebackup` does over the
//! replication protocol: one `psql` session runs `pg_backup_start` (13 and
//! 14: `pg_start_backup(…, exclusive => false)`), the data directory is
//! copied while the session stays open, `pg_backup_stop` answers the
//! `backup_label` to write into the copy, and `standby.signal` plus a
//! `primary_conninfo` make the copy a standby that streams the WAL it lacks
//! from the primary (as `pg_basebackup -R -X stream` would).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::psql;
use super::scratch::RunAs;
use super::{TempCluster, SUPERUSER};
use crate::Error;

/// The line `psql` echoes once the backup has started.
const STARTED_MARKER: &str = "odm-file-backup-started";

/// Files of the data directory a backup leaves out, by name at any depth
/// (what `pg_basebackup` leaves out too).
const LEFT_OUT_FILES: [&str; 3] = ["postmaster.pid", "postmaster.opts", "backup_label.old"];

/// Directories whose contents a backup leaves out (the directories
/// themselves are kept, empty): WAL is streamed from the primary, the rest
/// is rebuilt by the server.
const EMPTIED_DIRS: [&str; 5] = [
    "pg_wal",
    "pg_replslot",
    "pg_stat_tmp",
    "pg_dynshmem",
    "pg_notify",
];

/// Copies `primary`'s data directory into `data_dir` under the low-level
/// backup API and makes the copy a standby of `primary`, owned by
/// `run_as`.
pub(crate) fn file_base_backup(
    primary: &TempCluster,
    data_dir: &Path,
    run_as: Option<RunAs>,
) -> Result<(), Error> {
    let version = server_version_num(primary)?;
    let (start, stop) = if version >= 150_000 {
        (
            "SELECT pg_backup_start('odm standby', true)",
            "SELECT labelfile FROM pg_backup_stop(false)",
        )
    } else {
        (
            "SELECT pg_start_backup('odm standby', true, false)",
            "SELECT labelfile FROM pg_stop_backup(false, false)",
        )
    };
    let target = primary.socket_target("postgres");
    let program = psql::psql_program(Some(primary.bin_dir()))?;
    let mut command = Command::new(&program);
    command
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(&target.conninfo)
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = &target.password {
        command.env("PGPASSWORD", password);
    }
    let failed = |what: String| Error::Server(format!("file base backup: {what}"));
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", program.display())))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let started = writeln!(stdin, "{start};\n\\echo {STARTED_MARKER}")
        .and_then(|()| stdin.flush())
        .is_ok()
        && wait_for_marker(&mut stdout);
    if !started {
        drop(stdin);
        let _ = child.wait();
        let mut message = String::new();
        let _ = stderr.read_to_string(&mut message);
        let hint = if message.contains("wal_level") {
            " (was the primary started with TempCluster::start_primary?)"
        } else {
            ""
        };
        return Err(failed(format!(
            "{start} did not answer{hint}: {}",
            message.trim()
        )));
    }
    let copied = copy_data_dir(primary.data_dir(), data_dir);
    // The backup ends whether or not the copy worked; psql exits at the end
    // of its input.
    let _ = writeln!(stdin, "{stop};");
    drop(stdin);
    let mut label = String::new();
    let _ = stdout.read_to_string(&mut label);
    let mut message = String::new();
    let _ = stderr.read_to_string(&mut message);
    let status = child
        .wait()
        .map_err(|e| failed(format!("waiting for psql: {e}")))?;
    copied.map_err(|e| failed(format!("copying the data directory: {e}")))?;
    if !status.success() || !label.starts_with("START WAL LOCATION") {
        return Err(failed(format!(
            "{stop} failed ({status}): {}",
            message.trim()
        )));
    }
    let write = |name: &str, text: &str| {
        fs::write(data_dir.join(name), text)
            .map_err(|e| failed(format!("cannot write {name}: {e}")))
    };
    write("backup_label", label.trim_end_matches('\n'))?;
    write("standby.signal", "")?;
    let conninfo = format!(
        "host={} port={} user={SUPERUSER} application_name=odm_standby",
        primary.socket_dir().display(),
        primary.port()
    );
    let mut auto_conf = fs::read_to_string(data_dir.join("postgresql.auto.conf"))
        .map_err(|e| failed(format!("cannot read postgresql.auto.conf: {e}")))?;
    auto_conf.push_str(&format!(
        "primary_conninfo = {}\n",
        psql::quote_literal(&conninfo)
    ));
    write("postgresql.auto.conf", &auto_conf)?;
    if let Some(run_as) = run_as {
        chown_tree(data_dir, run_as)?;
    }
    Ok(())
}

/// `server_version_num` of `primary` (e.g. 150004).
fn server_version_num(primary: &TempCluster) -> Result<u32, Error> {
    let answer = psql::query(
        &psql::psql_program(Some(primary.bin_dir()))?,
        &primary.socket_target("postgres"),
        "SHOW server_version_num",
        "asking the primary for its version",
    )?;
    answer.trim().parse().map_err(|_| {
        Error::Server(format!(
            "the primary answered {:?} for server_version_num",
            answer.trim()
        ))
    })
}

/// Reads lines until [`STARTED_MARKER`]; false at the end of the output
/// (psql stopped at an error).
fn wait_for_marker(stdout: &mut impl BufRead) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match stdout.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.trim_end() == STARTED_MARKER => return true,
            Ok(_) => {}
        }
    }
}

/// Copies the data directory `from` into the new directory `to` (mode
/// 0700), leaving out [`LEFT_OUT_FILES`] and the contents of
/// [`EMPTIED_DIRS`]. A file that vanishes while copying (a running server
/// removes temporary files) is skipped: the WAL replayed from the backup's
/// start restores what matters.
fn copy_data_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir(to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o700))?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if EMPTIED_DIRS.contains(&name.as_ref()) {
            fs::create_dir(to.join(&*name))?;
            fs::set_permissions(to.join(&*name), fs::Permissions::from_mode(0o700))?;
            // Keep the subdirectories the server expects
            // (pg_wal/archive_status, pg_wal/summaries), empty.
            for sub in fs::read_dir(&path)?.filter_map(Result::ok) {
                if sub.file_type().is_ok_and(|kind| kind.is_dir()) {
                    let dir = to.join(&*name).join(sub.file_name());
                    fs::create_dir(&dir)?;
                    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
                }
            }
            continue;
        }
        copy_entry(&path, &to.join(&*name))?;
    }
    Ok(())
}

/// Copies one file or directory tree, skipping [`LEFT_OUT_FILES`] and
/// files that vanish.
fn copy_entry(from: &Path, to: &Path) -> std::io::Result<()> {
    let name = from
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if LEFT_OUT_FILES.contains(&name.as_str()) {
        return Ok(());
    }
    let meta = match fs::symlink_metadata(from) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        fs::create_dir(to)?;
        fs::set_permissions(to, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_entry(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    match fs::copy(from, to) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives every file and directory under `dir` (and `dir`) to `run_as`.
fn chown_tree(dir: &Path, run_as: RunAs) -> Result<(), Error> {
    run_as.chown(dir)?;
    let entries = fs::read_dir(dir)
        .map_err(|e| Error::Server(format!("cannot list {}: {e}", dir.display())))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            chown_tree(&path, run_as)?;
        } else {
            run_as.chown(&path)?;
        }
    }
    Ok(())
}
