//! Which statements may run on a shared connection.
//!
//! A shared connection carries the autocommit statements of many tasks at
//! once, so a statement that leaves state on the session would leak it to
//! every other task: an open transaction (their writes would run inside it
//! and vanish with its rollback), a `COPY` waiting for data, a `LISTEN`, a
//! session `SET`, a prepared statement or cursor, a temporary table.
//! [`check`] refuses those by their leading keywords before anything is
//! sent. It reads only the start of the statement (after comments and
//! white space), so it cannot see state changed by a function call such as
//! `set_config(..., false)` or `pg_advisory_lock`; the driver's backstop
//! (a shared request must end with the connection idle) catches what is
//! left of transaction state.

use crate::error::Error;

const USE_ACQUIRE: &str = "run it on a connection of your own (pool.acquire()) or inside a Session";
const USE_COPY_API: &str = "use copy_in() / copy_out() on pool.acquire()";
const USE_NOTIFICATIONS: &str =
    "LISTEN needs a connection of its own: pool.acquire(), then notifications()";

/// `Ok` when `sql` may run as one autocommit statement on a shared
/// connection, else [`Error::NotShareable`] naming the statement and what to
/// use instead.
pub(crate) fn check(sql: &str) -> Result<(), Error> {
    let mut words = Words::new(sql);
    let Some(first) = words.next() else {
        return Ok(());
    };
    let refuse = |command: String, alternative: &'static str| {
        Err(Error::NotShareable {
            command,
            alternative,
        })
    };
    match first.as_str() {
        "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE"
        | "PREPARE" | "DEALLOCATE" | "DISCARD" | "DECLARE" | "FETCH" | "MOVE" | "CLOSE"
        | "RESET" => refuse(first, USE_ACQUIRE),
        "COPY" => refuse(first, USE_COPY_API),
        "LISTEN" | "UNLISTEN" => refuse(first, USE_NOTIFICATIONS),
        // `SET LOCAL` and `SET TRANSACTION` only last for the statement's
        // own (implicit) transaction; `SET SESSION ...` and a plain `SET`
        // change the session.
        "SET" => match words.next().as_deref() {
            Some("LOCAL" | "TRANSACTION") => Ok(()),
            _ => refuse(first, USE_ACQUIRE),
        },
        "CREATE" => {
            let mut second = words.next();
            if matches!(second.as_deref(), Some("GLOBAL" | "LOCAL")) {
                second = words.next();
            }
            match second.as_deref() {
                Some("TEMP" | "TEMPORARY") => refuse(format!("{first} TEMPORARY"), USE_ACQUIRE),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

const RUN_ALONE: &str =
    "it cannot run inside a transaction block, so not in an atomic batch; run it alone (pool.execute())";

/// `Ok` when `sql` may be one statement of an atomic batch on a shared
/// connection: what [`check`] allows, except the statements PostgreSQL
/// refuses inside a transaction block (`VACUUM`, `CREATE DATABASE`,
/// `... CONCURRENTLY`, ...). As a batch's first statement the server would
/// run and commit such a statement on its own, so the batch would not be
/// one transaction.
pub(crate) fn check_in_batch(sql: &str) -> Result<(), Error> {
    check(sql)?;
    let words: Vec<String> = Words::new(sql).take(4).collect();
    let word = |i: usize| words.get(i).map_or("", String::as_str);
    let alone = match word(0) {
        "VACUUM" => true,
        "CREATE" | "DROP" => {
            matches!(word(1), "DATABASE" | "TABLESPACE" | "SUBSCRIPTION")
                || words.iter().any(|w| w == "CONCURRENTLY")
        }
        "ALTER" => matches!(word(1), "SYSTEM" | "SUBSCRIPTION"),
        "REINDEX" => words
            .iter()
            .any(|w| matches!(w.as_str(), "CONCURRENTLY" | "DATABASE" | "SYSTEM")),
        "CLUSTER" => words.len() == 1,
        _ => false,
    };
    if alone {
        let command = words[..words.len().min(2)].join(" ");
        return Err(Error::NotShareable {
            command,
            alternative: RUN_ALONE,
        });
    }
    Ok(())
}

/// The leading words of a statement, upper-cased, skipping white space,
/// `--` line comments and (nested) `/* */` block comments. Stops at the
/// first character that is not part of a word.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Words<'a> {
        Words { rest: sql }
    }

    fn skip_space_and_comments(&mut self) {
        loop {
            let trimmed = self.rest.trim_start();
            if let Some(after) = trimmed.strip_prefix("--") {
                self.rest = after.find('\n').map_or("", |i| &after[i + 1..]);
            } else if trimmed.starts_with("/*") {
                self.rest = skip_block_comment(trimmed);
            } else {
                self.rest = trimmed;
                return;
            }
        }
    }
}

impl Iterator for Words<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.skip_space_and_comments();
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let word = self.rest[..end].to_ascii_uppercase();
        self.rest = &self.rest[end..];
        Some(word)
    }
}

