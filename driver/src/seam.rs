//! The seam between this driver and an object mapper built on it: the few
//! entries a mapper's session needs beyond the public client and pool API.
//!
//! An application never needs these; `odm` (the `green-odm` crate) is the
//! one caller, and everything it does with the driver goes through the
//! public API plus this module. What each entry is for:
//!
//! | entry | what the mapper does with it |
//! |---|---|
//! | [`require_green`] | refuses database work off a coroutine (`acquire in main greenlet`) before its own entry points do anything |
//! | [`run_off_scheduler`] | reads migration files on a helper thread, never on a scheduler thread |
//! | [`shared`], [`shared_sql`] | runs a session's statement on one of the pool's shared (pipelined) connections, before the session needs its own |
//! | [`check_batch_statement`] | refuses a statement an atomic batch cannot hold, before anything is sent |
//! | [`queue_begin`] | sends a session's `BEGIN` / `SAVEPOINT` in the same write as its first statement |
//! | [`TransactionAbort`], [`PendingCommit`] | remembers what aborted a session's transaction and tells the truth about `COMMIT` |
//! | [`pass_on`] | hands a committing session's connection to the next waiting task once `COMMIT` is sent |
//! | [`commit_behind_next_statement`] | sends a session's `COMMIT` in the same write as its last statement (`Session::commit_with`) |
//!
//! These follow the crate's version like the rest of its API.

pub use crate::client::transaction_abort::{PendingCommit, TransactionAbort};
pub use crate::error::context::require_green;
pub use crate::net::off_scheduler::run_off_scheduler;

use crate::client::client::Client;
use crate::error::Error;
use crate::pool::{Pool, PooledConnection};

/// Runs `statement` on one of `pool`'s shared, pipelined connections
/// (refused off a coroutine, naming `operation`); `statement`'s error type
/// is the caller's, so an ORM's closure keeps its own. The statement must leave
/// no state on the connection: the caller has checked it.
pub fn shared<R, E: From<Error>>(
    pool: &Pool,
    operation: &'static str,
    statement: impl FnOnce(&Client) -> Result<R, E>,
) -> Result<R, E> {
    pool.shared(operation, statement)
}

/// [`shared`] for caller-written SQL: a statement that would leave state on
/// the shared connection (transaction control, `COPY`, `LISTEN`, session
/// `SET`, ...) is refused with [`Error::NotShareable`] before anything is
/// sent.
pub fn shared_sql<R, E: From<Error>>(
    pool: &Pool,
    operation: &'static str,
    sql: &str,
    statement: impl FnOnce(&Client) -> Result<R, E>,
) -> Result<R, E> {
    pool.shared_sql(operation, sql, statement)
}

/// `Ok` when `sql` may be a statement of an atomic batch
/// ([`Pool::atomic_batch`]), else [`Error::NotShareable`].
pub fn check_batch_statement(sql: &str) -> Result<(), Error> {
    Pool::check_batch_statement(sql)
}

/// Queues one simple statement (`BEGIN ...`, `SAVEPOINT ...`) to go out in
/// the same write as `client`'s next request, whose answer also reports
/// the statement's failure.
pub fn queue_begin(client: &Client, sql: &str) -> Result<(), Error> {
    client.queue_simple_statement_ahead(sql)
}

/// With `on`, the next statement `client` runs by SQL text (`execute`,
/// `query`, `query_one`, `query_opt`, `for_each_row`) is a transaction's
/// last: `COMMIT` goes out behind it in the same write, and the statement's
/// own answer is returned as usual. The `COMMIT`'s answer is then read
/// through [`TransactionAbort::commit_sent_behind`]. A statement that runs
/// unnamed (`statement_cache=false`) goes alone, leaving the `COMMIT` to
/// the caller. `false` withdraws a request not yet used.
pub fn commit_behind_next_statement(client: &Client, on: bool) {
    client.set_commit_behind(on);
}

/// Hands `conn` straight to the task at the front of its pool's queue,
/// right after a `COMMIT` was sent on it and before the answer comes.
/// `None` once handed on; `Some` returns it untouched when the pool would
/// not hand it on now (nobody waits, shared statements wait, the pool is
/// closed, the connection broken or expired): drop it once the answer is
/// in.
pub fn pass_on(conn: PooledConnection) -> Option<PooledConnection> {
    conn.pass_on()
}
