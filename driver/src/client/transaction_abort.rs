//! [`TransactionAbort`]: what a transaction knows about its own failure, and
//! the truth about `COMMIT` and `RELEASE SAVEPOINT`.
//!
//! When a statement fails inside a transaction, PostgreSQL aborts the
//! transaction: it ignores every later command (SQLSTATE 25P02) and answers
//! `COMMIT` with the tag `ROLLBACK` — a success message for a commit that
//! did not happen. The tracker keeps the error of the statement that
//! aborted the transaction, refuses later statements without sending them
//! ([`Error::TransactionAborted`] naming that error), and turns a `COMMIT`
//! that did not commit into [`Error::RolledBack`] with the cause. Both
//! [`Transaction`](super::Transaction) and the ORM's session use
//! it; the connection's transaction status (from the last `ReadyForQuery`)
//! is the source of truth, the tracker only remembers why.

use crate::client::client::Client;
use crate::error::{sqlstate, DbError, Error};
use crate::request::simple_query::TransactionEnd;
use crate::wire::transaction_status::TransactionStatus;

/// The first failure of the transaction running on one connection.
#[derive(Debug, Default)]
pub struct TransactionAbort {
    /// The error of the statement that aborted the transaction, while it
    /// stays aborted.
    cause: Option<Box<DbError>>,
}

impl TransactionAbort {
    /// [`Error::TransactionAborted`] when the transaction on `client` is
    /// aborted and `sql` is not a rollback (the only command the server
    /// still accepts); `sql` is `None` for statements the caller did not
    /// write (ORM statements), which are never rollbacks.
    pub fn refuse_if_aborted(&mut self, client: &Client, sql: Option<&str>) -> Result<(), Error> {
        if client.transaction_status() != TransactionStatus::Failed {
            self.cause = None;
            return Ok(());
        }
        if sql.is_some_and(is_rollback) {
            return Ok(());
        }
        Err(Error::TransactionAborted {
            cause: self.cause.clone(),
        })
    }

    /// Records the outcome of a statement that ran on `client`: the first
    /// error that left the transaction aborted is kept; a healthy status
    /// (after a rollback to a savepoint) forgets it.
    pub fn note<T>(&mut self, client: &Client, outcome: &Result<T, Error>) {
        if client.transaction_status() != TransactionStatus::Failed {
            self.cause = None;
            return;
        }
        if self.cause.is_none() {
            if let Err(e) = outcome {
                self.cause = e.as_db_error().map(|db| Box::new(db.clone()));
            }
        }
    }

    /// Sends `COMMIT` and reports whether it committed: an answer other than
    /// the `COMMIT` tag (the server rolled an aborted transaction back) is
    /// [`Error::RolledBack`] with the first failure, and an error from the
    /// commit itself (a deferred constraint, a serialization failure) that
    /// ended the transaction is [`Error::RolledBack`] with that error. Any
    /// other error (the connection broke, a timeout) is returned as is: the
    /// outcome is then unknown.
    pub fn commit(&mut self, client: &Client) -> Result<(), Error> {
        let outcome = client.simple_query("COMMIT");
        let status = client.transaction_status();
        commit_truth(outcome, Some(status), self.cause.take())
    }

    /// Sends `COMMIT` without waiting for its answer, so that the
    /// connection can be handed to another task at once; the answer, read
    /// by [`PendingCommit::outcome`], says what [`TransactionAbort::commit`]
    /// would have said. Only for a healthy transaction.
    pub fn send_commit(&mut self, client: &Client) -> Result<PendingCommit, Error> {
        Ok(PendingCommit {
            answer: client.send_transaction_end("COMMIT")?,
            cause: self.cause.take(),
        })
    }

    /// The [`PendingCommit`] of a `COMMIT` that `client` sent behind its
    /// last statement ([`crate::seam::commit_behind_next_statement`]), when
    /// it did; `outcome` is that statement's. A server error of the
    /// statement aborted the transaction, so the `COMMIT` will answer
    /// [`Error::RolledBack`] with it as the cause.
    pub fn commit_sent_behind<T>(
        &mut self,
        client: &Client,
        outcome: &Result<T, Error>,
    ) -> Option<PendingCommit> {
        let answer = client.take_commit_sent_behind()?;
        let failure = outcome.as_ref().err().and_then(Error::as_db_error);
        let cause = failure.map(|db| Box::new(db.clone()));
        Some(PendingCommit {
            answer,
            cause: cause.or_else(|| self.cause.take()),
        })
    }

