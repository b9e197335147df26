//! libpq's password file (`~/.pgpass`, or the file `PGPASSFILE` names):
//! reading it and finding the password for a host, port, database and
//! user.
//!
//! The format, as libpq reads it: one `hostname:port:database:username:password`
//! entry a line; `*` in any of the first four fields matches anything;
//! `\:` and `\\` stand for a literal `:` and `\`; lines starting with `#`
//! and lines with fewer than five fields are skipped; the first matching
//! line wins. A connection over a unix socket matches the host name
//! `localhost`.
//!
//! The permission rule: on unix a file that its group or others may read
//! or write is ignored with a warning (libpq's "permissions should be
//! u=rw (0600) or less"), as is anything that is not a plain file. A
//! missing file is no error: there is simply no password from it.

use std::path::{Path, PathBuf};

use super::Host;

/// One line of a password file: four patterns and the password.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct PassEntry {
    host: String,
    port: String,
    dbname: String,
    user: String,
    password: String,
}

impl std::fmt::Debug for PassEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassEntry")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a password file gave no entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PassFileSkipped {
    /// There is no file at the path (not an error, as in libpq).
    Missing,
    /// The file is group or world accessible (its mode is given).
    TooOpen(u32),
    /// The path is not a plain file.
    NotAFile,
    /// The file could not be read (the I/O error's message).
    Unreadable(String),
}

/// The entries of the password file at `path`, or why there are none.
/// Ignored files are logged at warn level (libpq prints a warning).
pub(super) fn read_passfile(path: &Path) -> Result<Vec<PassEntry>, PassFileSkipped> {
    let skipped = match check_file(path) {
        Ok(()) => match std::fs::read_to_string(path) {
            Ok(text) => return Ok(parse_passfile(&text)),
            Err(err) => PassFileSkipped::Unreadable(err.to_string()),
        },
        Err(skipped) => skipped,
    };
    let shown = path.display();
    match &skipped {
        PassFileSkipped::Missing => {}
        PassFileSkipped::TooOpen(mode) => log::warn!(
            target: "odm::pg",
            "password file \"{shown}\" has group or world access (mode {mode:o}); permissions \
             should be u=rw (0600) or less: ignored"
        ),
        PassFileSkipped::NotAFile => log::warn!(
            target: "odm::pg",
            "password file \"{shown}\" is not a plain file: ignored"
        ),
        PassFileSkipped::Unreadable(err) => log::warn!(
            target: "odm::pg",
            "password file \"{shown}\" could not be read ({err}): ignored"
        ),
    }
    Err(skipped)
}

/// libpq's checks before reading: a plain file, and (on unix) no access
/// for group or others.
fn check_file(path: &Path) -> Result<(), PassFileSkipped> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(PassFileSkipped::Missing)
        }
        Err(err) => return Err(PassFileSkipped::Unreadable(err.to_string())),
    };
    if !metadata.is_file() {
        return Err(PassFileSkipped::NotAFile);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PassFileSkipped::TooOpen(mode));
        }
    }
    Ok(())
}

/// The entries of a password file's text, in order.
pub(super) fn parse_passfile(text: &str) -> Vec<PassEntry> {
    text.lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

/// One line: four fields ended by unescaped `:`, then the password (the
/// rest of the line, unescaped). `None` for a line with fewer fields.
fn parse_line(line: &str) -> Option<PassEntry> {
    let mut fields: Vec<String> = Vec::with_capacity(5);
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next().unwrap_or('\\')),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if fields.len() < 4 {
        return None;
    }
    let mut fields = fields.into_iter();
    Some(PassEntry {
        host: fields.next()?,
        port: fields.next()?,
        dbname: fields.next()?,
        user: fields.next()?,
        password: current,
    })
}

/// The password of the first entry matching a connection to `host`:`port`,
/// database `dbname`, as `user`. A unix socket directory matches
/// `localhost`, as in libpq.
pub(super) fn find_password(
    entries: &[PassEntry],
    host: &Host,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let host = match host {
        Host::Tcp(name) if !name.is_empty() => name.as_str(),
        _ => "localhost",
    };
    let port = port.to_string();
    let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
    entries
        .iter()
        .find(|entry| {
            matches(&entry.host, host)
                && matches(&entry.port, &port)
                && matches(&entry.dbname, dbname)
                && matches(&entry.user, user)
        })
        .map(|entry| entry.password.clone())
}

