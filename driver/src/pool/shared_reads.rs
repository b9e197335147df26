//! [`SharedReads`]: the pool's shared-mode query methods for reads the
//! caller promises change nothing, which may share one `Sync` with other
//! tasks' reads on a shared connection.

use std::fmt;

use super::Pool;
use crate::error::Error;
use crate::wire::bind_execute::Param;
use crate::wire::row::Row;

/// [`Pool::query`], [`Pool::query_one`] and [`Pool::query_opt`] for reads:
/// statements the caller promises change nothing (plain `SELECT`s, no
/// `FOR UPDATE`, no function that writes). Got from [`Pool::read_only`].
///
/// Each runs as one autocommit statement on a shared, pipelined
/// connection, as [`Pool::query`] does, and is sent through
/// [`Client::read_only`](crate::client::client::Client::read_only): while
/// earlier answers on that connection are outstanding it shares one `Sync`
/// with other reads, so the server flushes its answers once per group.
/// Every read still gets exactly its own rows or its own error; see
/// [`ReadOnly`](crate::client::read_only::ReadOnly) for the guarantee and
/// what a group shares, and the URL setting `coalesce_reads` to turn it
/// off. Statements that would leave state on the connection are refused
/// before anything is sent, as on [`Pool::query`].
#[derive(Clone, Copy)]
pub struct SharedReads<'a> {
    pool: &'a Pool,
}

impl fmt::Debug for SharedReads<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedReads")
            .field("pool", self.pool)
            .finish()
    }
}

impl<'a> SharedReads<'a> {
    pub(crate) fn new(pool: &'a Pool) -> SharedReads<'a> {
        SharedReads { pool }
    }

    /// [`Pool::query`] for a read: its rows.
    ///
    /// # Errors
    ///
    /// Those of [`Pool::query`].
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.pool.shared_sql("pool read", sql, |client| {
            client.read_only().query(sql, params)
        })
    }

    /// [`Pool::query_one`] for a read: exactly one row
    /// ([`Error::RowCount`] otherwise).
    pub fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, Error> {
        self.pool.shared_sql("pool read", sql, |client| {
            client.read_only().query_one(sql, params)
        })
    }

    /// [`Pool::query_opt`] for a read: at most one row
    /// ([`Error::RowCount`] for more).
    pub fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Error> {
        self.pool.shared_sql("pool read", sql, |client| {
            client.read_only().query_opt(sql, params)
        })
    }
}
