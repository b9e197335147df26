//! Shared mode: one autocommit statement on a pipelined connection, without
//! an exclusive checkout. The guarantees are in the
//! [module documentation](super#shared-mode-guarantees).

use std::sync::Arc;

use super::connector::{Connector, PgConnector};
use super::keeper::Keeper;
use super::shared_reads::SharedReads;
use super::shared_statement_rules;
use super::state::Lease;
use super::Pool;
use crate::client::client::Client;
use crate::client::host_choice::asked_whether_it_fits;
use crate::error::context::require_green;
use crate::error::Error;
use crate::request::atomic_batch::BatchAnswer;
use crate::wire::bind_execute::Param;
use crate::wire::row::Row;

/// A shared statement's hold on its connection; released on drop, also when
/// the statement panics or the coroutine is cancelled mid-statement.
struct SharedUse<'a> {
    keeper: &'a Arc<Keeper<PgConnector>>,
    lease: Option<Lease<Client>>,
}

impl SharedUse<'_> {
    fn client(&self) -> Option<&Client> {
        self.lease.as_ref().map(|lease| &*lease.conn)
    }
}

impl Drop for SharedUse<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.keeper.release(lease);
        }
    }
}

impl Pool {
    /// Runs `statement` on a shared connection (also used by sessions for
    /// their reads before the first write).
    pub(crate) fn shared<R, E: From<Error>>(
        &self,
        operation: &'static str,
        statement: impl FnOnce(&Client) -> Result<R, E>,
    ) -> Result<R, E> {
        require_green(operation)?;
        let held = SharedUse {
            keeper: &self.keeper,
            lease: Some(self.fitting_lease()?),
        };
        self.keeper.counters.shared_statement();
        match held.client() {
            Some(client) => {
                client.set_shared(true);
                statement(client)
            }
            None => Err(Error::PoolClosed.into()),
        }
    }

    /// A shared connection that fits the pool's `target_session_attrs`:
    /// against a server that does not report `in_hot_standby` (PostgreSQL
    /// 13), a `standby` or `read-only` pool asks the server first (one more
    /// round trip) and retires a connection a promotion made unfit, then
    /// takes another (opened through the host list when none is left).
    fn fitting_lease(&self) -> Result<Lease<Client>, Error> {
        loop {
            let lease = self.keeper.lease()?;
            if !PgConnector::must_ask(&lease.conn) {
                return Ok(lease);
            }
            match asked_whether_it_fits(&lease.conn) {
                Ok(true) => return Ok(lease),
                Ok(false) => self.keeper.release_unfit(lease),
                Err(err) => {
                    self.keeper.release_unfit(lease);
                    return Err(err);
                }
            }
        }
    }

    /// [`Pool::shared`] for user SQL (also used by autocommit sessions): a
    /// statement that would leave state on the shared connection is refused
    /// before anything is sent.
    pub(crate) fn shared_sql<R, E: From<Error>>(
        &self,
        operation: &'static str,
        sql: &str,
        statement: impl FnOnce(&Client) -> Result<R, E>,
    ) -> Result<R, E> {
        shared_statement_rules::check(sql)?;
        self.shared(operation, statement)
    }

    /// Runs one autocommit statement on a shared, pipelined connection and
    /// returns its rows.
    ///
    /// # Errors
    ///
    /// [`Error::NotShareable`] before anything is sent for a statement that
    /// would leave state on the connection (transaction control, `COPY`,
    /// `LISTEN`, session `SET`, `PREPARE`, cursors, `DISCARD`, temporary
    /// tables); the errors of [`Pool::acquire`] (wrong context, nested
    /// acquire, pool timeout, closed pool, connect errors), then those of
    /// [`Client::query`].
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.shared_sql("pool query", sql, |client| client.query(sql, params))
    }

    /// Like [`Pool::query`] for a statement that returns exactly one row;
    /// [`Error::RowCount`] otherwise.
    pub fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, Error> {
        self.shared_sql("pool query", sql, |client| client.query_one(sql, params))
    }

    /// Like [`Pool::query`] for a statement that returns at most one row;
    /// [`Error::RowCount`] for more.
    pub fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Error> {
        self.shared_sql("pool query", sql, |client| client.query_opt(sql, params))
    }

    /// The shared-mode query methods for reads the caller promises change
    /// nothing, which may share one `Sync` with other tasks' reads (see
    /// [`SharedReads`]).
    pub fn read_only(&self) -> SharedReads<'_> {
        SharedReads::new(self)
    }

    /// Runs one autocommit statement on a shared, pipelined connection and
    /// returns the number of rows it affected.
    pub fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        self.shared_sql("pool execute", sql, |client| client.execute(sql, params))
    }

    /// `Ok` when `sql` may be a statement of [`Pool::atomic_batch`], else
    /// [`Error::NotShareable`] (checked before anything is sent).
    pub(crate) fn check_batch_statement(sql: &str) -> Result<(), Error> {
        shared_statement_rules::check_in_batch(sql)
    }

    /// Runs `statements` as one atomic batch on a shared, pipelined
    /// connection ([`Client::atomic_batch`]): sent together with one `Sync`
    /// and answered in one round trip, they commit together or not at all,
    /// without an exclusive checkout. Other tasks' statements on the
    /// connection run before or after the batch, never inside it.
    ///
    /// # Errors
    ///
    /// [`Error::NotShareable`] before anything is sent for a statement
    /// [`Pool::execute`] would refuse, or one PostgreSQL refuses inside a
    /// transaction block (`VACUUM`, `CREATE DATABASE`, `... CONCURRENTLY`);
    /// the errors of [`Pool::acquire`]; then those of
    /// [`Client::atomic_batch`] ([`Error::RolledBack`] when nothing was
    /// stored).
    pub fn atomic_batch(
        &self,
        statements: &[(&str, &[Param<'_>])],
    ) -> Result<Vec<BatchAnswer>, Error> {
        for (sql, _) in statements {
            shared_statement_rules::check_in_batch(sql)?;
        }
        self.shared("pool atomic batch", |client| {
            client.atomic_batch(statements)
        })
    }
}