/// The text after the block comment `text` starts with (PostgreSQL's block
/// comments nest); empty when it is not closed.
fn skip_block_comment(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return &text[i..];
                }
            }
            _ => i += 1,
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::{check, check_in_batch};
    use crate::error::Error;

    fn refused(sql: &str) -> (String, &'static str) {
        match check(sql) {
            Err(Error::NotShareable {
                command,
                alternative,
            }) => (command, alternative),
            other => panic!("{sql:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn transaction_control_is_refused_whatever_its_case_and_comments() {
        for sql in [
            "BEGIN",
            "begin isolation level serializable",
            "  -- a comment\n  Begin;",
            "/* a /* nested */ comment */ START TRANSACTION",
            "COMMIT",
            "end",
            "ROLLBACK",
            "abort",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "PREPARE TRANSACTION 'x'",
        ] {
            let (_, alternative) = refused(sql);
            assert!(alternative.contains("pool.acquire()"), "{sql}");
        }
        assert_eq!(refused(" begin").0, "BEGIN");
    }

    #[test]
    fn session_state_statements_are_refused_with_their_alternative() {
        assert!(refused("COPY t FROM STDIN").1.contains("copy_in()"));
        assert!(refused("copy t to stdout").1.contains("copy_out()"));
        assert!(refused("LISTEN jobs").1.contains("notifications()"));
        assert!(refused("UNLISTEN *").1.contains("notifications()"));
        for sql in [
            "SET search_path = x",
            "SET SESSION timezone = 'UTC'",
            "RESET ALL",
            "PREPARE p AS SELECT 1",
            "DEALLOCATE ALL",
            "DISCARD ALL",
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH 1 FROM c",
            "MOVE NEXT IN c",
            "CLOSE c",
            "CREATE TEMP TABLE x (a int)",
            "create temporary table x (a int)",
            "CREATE LOCAL TEMPORARY TABLE x (a int)",
            "CREATE GLOBAL TEMP TABLE x (a int)",
        ] {
            refused(sql);
        }
        assert_eq!(refused("create temp table x ()").0, "CREATE TEMPORARY");
    }

    #[test]
    fn ordinary_statements_are_shareable() {
        for sql in [
            "",
            "   ",
            "-- only a comment",
            "SELECT 1",
            "select * from begin_log",
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET a = 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SET LOCAL statement_timeout = 100",
            "SET TRANSACTION READ ONLY",
            "CREATE TABLE t (a int)",
            "CREATE TEMPLATE_THING",
            "NOTIFY jobs",
            "VALUES (1)",
            "/* unclosed comment",
            "beginning",
        ] {
            assert!(check(sql).is_ok(), "{sql:?}");
        }
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction_block_are_refused_in_a_batch() {
        for sql in [
            "VACUUM t",
            "vacuum",
            "CREATE DATABASE x",
            "DROP DATABASE x",
            "CREATE TABLESPACE x LOCATION '/tmp'",
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "create unique index concurrently i on t (a)",
            "DROP INDEX CONCURRENTLY i",
            "ALTER SYSTEM SET work_mem = '4MB'",
            "REINDEX DATABASE x",
            "REINDEX TABLE CONCURRENTLY t",
            "CLUSTER",
        ] {
            match check_in_batch(sql) {
                Err(Error::NotShareable { alternative, .. }) => {
                    assert!(alternative.contains("atomic batch"), "{sql}")
                }
                other => panic!("{sql:?} was not refused: {other:?}"),
            }
        }
        assert!(matches!(
            check_in_batch("BEGIN"),
            Err(Error::NotShareable { .. })
        ));
        for sql in [
            "UPDATE t SET a = 1",
            "INSERT INTO t VALUES (1)",
            "CREATE TABLE t (a int)",
            "CREATE INDEX i ON t (a)",
            "REINDEX TABLE t",
            "CLUSTER t USING i",
            "DELETE FROM vacuum_log",
        ] {
            assert!(check_in_batch(sql).is_ok(), "{sql:?}");
        }
    }
}