/// Where libpq looks for the password file: `PGPASSFILE`, else
/// `$HOME/.pgpass`; `None` when neither is known.
pub(super) fn passfile_path(pgpassfile: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    match (pgpassfile, home) {
        (Some(path), _) => Some(PathBuf::from(path)),
        (None, Some(home)) => Some(Path::new(home).join(".pgpass")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(name: &str) -> Host {
        Host::Tcp(name.to_owned())
    }

    #[test]
    fn the_first_matching_line_wins_and_a_star_matches_anything() {
        let entries = parse_passfile(
            "# a comment:*:*:*:nope\n\
             db.example.com:5432:app:alice:first\n\
             *:5432:*:alice:second\n\
             *:*:*:*:fallback\n",
        );
        assert_eq!(entries.len(), 3);
        let find = |host: &str, port, db, user| find_password(&entries, &tcp(host), port, db, user);
        assert_eq!(
            find("db.example.com", 5432, "app", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            find("db.example.com", 5432, "other", "alice").as_deref(),
            Some("second")
        );
        assert_eq!(
            find("elsewhere", 5432, "app", "alice").as_deref(),
            Some("second")
        );
        assert_eq!(
            find("elsewhere", 6000, "app", "alice").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            find("elsewhere", 6000, "app", "bob").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn escaped_colons_and_backslashes_are_literal_in_every_field() {
        let entries = parse_passfile("h:1:d\\:b:u\\\\x:pa\\:ss:wo\\\\rd\\\n");
        assert_eq!(
            find_password(&entries, &tcp("h"), 1, "d:b", "u\\x").as_deref(),
            Some("pa:ss:wo\\rd\\")
        );
        // The password is the rest of the line: unescaped colons stay.
        let entries = parse_passfile("*:*:*:*:a:b:c\r\n");
        assert_eq!(
            find_password(&entries, &tcp("h"), 1, "d", "u").as_deref(),
            Some("a:b:c")
        );
    }

    #[test]
    fn lines_with_fewer_than_five_fields_are_skipped() {
        let entries = parse_passfile("h:1:d:u\n\nh:1:d\n*:*:*:*:\n");
        assert_eq!(entries.len(), 1);
        assert_eq!(
            find_password(&entries, &tcp("h"), 1, "d", "u").as_deref(),
            Some("")
        );
    }

    #[test]
    fn a_unix_socket_matches_localhost() {
        let entries = parse_passfile("localhost:5432:*:*:local\n");
        let socket = Host::Unix(PathBuf::from("/tmp"));
        assert_eq!(
            find_password(&entries, &socket, 5432, "d", "u").as_deref(),
            Some("local")
        );
        assert_eq!(
            find_password(&entries, &tcp("127.0.0.1"), 5432, "d", "u"),
            None
        );
    }

    #[test]
    fn pgpassfile_comes_before_the_home_directory() {
        assert_eq!(
            passfile_path(Some("/etc/pw"), Some("/home/a")),
            Some(PathBuf::from("/etc/pw"))
        );
        assert_eq!(
            passfile_path(None, Some("/home/a")),
            Some(PathBuf::from("/home/a/.pgpass"))
        );
        assert_eq!(passfile_path(None, None), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_is_ignored_and_a_missing_one_is_no_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("odm-passfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_passfile(&path), Err(PassFileSkipped::TooOpen(0o644)));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_passfile(&path).unwrap().len(), 1);
        assert_eq!(read_passfile(&dir), Err(PassFileSkipped::NotAFile));
        assert_eq!(
            read_passfile(&dir.join("absent")),
            Err(PassFileSkipped::Missing)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_entry_never_shows_its_password_in_debug() {
        let entries = parse_passfile("h:1:d:u:s3cret\n");
        assert!(!format!("{entries:?}").contains("s3cret"));
    }
}
