//! Transactions and savepoints.
//!
//! A statement that fails inside a [`Transaction`] aborts it on the server.
//! The transaction remembers that first error: the next statement is
//! refused without being sent ([`Error::TransactionAborted`] naming it),
//! [`Transaction::commit`] answers [`Error::RolledBack`] with it (the server
//! answers such a `COMMIT` with `ROLLBACK`, which used to look like
//! success), and an error of the commit itself (a deferred constraint, a
//! serialization failure) is [`Error::RolledBack`] too. Rolling a savepoint
//! back makes the enclosing transaction healthy again; committing (releasing)
//! a savepoint whose statements failed rolls back to it instead and answers
//! [`Error::RolledBack`].

use std::fmt;

use parking_lot::Mutex;
use postgres_protocol::escape::escape_identifier;

use crate::client::client::Client;
use crate::client::copy::{CopyInWriter, CopyOutReader};
use crate::client::observe::observe_statement;
use crate::client::transaction_abort::{rollback_to_savepoint_sql, TransactionAbort};
use crate::error::Error;
use crate::wire::bind_execute::Param;
use crate::wire::row::Row;
use crate::wire::statement::Statement;

/// A transaction (or a savepoint inside one). It holds the connection
/// exclusively; dropped without [`Transaction::commit`] it rolls back.
pub struct Transaction<'a> {
    client: &'a Client,
    savepoint: Option<String>,
    done: bool,
    /// The first failure of this transaction (or savepoint), while it is
    /// aborted; locked only around status checks, never across I/O.
    aborted: Mutex<TransactionAbort>,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("savepoint", &self.savepoint)
            .field("done", &self.done)
            .finish()
    }
}

impl<'a> Transaction<'a> {
    pub(crate) fn new(client: &'a mut Client) -> Transaction<'a> {
        Transaction {
            client,
            savepoint: None,
            done: false,
            aborted: Mutex::new(TransactionAbort::default()),
        }
    }

    /// The connection this transaction runs on. Statements run on it
    /// directly are not tracked: if one fails, the transaction still
    /// refuses what follows and commit still reports the rollback, but
    /// without naming the cause.
    pub fn client(&self) -> &Client {
        self.client
    }

    /// Runs `work` unless the transaction is aborted (a rollback statement
    /// `sql` still passes), and keeps the error that aborts it.
    fn run<T>(
        &self,
        sql: Option<&str>,
        work: impl FnOnce(&'a Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.aborted.lock().refuse_if_aborted(self.client, sql)?;
        let outcome = work(self.client);
        self.aborted.lock().note(self.client, &outcome);
        outcome
    }

    /// Commits (or, for a savepoint, releases it).
    ///
    /// # Errors
    ///
    /// [`Error::RolledBack`] when nothing was committed: a statement of the
    /// transaction had failed (the cause is its error), or the commit itself
    /// failed (a deferred constraint, a serialization failure: the cause is
    /// that error, and [`Error::is_retryable`] follows it). For a savepoint
    /// whose statements failed, the savepoint is rolled back to and the
    /// enclosing transaction goes on. Other errors (the connection broke)
    /// leave the outcome unknown.
    pub fn commit(mut self) -> Result<(), Error> {
        self.done = true;
        let aborted = self.aborted.get_mut();
        match &self.savepoint {
            Some(name) => aborted.release_savepoint(self.client, &escape_identifier(name)),
            None => {
                let database = self.client.config().dbname();
                observe_statement(database, "COMMIT", |_| None, || aborted.commit(self.client))
            }
        }
    }

    /// Rolls back (or, for a savepoint, rolls back to it and releases it).
    pub fn rollback(mut self) -> Result<(), Error> {
        self.done = true;
        self.client.batch_execute(&self.rollback_sql())
    }

    fn rollback_sql(&self) -> String {
        match &self.savepoint {
            Some(name) => rollback_to_savepoint_sql(&escape_identifier(name)),
            None => "ROLLBACK".to_owned(),
        }
    }

    /// Opens a savepoint named `name`: a nested transaction that commits
    /// by releasing the savepoint and rolls back to it.
    ///
    /// # Errors
    ///
    /// [`Error::TransactionAborted`] when the transaction is aborted; the
    /// server's error.
    pub fn savepoint(&mut self, name: &str) -> Result<Transaction<'_>, Error> {
        let sql = format!("SAVEPOINT {}", escape_identifier(name));
        self.run(Some(&sql), |client| client.batch_execute(&sql))?;
        Ok(Transaction {
            client: self.client,
            savepoint: Some(name.to_owned()),
            done: false,
            aborted: Mutex::new(TransactionAbort::default()),
        })
    }

    /// See [`Client::batch_execute`]. In an aborted transaction only a
    /// rollback (`ROLLBACK`, `ROLLBACK TO SAVEPOINT ...`) is sent; anything
    /// else is [`Error::TransactionAborted`], as for every method below.
    pub fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.run(Some(sql), |client| client.batch_execute(sql))
    }

    /// See [`Client::execute`].
    pub fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        self.run(Some(sql), |client| client.execute(sql, params))
    }

    /// See [`Client::query`].
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.run(Some(sql), |client| client.query(sql, params))
    }

    /// See [`Client::query_one`].
    pub fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, Error> {
        self.run(Some(sql), |client| client.query_one(sql, params))
    }

    /// See [`Client::query_opt`].
    pub fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Error> {
        self.run(Some(sql), |client| client.query_opt(sql, params))
    }

    /// See [`Client::prepare`].
    pub fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.run(None, |client| client.prepare(sql))
    }

    /// See [`Client::query_statement`].
    pub fn query_statement(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, Error> {
        self.run(Some(statement.sql()), |client| {
            client.query_statement(statement, params)
        })
    }

    /// See [`Client::execute_statement`].
    pub fn execute_statement(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> Result<u64, Error> {
        self.run(Some(statement.sql()), |client| {
            client.execute_statement(statement, params)
        })
    }

    /// See [`Client::copy_in`].
    pub fn copy_in(&self, sql: &str) -> Result<CopyInWriter<'_>, Error> {
        self.run(None, |client| client.copy_in(sql))
    }

    /// See [`Client::copy_out`].
    pub fn copy_out(&self, sql: &str) -> Result<CopyOutReader<'_>, Error> {
        self.run(None, |client| client.copy_out(sql))
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.done || self.client.is_closed() {
            return;
        }
        let sql = self.rollback_sql();
        if may::coroutine::is_coroutine() {
            if let Err(e) = self.client.batch_execute(&sql) {
                log::warn!(target: "odm::pg", "rollback of a dropped transaction failed: {e}");
            }
        } else {
            // Off a coroutine nothing may wait: queue the rollback ahead of
            // whatever this connection runs next.
            if let Err(e) = self.client.queue_simple_statement(&sql) {
                log::warn!(target: "odm::pg", "rollback of a dropped transaction failed: {e}");
            }
        }
    }
}
