//! Finding the installed PostgreSQL server binaries (`initdb`, `postgres`).
//!
//! When the environment variable [`BIN_DIR_VARIABLE`] (`ODM_PG_BIN_DIR`) is
//! set, its folder is the one: a whole test run then starts its throwaway
//! servers from that installation (`.ci/pg-versions` fetches one per major
//! version; `.ci/pg-matrix` runs the suites against each). Otherwise the
//! search order is: every directory of the executable search path (the
//! `PATH` of the process), then the directory printed by `pg_config --bindir`,
//! then Debian's versioned folders `/usr/lib/postgresql/<version>/bin`
//! (highest version first).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Error;

/// Debian's (and Ubuntu's) root of the versioned server installations.
pub const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// The two programs a [`TempCluster`](super::TempCluster) cannot start without.
const SERVER_PROGRAMS: [&str; 2] = ["initdb", "postgres"];

/// The environment variable naming the folder of server binaries every
/// throwaway server of the run starts from (`initdb`, `postgres`,
/// `pg_ctl`), instead of the search.
pub const BIN_DIR_VARIABLE: &str = "ODM_PG_BIN_DIR";

/// Finds the directory holding the PostgreSQL server binaries: the folder
/// [`BIN_DIR_VARIABLE`] names when it is set (an error if that folder lacks
/// `initdb` or `postgres`), else by searching the process's `PATH` and
/// [`VERSIONED_ROOT`].
pub fn find_server_bin_dir() -> Result<PathBuf, Error> {
    if let Some(chosen) = std::env::var_os(BIN_DIR_VARIABLE).filter(|dir| !dir.is_empty()) {
        return chosen_bin_dir(Path::new(&chosen));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_server_bin_dir_in(&path, Path::new(VERSIONED_ROOT))
}

/// `dir` when it holds `initdb` and `postgres`; otherwise an error naming
/// the variable that chose it.
pub fn chosen_bin_dir(dir: &Path) -> Result<PathBuf, Error> {
    if has_server_programs(dir) {
        return Ok(dir.to_path_buf());
    }
    Err(Error::Server(format!(
        "{BIN_DIR_VARIABLE}={} holds no executable initdb and postgres: point it at the bin \
         folder of a postgresql installation (e.g. one printed by .ci/pg-versions)",
        dir.display()
    )))
}

/// Finds the directory holding `initdb` and `postgres`, looking first in each
/// directory of `search_path` (a `PATH`-style list), then in the directory
/// `pg_config --bindir` reports (with `pg_config` taken from `search_path`),
/// then in `versioned_root/<version>/bin`, highest version first.
///
/// A symbolic link found on the search path is resolved, so that the
/// directory returned also holds the companion tools (`psql`, `pg_isready`).
/// When nothing is found the error is [`Error::Server`] and says to
/// install the PostgreSQL server package or set `DATABASE_URL`.
pub fn find_server_bin_dir_in(
    search_path: &OsStr,
    versioned_root: &Path,
) -> Result<PathBuf, Error> {
    for dir in std::env::split_paths(search_path) {
        if let Some(found) = server_dir_via(&dir) {
            return Ok(found);
        }
    }
    if let Some(found) = pg_config_bindir(search_path).filter(|dir| has_server_programs(dir)) {
        return Ok(found);
    }
    for dir in versioned_bin_dirs(versioned_root) {
        if has_server_programs(&dir) {
            return Ok(dir);
        }
    }
    Err(Error::Server(format!(
        "postgresql server binaries (initdb, postgres) not found on PATH, via pg_config --bindir \
         or in {}/<version>/bin: install the postgresql server package (e.g. `apt-get install \
         postgresql`) or set DATABASE_URL to an existing server",
        versioned_root.display()
    )))
}

/// `dir` itself when it holds both server programs, or the directory their
/// symbolic links point into when that one holds both as well.
fn server_dir_via(dir: &Path) -> Option<PathBuf> {
    if !has_server_programs(dir) {
        return None;
    }
    let resolved = std::fs::canonicalize(dir.join("initdb"))
        .ok()
        .and_then(|target| target.parent().map(Path::to_path_buf))
        .filter(|parent| has_server_programs(parent));
    Some(resolved.unwrap_or_else(|| dir.to_path_buf()))
}

/// True when `dir` holds an executable `initdb` and `postgres`.
fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

/// True when `path` is a regular file (after following links) with an
/// execute bit set.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The first executable called `name` in the directories of `search_path`.
pub(crate) fn find_on_path(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The output of `pg_config --bindir`, when `pg_config` is on `search_path`
/// and succeeds.
fn pg_config_bindir(search_path: &OsStr) -> Option<PathBuf> {
    let pg_config = find_on_path("pg_config", search_path)?;
    let output = Command::new(pg_config)
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `root/<version>/bin` for every version folder under `root`, highest
/// version first (compared numerically: 16 > 15 > 9.6).
pub(crate) fn versioned_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u64>, PathBuf)> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let key = version_key(&name)?;
            Some((key, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// `"9.6"` → `[9, 6]`; `None` for a name that is not a dotted number.
fn version_key(name: &str) -> Option<Vec<u64>> {
    name.split('.')
        .map(|part| part.parse::<u64>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{chosen_bin_dir, version_key, BIN_DIR_VARIABLE};
    use std::path::Path;

    #[test]
    fn a_chosen_folder_without_the_server_programs_is_refused_by_name() {
        let err = chosen_bin_dir(Path::new("/nonexistent/odm-bin")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(BIN_DIR_VARIABLE), "{message}");
        assert!(message.contains("/nonexistent/odm-bin"), "{message}");
    }

    #[test]
    fn version_folders_compare_numerically() {
        assert!(version_key("16") > version_key("15"));
        assert!(version_key("15") > version_key("9.6"));
        assert_eq!(version_key("common"), None);
    }
}