    /// Releases the savepoint `name` (already quoted as needed). When the
    /// transaction is aborted the savepoint cannot be released: it is rolled
    /// back to (and released), so the enclosing transaction is healthy
    /// again, and the answer is [`Error::RolledBack`] with the first
    /// failure.
    pub fn release_savepoint(&mut self, client: &Client, name: &str) -> Result<(), Error> {
        if client.transaction_status() != TransactionStatus::Failed {
            let released = client.batch_execute(&format!("RELEASE SAVEPOINT {name}"));
            match released {
                Err(e) if e.code() == Some(sqlstate::IN_FAILED_SQL_TRANSACTION) => {}
                other => {
                    self.note(client, &other);
                    return other;
                }
            }
        }
        let cause = self.cause.take();
        client.batch_execute(&rollback_to_savepoint_sql(name))?;
        Err(Error::RolledBack { cause })
    }

    /// Rolls back to the savepoint `name` (already quoted) and releases it;
    /// the transaction is healthy again.
    pub fn rollback_to_savepoint(&mut self, client: &Client, name: &str) -> Result<(), Error> {
        let outcome = client.batch_execute(&rollback_to_savepoint_sql(name));
        self.note(client, &outcome);
        outcome
    }
}

/// A `COMMIT` sent by [`TransactionAbort::send_commit`] whose answer has not
/// been read.
#[derive(Debug)]
pub struct PendingCommit {
    answer: TransactionEnd,
    /// The first failure of the transaction, if one was kept.
    cause: Option<Box<DbError>>,
}

impl PendingCommit {
    /// Waits for the answer and reports whether the transaction committed,
    /// exactly as [`TransactionAbort::commit`] does; the transaction status is
    /// the one the answer's own `ReadyForQuery` reported (the connection
    /// may already run another task's requests).
    pub fn outcome(self) -> Result<(), Error> {
        let (outcome, status) = self.answer.finish();
        commit_truth(outcome.map(|done| done.tag), status, self.cause)
    }
}

/// What the answer to `COMMIT` says about the transaction: the `COMMIT`
/// tag is a commit; another tag (`ROLLBACK`: the transaction was aborted)
/// is [`Error::RolledBack`] with `cause`; an error that left the session
/// outside a transaction (`status`, from the answer's `ReadyForQuery`) is
/// [`Error::RolledBack`] with that error; anything else (no answer) is
/// returned as is, the outcome unknown.
fn commit_truth(
    outcome: Result<String, Error>,
    status: Option<TransactionStatus>,
    cause: Option<Box<DbError>>,
) -> Result<(), Error> {
    match outcome {
        Ok(tag) if tag == "COMMIT" => Ok(()),
        Ok(_) => Err(Error::RolledBack { cause }),
        Err(Error::Db(error))
            if error.severity == "ERROR" && status == Some(TransactionStatus::Idle) =>
        {
            Err(Error::RolledBack { cause: Some(error) })
        }
        Err(e) => Err(e),
    }
}

/// `ROLLBACK TO SAVEPOINT name; RELEASE SAVEPOINT name`.
pub(crate) fn rollback_to_savepoint_sql(name: &str) -> String {
    format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
}

/// Whether `sql` starts with `ROLLBACK` or `ABORT` (case-insensitive,
/// after white space): the commands an aborted transaction still accepts.
fn is_rollback(sql: &str) -> bool {
    let sql = sql.trim_start();
    ["ROLLBACK", "ABORT"].iter().any(|keyword| {
        sql.get(..keyword.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(keyword))
            && !sql[keyword.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::is_rollback;

    #[test]
    fn rollbacks_are_recognised_whatever_their_case_and_leading_space() {
        for sql in [
            "ROLLBACK",
            "  rollback to savepoint a",
            "\nAbort;",
            "ROLLBACK;",
        ] {
            assert!(is_rollback(sql), "{sql}");
        }
        for sql in ["COMMIT", "rollbacks", "SELECT 1", "", "abortive", "ROLL"] {
            assert!(!is_rollback(sql), "{sql}");
        }
    }
}
