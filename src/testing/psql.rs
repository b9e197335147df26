//! Running SQL through the `psql` client, for the administrative statements
//! of the test servers (roles, `CREATE DATABASE`, `DROP DATABASE`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::binaries::{find_on_path, is_executable};
use crate::Error;

/// The `psql` program to use: the one next to the server binaries when
/// there is one, else the first on `PATH`.
pub(crate) fn psql_program(bin_dir: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(candidate) = bin_dir.map(|dir| dir.join("psql")) {
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_on_path("psql", &path).ok_or_else(|| {
        Error::TestServer(
            "psql not found on PATH: install the postgresql client package (e.g. `apt-get \
             install postgresql-client`)"
                .to_string(),
        )
    })
}

/// A libpq connection string for the unix socket in `socket_dir`.
pub(crate) fn socket_conninfo(socket_dir: &Path, port: u16, user: &str, dbname: &str) -> String {
    format!(
        "host={} port={port} user={} dbname={}",
        conninfo_value(&socket_dir.to_string_lossy()),
        conninfo_value(user),
        conninfo_value(dbname)
    )
}

/// `value` quoted for a keyword/value connection string.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Runs each of `statements` in its own implicit transaction (so
/// `CREATE DATABASE` works) over one connection to `conninfo` (a URL or a
/// keyword/value string), stopping at the first error. `what` names the work
/// in the error message, which carries psql's own message but never the
/// connection string (it may hold a password).
pub(crate) fn run(
    psql: &Path,
    conninfo: &str,
    statements: &[&str],
    what: &str,
) -> Result<(), Error> {
    let mut command = Command::new(psql);
    command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo])
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for statement in statements {
        command.arg("-c").arg(statement);
    }
    let output = command
        .output()
        .map_err(|e| Error::TestServer(format!("cannot run {}: {e}", psql.display())))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(Error::TestServer(format!(
        "{what} failed ({}): {}",
        output.status,
        stderr.trim()
    )))
}

/// `name` as a double-quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a single-quoted SQL string literal.
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
