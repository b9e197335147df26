//! [`PooledConnection`]: an exclusive checkout, returned on drop.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::connector::PgConnector;
use super::keeper::Keeper;
use super::lifecycle::Age;
use super::state::Checkout;
use crate::client::client::Client;

/// A connection checked out of a [`Pool`](crate::Pool) for one task's
/// exclusive use (from [`Pool::acquire`](crate::Pool::acquire)).
///
/// It dereferences to [`Client`], so every driver method is available,
/// including [`Client::transaction`]. Dropping it hands the connection back:
///
/// - still inside a transaction (a `BEGIN` without `COMMIT`, a failed
///   transaction, a leaked `Transaction`): it is rolled back first, and
///   closed instead if the rollback fails, so the next task never inherits
///   uncommitted work or an aborted transaction;
/// - broken ([`Client::is_closed`], e.g. the server terminated the backend):
///   it is closed and its slot freed, so the pool opens a fresh one on demand;
/// - dropped while its task panics: it is closed (the panic may have cut a
///   request short, and a rollback would park the unwinding task);
/// - older than the pool's `max_lifetime`: it is closed;
/// - the pool was [closed](crate::Pool::close): it is closed.
///
/// The rollback is a round trip on the dropping coroutine. Session state a
/// task changed with `SET` (without `LOCAL`), `LISTEN`, temporary tables or
/// advisory locks is *not* reset; use `SET LOCAL` inside a transaction, or
/// [`PooledConnection::discard`] a connection whose session you changed.
pub struct PooledConnection {
    client: Option<Client>,
    /// When it expires and since when it was idle, handed back with it.
    age: Age,
    keeper: Arc<Keeper<PgConnector>>,
    task: u64,
    /// Closes the connection and frees its slot if the task is abandoned
    /// without unwinding (a stack overflow: this value is never dropped
    /// then); unregistered when this value is dropped.
    _abandoned: green::AbandonGuard,
}

impl PooledConnection {
    pub(crate) fn new(
        checkout: Checkout<Client>,
        keeper: Arc<Keeper<PgConnector>>,
        task: u64,
    ) -> Self {
        checkout.conn.set_exclusive(true);
        let abandoned = {
            let conn = checkout.conn.connection().clone();
            let keeper = Arc::clone(&keeper);
            // The server rolls back the transaction of a closed session and
            // releases its locks.
            green::on_abandon(move || {
                conn.terminate();
                keeper.reclaim_abandoned(task);
            })
        };
        PooledConnection {
            client: Some(checkout.conn),
            age: checkout.age,
            keeper,
            task,
            _abandoned: abandoned,
        }
    }

    /// Closes this connection instead of returning it to the pool; its slot
    /// is freed and a fresh connection is opened when one is needed.
    pub fn discard(mut self) {
        if let Some(client) = self.client.take() {
            self.keeper.discard(client, Some(self.task));
        }
    }

    /// Hands the connection straight to the task at the front of the
    /// pool's queue for one, right after a `COMMIT` was sent on it and
    /// before its answer comes (that task's requests follow the `COMMIT`
    /// on the wire, and the server reads them outside any transaction).
    /// `None` once handed on; `Some` returns it untouched when the pool
    /// would not hand it on now (nobody waits, shared statements wait,
    /// closed, broken, expired): drop it once the answer is in.
    pub(crate) fn pass_on(mut self) -> Option<PooledConnection> {
        let conn = self.client.take()?;
        let checkout = Checkout {
            conn,
            age: self.age,
        };
        match self.keeper.pass_on(checkout, self.task) {
            Ok(()) => None,
            Err(checkout) => {
                self.client = Some(checkout.conn);
                Some(self)
            }
        }
    }
}

impl Deref for PooledConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        // Invariant: `client` is only taken in `discard` and `drop`, which
        // consume the value.
        self.client
            .as_ref()
            .expect("pooled connection used after release")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("pooled connection used after release")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.client.take() {
            conn.set_exclusive(false);
            let checkout = Checkout {
                conn,
                age: self.age,
            };
            self.keeper.give_back(checkout, Some(self.task));
        }
    }
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}
