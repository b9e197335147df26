//! The mapper's entry points to sessions and transactions:
//! [`Mapper::session`], [`Mapper::begin`] / [`Mapper::transaction`] (and
//! their retrying forms), and the independent ones,
//! [`Mapper::begin_independent`] / [`Mapper::session_independent`]. How
//! they compose on one task is told in the [session module
//! docs](crate::session#composing-transactions).

use crate::session::transaction_span::in_transaction_span;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use super::bind_connection::busy;
use super::scope::{Opening, Scope};
use super::Session;
use crate::error::{Error, Result};
use crate::mapper::Mapper;
use green_postgres::seam::require_green;

/// Lets [`Mapper::transaction_with_retry`] see the odm error inside a
/// caller's error type, to tell whether a failed attempt is worth retrying
/// ([`Error::is_retryable`]: a serialization failure or a deadlock).
///
/// ```
/// #[derive(Debug)]
/// enum ShopError {
///     OutOfStock,
///     Db(odm::Error),
/// }
///
/// impl From<odm::Error> for ShopError {
///     fn from(e: odm::Error) -> Self {
///         ShopError::Db(e)
///     }
/// }
///
/// impl odm::session::AsOdmError for ShopError {
///     fn as_odm_error(&self) -> Option<&odm::Error> {
///         match self {
///             ShopError::Db(e) => Some(e),
///             ShopError::OutOfStock => None,
///         }
///     }
/// }
/// ```
pub trait AsOdmError {
    /// The odm error this error carries, if any.
    fn as_odm_error(&self) -> Option<&Error>;
}

impl AsOdmError for Error {
    fn as_odm_error(&self) -> Option<&Error> {
        Some(self)
    }
}

/// The entry points to sessions.
impl Mapper {
    /// A session. No connection is taken until the first statement; the
    /// transaction starts with the first write (see [`crate::session`] for
    /// exactly what that guarantees). Dropped without [`Session::commit`],
    /// it rolls back.
    ///
    /// Inside a transaction block of this mapper on the same task (the
    /// closure of [`Mapper::begin`] and its kin), the session *joins* that
    /// transaction at a savepoint instead ([`Session::is_joined`]): its
    /// commit releases the savepoint, its rollback or drop rolls back to it.
    /// Elsewhere it is a session of its own.
    ///
    /// # Errors
    ///
    /// The wrong-context error (`acquire in main greenlet: session ...`) off
    /// a green worker.
    pub fn session(&self) -> Result<Session> {
        require_green("session")?;
        Ok(match Scope::current(self.identity(), true) {
            Some(scope) => Session::joining(self.clone(), scope),
            None => Session::owning(
                self.clone(),
                Scope::open(self.identity(), Opening::Manual, false),
            ),
        })
    }

    /// A session with a transaction of its own on its own connections,
    /// whatever this task already holds: see [`Mapper::begin_independent`].
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker.
    pub fn session_independent(&self) -> Result<Session> {
        require_green("session")?;
        Ok(Session::owning(
            self.clone(),
            Scope::open(self.identity(), Opening::Manual, true),
        ))
    }

