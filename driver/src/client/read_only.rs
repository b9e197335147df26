//! [`ReadOnly`]: a client's query methods for statements the caller
//! promises change nothing, which may share one `Sync` with other reads.

use std::fmt;

use crate::client::client::{at_most_one, exactly_one, Client};
use crate::error::Error;
use crate::request::request::Access;
use crate::wire::bind_execute::Param;
use crate::wire::row::Row;
use crate::wire::statement::Statement;

/// The query methods of a [`Client`] for reads: statements the caller
/// promises change nothing (plain `SELECT`s, no `FOR UPDATE`, no function
/// that writes). Got from [`Client::read_only`].
///
/// # What changes
///
/// PostgreSQL flushes its answers once per `Sync`, and a request usually
/// ends with its own. A read sent through this view while earlier answers
/// on its connection are still outstanding joins a group of reads that
/// share one `Sync` instead: its bytes go out at once (the server runs it
/// as soon as it reads it), and the group's `Sync` follows when the
/// group's reads are all that is left to answer — or once the group holds
/// 32 reads, or before any other request. The server then sends the
/// group's answers in one burst, one `send` system call for the group
/// instead of one per read. A read on a connection with nothing
/// outstanding, inside a transaction, or with `coalesce_reads=false` in
/// the URL is sent exactly as [`Client::query`] sends it.
///
/// # The guarantee
///
/// Every read gets exactly its own rows or its own error, as without
/// grouping. The server runs a group as one implicit transaction and,
/// after an error, skips the rest of the group: the driver sends each
/// skipped read again, with its own `Sync`, so an error in another task's
/// read never becomes yours. What a group shares:
///
/// - under `READ COMMITTED` (PostgreSQL's default) each statement still
///   takes its own snapshot; under a server default of `REPEATABLE READ`
///   or `SERIALIZABLE` the reads of a group share one;
/// - a slow read delays the answers of the reads grouped behind it, as
///   pipelining already does for any request queued behind it;
/// - a grouped read that passes its `query_timeout` closes the connection
///   (the reads on it fail as closed, never as an unknown outcome, and are
///   safe to retry), since a cancel could hit a neighbour.
///
/// The promise matters: were a statement sent here to write, and a later
/// read of its group fail, the server would roll its write back after
/// reporting it done. Statements that write, lock or change session
/// state belong on [`Client::query`].
#[derive(Clone, Copy)]
pub struct ReadOnly<'a> {
    client: &'a Client,
}

impl fmt::Debug for ReadOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnly")
            .field("client", self.client)
            .finish()
    }
}

impl<'a> ReadOnly<'a> {
    pub(crate) fn new(client: &'a Client) -> ReadOnly<'a> {
        ReadOnly { client }
    }

    /// The client these reads go to.
    pub fn client(&self) -> &'a Client {
        self.client
    }

    /// [`Client::query`] for a read: its rows.
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.client.query_as(sql, params, Access::ReadOnly)
    }

    /// [`Client::query_one`] for a read: exactly one row
    /// ([`Error::RowCount`] otherwise).
    pub fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, Error> {
        exactly_one(self.query(sql, params)?)
    }

    /// [`Client::query_opt`] for a read: at most one row
    /// ([`Error::RowCount`] when it returns more).
    pub fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Error> {
        at_most_one(self.query(sql, params)?)
    }

    /// [`Client::query_statement`] for a read of a prepared statement.
    pub fn query_statement(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, Error> {
        self.client
            .query_statement_as(statement, params, Access::ReadOnly)
    }
}
