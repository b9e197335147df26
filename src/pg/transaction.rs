//! Transactions and savepoints.

use std::fmt;

use super::client::Client;
use super::copy::{CopyInWriter, CopyOutReader};
use super::row::Row;
use super::statement::Statement;
use super::Param;
use crate::Error;

/// Whether the connection is inside a transaction, as reported by the
/// server's last `ReadyForQuery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TransactionStatus {
    /// Not in a transaction.
    Idle = b'I',
    /// In a transaction.
    InTransaction = b'T',
    /// In a failed transaction: only `ROLLBACK` will be accepted.
    Failed = b'E',
}

impl TransactionStatus {
    pub(crate) fn from_byte(b: u8) -> TransactionStatus {
        match b {
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Idle,
        }
    }
}

/// A transaction (or a savepoint inside one). It holds the connection
/// exclusively; dropped without [`Transaction::commit`] it rolls back.
pub struct Transaction<'a> {
    client: &'a Client,
    savepoint: Option<String>,
    done: bool,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("savepoint", &self.savepoint)
            .field("done", &self.done)
            .finish()
    }
}

/// Quotes an identifier for use in SQL.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl<'a> Transaction<'a> {
    pub(crate) fn new(client: &'a mut Client) -> Transaction<'a> {
        Transaction {
            client,
            savepoint: None,
            done: false,
        }
    }

    /// The connection this transaction runs on.
    pub fn client(&self) -> &Client {
        self.client
    }

    /// Commits (or, for a savepoint, releases it).
    pub fn commit(mut self) -> Result<(), Error> {
        self.done = true;
        match &self.savepoint {
            Some(name) => self
                .client
                .batch_execute(&format!("RELEASE SAVEPOINT {}", quote_identifier(name))),
            None => self.client.batch_execute("COMMIT"),
        }
    }

    /// Rolls back (or, for a savepoint, rolls back to it and releases it).
    pub fn rollback(mut self) -> Result<(), Error> {
        self.done = true;
        self.client.batch_execute(&self.rollback_sql())
    }

    fn rollback_sql(&self) -> String {
        match &self.savepoint {
            Some(name) => {
                let name = quote_identifier(name);
                format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
            }
            None => "ROLLBACK".to_owned(),
        }
    }

    /// Opens a savepoint named `name`: a nested transaction that commits
    /// by releasing the savepoint and rolls back to it.
    pub fn savepoint(&mut self, name: &str) -> Result<Transaction<'_>, Error> {
        self.client
            .batch_execute(&format!("SAVEPOINT {}", quote_identifier(name)))?;
        Ok(Transaction {
            client: self.client,
            savepoint: Some(name.to_owned()),
            done: false,
        })
    }

    /// See [`Client::batch_execute`].
    pub fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.client.batch_execute(sql)
    }

    /// See [`Client::execute`].
    pub fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        self.client.execute(sql, params)
    }

    /// See [`Client::query`].
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.client.query(sql, params)
    }

    /// See [`Client::query_one`].
    pub fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, Error> {
        self.client.query_one(sql, params)
    }

    /// See [`Client::query_opt`].
    pub fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Error> {
        self.client.query_opt(sql, params)
    }

    /// See [`Client::prepare`].
    pub fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.client.prepare(sql)
    }

    /// See [`Client::query_statement`].
    pub fn query_statement(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, Error> {
        self.client.query_statement(statement, params)
    }

    /// See [`Client::execute_statement`].
    pub fn execute_statement(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> Result<u64, Error> {
        self.client.execute_statement(statement, params)
    }

    /// See [`Client::copy_in`].
    pub fn copy_in(&self, sql: &str) -> Result<CopyInWriter<'_>, Error> {
        self.client.copy_in(sql)
    }

    /// See [`Client::copy_out`].
    pub fn copy_out(&self, sql: &str) -> Result<CopyOutReader<'_>, Error> {
        self.client.copy_out(sql)
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
            let queued = self.client.request_detached(|buf| {
                postgres_protocol::message::frontend::query(&sql, buf)?;
                Ok(())
            });
            if let Err(e) = queued {
                log::warn!(target: "odm::pg", "rollback of a dropped transaction failed: {e}");
            }
        }
    }
}