    /// Runs `work` in a transaction: commits when it returns `Ok`, rolls
    /// back when it returns `Err` (that error is returned) or panics (the
    /// panic continues after the rollback).
    ///
    /// Called while this task is already in a transaction of this mapper
    /// (inside another `begin`, or after a session's first write), `work`
    /// joins it at a savepoint, as Django's `atomic()` nests: its `Err` or
    /// panic rolls back to the savepoint and the outer transaction goes on;
    /// its `Ok` only releases the savepoint, and the outer transaction's
    /// fate decides. So functions that each call `begin` compose. For a
    /// transaction that commits on its own whatever the outer one does, use
    /// [`Mapper::begin_independent`].
    ///
    /// The closure returns [`odm::Result`](crate::Result); for a caller's
    /// own error type, use [`Mapper::transaction`].
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker (before `work` runs);
    /// `work`'s error; [`Error::RolledBack`] when `work` returned `Ok` but
    /// nothing was committed (or, joined, its savepoint was not kept): a
    /// statement inside it failed and its error was ignored (the cause is
    /// that error), or the commit itself failed (a deferred constraint, a
    /// serialization failure). See [`Session::commit`].
    pub fn begin<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut Session) -> Result<T>,
    {
        self.transaction(work)
    }

    /// [`Mapper::begin`] for a closure returning the caller's own error
    /// type `E` (as diesel's `transaction`): `Err(e)` rolls back and comes
    /// back unchanged; the odm's own errors (the commit's, the wrong
    /// context) are converted with `From`. Nests as `begin` does.
    ///
    /// `begin` stays the form for closures returning `odm::Result`: with
    /// `E` generic, a closure that only uses `?` and `Ok(..)` leaves `E`
    /// unknown to the compiler, so this form needs the error type named
    /// (`mp.transaction(|s| -> Result<_, ShopError> { ... })`, or an
    /// `Err(ShopError::...)` inside the closure).
    ///
    /// ```no_run
    /// # #[derive(odm::Model, Debug, Clone, Default)]
    /// # struct Item { #[odm(primary_key)] id: Option<i32>, stock: i32 }
    /// #[derive(Debug)]
    /// enum ShopError {
    ///     OutOfStock,
    ///     Db(odm::Error),
    /// }
    /// impl From<odm::Error> for ShopError {
    ///     fn from(e: odm::Error) -> Self {
    ///         ShopError::Db(e)
    ///     }
    /// }
    ///
    /// fn reserve(mp: &odm::Mapper, id: i32) -> Result<(), ShopError> {
    ///     mp.transaction(|s| {
    ///         let mut item = s.get::<Item>(id)?.ok_or(ShopError::OutOfStock)?;
    ///         if item.stock == 0 {
    ///             return Err(ShopError::OutOfStock); // rolled back
    ///         }
    ///         item.stock -= 1;
    ///         s.add(&mut item)?;
    ///         Ok(())
    ///     })
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Mapper::begin`], the odm errors converted into `E`.
    pub fn transaction<T, E, F>(&self, work: F) -> std::result::Result<T, E>
    where
        F: FnOnce(&mut Session) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        require_green("session").map_err(Error::from)?;
        match Scope::current(self.identity(), false) {
            Some(scope) => self.run_joined(scope, work),
            None => self.run_owned(Scope::open(self.identity(), Opening::Block, false), work),
        }
    }

    /// Runs `work` in a new transaction on its own connection, independent
    /// of any transaction this task is in: it commits (or rolls back) on
    /// its own, whatever the outer transaction does later, e.g. to record
    /// an audit row that must survive the outer rollback. `begin` calls
    /// inside `work` join *this* transaction.
    ///
    /// The connection is taken beside the task's others
    /// ([`Pool::acquire_another`](crate::Pool::acquire_another)); when this
    /// task already holds every connection of the pool, the first statement
    /// fails at once with [`Error::PoolHeldByTask`] instead of waiting for
    /// a connection only the task itself could give back. Beware that the
    /// outer transaction's uncommitted rows and locks are another
    /// transaction's to this one: touching the same rows waits for the
    /// outer one, which waits for this one — a deadlock the server only
    /// breaks with a lock timeout.
    ///
    /// # Errors
    ///
    /// As [`Mapper::begin`], and [`Error::PoolHeldByTask`].
    pub fn begin_independent<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut Session) -> Result<T>,
    {
        require_green("session")?;
        self.run_owned(Scope::open(self.identity(), Opening::Block, true), work)
    }

    /// Like [`Mapper::begin`], but runs `work` again in a fresh transaction
    /// when it fails with a serialization failure (40001) or a deadlock
    /// (40P01), up to `attempts` runs in all — whether `work` returned the
    /// error or the commit reported it ([`Error::RolledBack`] with such a
    /// cause).
    ///
    /// Joined to an outer transaction, `work` runs once: after such a
    /// failure the whole outer transaction must be retried, so the error
    /// goes to it (retry there, with the outermost `begin_with_retry`).
    ///
    /// # Errors
    ///
    /// As [`Mapper::begin`]; after the last attempt, its retryable error.
    pub fn begin_with_retry<T, F>(&self, attempts: usize, work: F) -> Result<T>
    where
        F: FnMut(&mut Session) -> Result<T>,
    {
        self.transaction_with_retry(attempts, work)
    }

    /// [`Mapper::begin_with_retry`] for the caller's own error type: an
    /// attempt is retried when its error carries a retryable odm error
    /// ([`AsOdmError`] then [`Error::is_retryable`]).
    ///
    /// # Errors
    ///
    /// As [`Mapper::transaction`]; after the last attempt, its error.
    pub fn transaction_with_retry<T, E, F>(
        &self,
        attempts: usize,
        mut work: F,
    ) -> std::result::Result<T, E>
    where
        F: FnMut(&mut Session) -> std::result::Result<T, E>,
        E: From<Error> + AsOdmError,
    {
        require_green("session").map_err(Error::from)?;
        if Scope::current(self.identity(), false).is_some() {
            return self.transaction(work);
        }
        let attempts = attempts.max(1);
        let mut run = 1;
        loop {
            match self.transaction(&mut work) {
                Err(e) if retryable(&e) && run < attempts => {
                    log::debug!("retrying transaction (attempt {run} of {attempts})");
                    run += 1;
                }
                result => return result,
            }
        }
    }

    /// The task's current transaction on this mapper when it holds a
    /// connection to bind `label`.
    pub(super) fn task_transaction(&self, label: &str) -> Option<Arc<Scope>> {
        Scope::current(self.identity(), false).filter(|scope| scope.has_bind(label))
    }

    /// Runs `work` in the task's current transaction on this mapper when it
    /// holds a connection to bind `label` (`None` otherwise, `work` unrun):
    /// statements the mapper runs outside a session (e.g.
    /// [`Mapper::tables`]) go there instead of asking the pool for a
    /// connection the task already holds.
    pub(crate) fn run_in_task_transaction<R>(
        &self,
        label: &str,
        work: impl FnOnce(&green_postgres::Client) -> green_postgres::Result<R>,
    ) -> Option<Result<R>> {
        let scope = self.task_transaction(label)?;
        Some(scope.with_bind(
            label,
            || Err(busy(label)),
            |conn| conn.run(0, None, work, false),
        ))
    }

    /// `work` in a session owning `scope`: committed on `Ok`, rolled back on
    /// `Err` or panic.
    fn run_owned<T, E, F>(&self, scope: Arc<Scope>, work: F) -> std::result::Result<T, E>
    where
        F: FnOnce(&mut Session) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        in_transaction_span(self, || {
            let mut session = Session::owning(self.clone(), scope);
            match work(&mut session) {
                Ok(value) => {
                    session.commit()?;
                    Ok(value)
                }
                Err(e) => {
                    if let Err(rollback) = session.rollback() {
                        log::warn!("rollback after a failed transaction failed too: {rollback}");
                    }
                    Err(e)
                }
            }
        })
    }

    /// `work` in a session joining `scope` at a savepoint: released on
    /// `Ok`, rolled back to on `Err` or panic (caught, the savepoint rolled
    /// back to, then resumed), so the outer transaction goes on. A panic
    /// whose payload is not a message (`panic_any`, a cancelled coroutine)
    /// abandons the whole transaction instead, without I/O.
    fn run_joined<T, E, F>(&self, scope: Arc<Scope>, work: F) -> std::result::Result<T, E>
    where
        F: FnOnce(&mut Session) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        let mut session = Session::joining(self.clone(), scope);
        match panic::catch_unwind(AssertUnwindSafe(|| work(&mut session))) {
            Ok(Ok(value)) => {
                session.commit()?;
                Ok(value)
            }
            Ok(Err(e)) => {
                if let Err(rollback) = session.rollback() {
                    log::warn!("rollback to a savepoint after a failure failed too: {rollback}");
                }
                Err(e)
            }
            Err(payload) => {
                // Only after an ordinary `panic!`: other payloads (`may`
                // cancelling the coroutine, which would cancel the rollback's
                // I/O too) unwind with the session, whose drop abandons the
                // whole transaction without I/O (the outer commit reports
                // it rolled back).
                if is_message(payload.as_ref()) {
                    if let Err(rollback) = session.rollback() {
                        log::warn!("rollback to a savepoint after a panic failed too: {rollback}");
                    }
                }
                panic::resume_unwind(payload)
            }
        }
    }
}

/// Whether a panic's payload is an ordinary `panic!` message.
fn is_message(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<&'static str>() || payload.is::<String>()
}

fn retryable<E: AsOdmError>(error: &E) -> bool {
    error.as_odm_error().is_some_and(Error::is_retryable)
}

/// Autocommit sessions.
impl Mapper {
    /// Runs `work` in a new autocommit session: each of its statements,
    /// writes included, runs and commits on its own on a shared, pipelined
    /// connection, so it holds no connection and waits for none between
    /// statements (see [autocommit sessions](crate::session#autocommit-sessions-writes-that-hold-no-connection)
    /// for exactly what that guarantees). Use it when each write stands on
    /// its own; use [`Mapper::begin`] when writes must commit together.
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker (before `work` runs);
    /// `work`'s error, with every write that returned `Ok` before it still
    /// committed.
    pub fn autocommit<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut Session) -> Result<T>,
    {
        work(&mut self.autocommit_session()?)
    }

    /// A new autocommit session, the one [`Mapper::autocommit`] runs its
    /// work in; `commit` and `rollback` have nothing to do in it.
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker.
    pub fn autocommit_session(&self) -> Result<Session> {
        require_green("session")?;
        // Not the task's transaction (nothing to join, nothing to commit):
        // every statement runs on the shared path, see `Session::run`.
        let mut session = Session::owning(
            self.clone(),
            Scope::open(self.identity(), Opening::Manual, true),
        );
        session.autocommit = true;
        Ok(session)
    }
}
