//! Running SQL through the `psql` client, for the administrative statements
//! of the test servers (roles, `CREATE DATABASE`, `DROP DATABASE`).

use std::fmt;
use std::io::Write;
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
        Error::Server(
            "psql not found on PATH: install the postgresql client package (e.g. `apt-get \
             install postgresql-client`)"
                .to_string(),
        )
    })
}

/// Where `psql` connects: a connection string that never holds the
/// password, and the password, which reaches `psql` through its
/// environment (`PGPASSWORD`), so it never shows on a command line (`ps`
/// shows every user's command lines).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// A URL or keyword/value string without a password.
    pub(crate) conninfo: String,
    pub(crate) password: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("conninfo", &self.conninfo)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The unix socket in `socket_dir` (trusted: no password).
pub(crate) fn socket_target(socket_dir: &Path, port: u16, user: &str, dbname: &str) -> Target {
    Target {
        conninfo: format!(
            "host={} port={port} user={} dbname={}",
            conninfo_value(&socket_dir.to_string_lossy()),
            conninfo_value(user),
            conninfo_value(dbname)
        ),
        password: None,
    }
}

/// `value` quoted for a keyword/value connection string.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Runs each of `statements` in its own implicit transaction (so
/// `CREATE DATABASE` works) over one connection to `target`, stopping at
/// the first error. The statements go to `psql`'s standard input, not its
/// command line, as they may hold passwords (`CREATE ROLE ... PASSWORD`).
/// `what` names the work in the error message, which carries psql's own
/// message but never the connection string.
pub(crate) fn run(
    psql: &Path,
    target: &Target,
    statements: &[&str],
    what: &str,
) -> Result<(), Error> {
    let script: String = statements
        .iter()
        .map(|statement| format!("{statement};\n"))
        .collect();
    feed(psql, target, &[], &script, what).map(drop)
}

/// The rows `query` answers over a connection to `target`, one line each,
/// columns separated by `|` (`psql -At`). The query goes to `psql`'s
/// standard input. `what` names the work in the error message.
pub(crate) fn query(
    psql: &Path,
    target: &Target,
    query: &str,
    what: &str,
) -> Result<String, Error> {
    feed(psql, target, &["-A", "-t"], &format!("{query};\n"), what)
}

/// Runs `psql` (with `extra_args`) on `target`, `script` on its standard
/// input, stopping at the first error; its standard output, or an error
/// naming `what` with psql's own message (never the connection string).
fn feed(
    psql: &Path,
    target: &Target,
    extra_args: &[&str],
    script: &str,
    what: &str,
) -> Result<String, Error> {
    let mut command = Command::new(psql);
    command
        .args(["-X", "-q"])
        .args(extra_args)
        .args(["-v", "ON_ERROR_STOP=1", "-d", &target.conninfo])
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = &target.password {
        command.env("PGPASSWORD", password);
    }
    let cannot_run =
        |e: std::io::Error| Error::Server(format!("cannot run {}: {e}", psql.display()));
    let mut child = command.spawn().map_err(cannot_run)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A psql that failed to connect exits without reading: its exit
        // status and message below say why, not this write's broken pipe.
        let _ = stdin.write_all(script.as_bytes());
    }
    let output = child.wait_with_output().map_err(cannot_run)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(Error::Server(format!(
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn psql_gets_passwords_through_its_environment_and_input_never_its_command_line() {
        let dir = std::env::temp_dir().join(format!("odm-psql-argv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake_psql = dir.join("psql");
        std::fs::write(
            &fake_psql,
            "#!/bin/sh\nd=$(dirname \"$0\")\nprintf '%s\\n' \"$@\" > \"$d/argv\"\n\
             printf '%s' \"$PGPASSWORD\" > \"$d/password\"\ncat > \"$d/stdin\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake_psql, std::fs::Permissions::from_mode(0o755)).unwrap();
        let target = Target {
            conninfo: "postgresql://odm@db.example/postgres".to_string(),
            password: Some("conn-s3cret".to_string()),
        };
        let role = "CREATE ROLE r LOGIN PASSWORD 'r0le-s3cret'";
        run(&fake_psql, &target, &[role, "SELECT 1"], "testing").unwrap();
        let argv = std::fs::read_to_string(dir.join("argv")).unwrap();
        assert!(
            argv.contains("postgresql://odm@db.example/postgres"),
            "{argv}"
        );
        assert!(!argv.contains("s3cret"), "{argv}");
        assert_eq!(
            std::fs::read_to_string(dir.join("password")).unwrap(),
            "conn-s3cret"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("stdin")).unwrap(),
            format!("{role};\nSELECT 1;\n")
        );
        assert!(!format!("{target:?}").contains("s3cret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
