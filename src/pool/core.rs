//! The pool's procedures: check out, give back, lend, release, wait, open.
//!
//! Every procedure follows one pattern: take the state lock, decide, release
//! the lock, then do the slow parts (open a connection, roll back, close,
//! wake waiters). The lock is a `parking_lot` mutex held for a few
//! instructions, never across I/O or a park.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use super::connector::Connector;
use super::state::{Effects, Lease, State};
use super::stats::Counters;
use super::task::current_task;
use super::waiter::{Grant, Waiter};
use crate::Error;

/// The shared part of a pool, behind the [`Pool`](crate::Pool) handle.
#[derive(Debug)]
pub(crate) struct Core<K: Connector> {
    pub(crate) connector: K,
    pub(crate) max_size: usize,
    pub(crate) timeout: Duration,
    state: Mutex<State<K>>,
    pub(crate) counters: Counters,
}

/// How a waiter leaves the queue, and how a grant it can no longer use is
/// handed back.
struct Exit<K: Connector, T> {
    leave: fn(&mut State<K>, &Arc<Waiter<T>>),
    hand_back: fn(&Core<K>, u64, Grant<T>),
}

/// Leaves the queue if the waiting coroutine unwinds (cancellation) before
/// it settled, handing back anything it was granted meanwhile.
struct WaitGuard<'a, K: Connector, T> {
    core: &'a Core<K>,
    waiter: &'a Arc<Waiter<T>>,
    exit: Exit<K, T>,
    settled: bool,
}

impl<K: Connector, T> Drop for WaitGuard<'_, K, T> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut fx = Effects::default();
        let grant = {
            let mut state = self.core.state.lock();
            let grant = self.waiter.take();
            if grant.is_none() {
                (self.exit.leave)(&mut state, self.waiter);
                state.dispatch(&mut fx);
            }
            grant
        };
        self.core.finish(fx);
        if let Some(grant) = grant {
            (self.exit.hand_back)(self.core, self.waiter.task, grant);
        }
    }
}

/// A connection slot reserved for opening; gives the slot back if opening
/// fails or the coroutine unwinds.
struct Opening<'a, K: Connector> {
    core: &'a Core<K>,
    /// The exclusive holder registered for this slot, if any.
    holder: Option<u64>,
    armed: bool,
}

impl<K: Connector> Drop for Opening<'_, K> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut fx = Effects::default();
        {
            let mut state = self.core.state.lock();
            state.pending -= 1;
            if let Some(task) = self.holder {
                state.release_holder(task);
            }
            state.dispatch(&mut fx);
        }
        self.core.finish(fx);
    }
}

impl<K: Connector> Core<K> {
    pub(crate) fn new(connector: K, max_size: usize, timeout: Duration) -> Core<K> {
        Core {
            connector,
            max_size,
            timeout,
            state: Mutex::new(State::new(max_size)),
            counters: Counters::default(),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock()
    }

    /// Carries out what a locked section decided.
    fn finish(&self, fx: Effects<K::Conn>) {
        for _ in &fx.close {
            self.counters.discarded();
        }
        fx.run();
    }

    /// Checks out a connection for `task`'s exclusive use.
    pub(crate) fn acquire(&self, task: u64) -> Result<K::Conn, Error> {
        let mut fx = Effects::default();
        let now = {
            let mut state = self.state.lock();
            if state.closed {
                return Err(Error::PoolClosed);
            }
            if state.holds(task) {
                return Err(Error::NestedAcquire);
            }
            match state.try_exclusive(task, &mut fx) {
                Some(grant) => Ok(grant),
                None => {
                    let waiter = Waiter::new(task);
                    state.exclusive_waiters.push_back(Arc::clone(&waiter));
                    state.dispatch(&mut fx);
                    Err(waiter)
                }
            }
        };
        self.finish(fx);
        let grant = match now {
            Ok(grant) => grant,
            Err(waiter) => self.wait(
                &waiter,
                Exit {
                    leave: State::leave_exclusive,
                    hand_back: Core::hand_back_exclusive,
                },
            )?,
        };
        match grant {
            Grant::Ready(conn) => {
                self.counters.acquired();
                Ok(conn)
            }
            Grant::Create => self.open_exclusive(task),
            Grant::Closed => Err(Error::PoolClosed),
        }
    }

    /// Opens a connection for an exclusive checkout whose slot is counted.
    fn open_exclusive(&self, task: u64) -> Result<K::Conn, Error> {
        let mut opening = Opening {
            core: self,
            holder: Some(task),
            armed: true,
        };
        let conn = self.connector.connect().inspect_err(|_| {
            self.counters.connect_failed();
        })?;
        self.counters.opened();
        opening.armed = false;
        let mut state = self.state.lock();
        state.pending -= 1;
        if state.closed {
            state.release_holder(task);
            drop(state);
            self.counters.discarded();
            drop(conn);
            return Err(Error::PoolClosed);
        }
        state.size += 1;
        drop(state);
        self.counters.acquired();
        Ok(conn)
    }

    /// Parks until the waiter is served or the pool timeout passes.
    fn wait<T>(&self, waiter: &Arc<Waiter<T>>, exit: Exit<K, T>) -> Result<Grant<T>, Error> {
        let leave = exit.leave;
        let mut guard = WaitGuard {
            core: self,
            waiter,
            exit,
            settled: false,
        };
        let deadline = waiter.since + self.timeout;
        let grant = match waiter.park_until(deadline) {
            Some(grant) => grant,
            None => {
                let mut fx = Effects::default();
                let raced = {
                    let mut state = self.state.lock();
                    let grant = waiter.take();
                    if grant.is_none() {
                        leave(&mut state, waiter);
                        state.dispatch(&mut fx);
                    }
                    grant
                };
                guard.settled = true;
                self.finish(fx);
                let waited = waiter.since.elapsed();
                self.counters.waited(waited);
                match raced {
                    Some(grant) => return Ok(grant),
                    None => {
                        self.counters.timed_out();
                        return Err(Error::PoolTimeout {
                            waited,
                            size: self.max_size,
                        });
                    }
                }
            }
        };
        guard.settled = true;
        self.counters.waited(waiter.since.elapsed());
        Ok(grant)
    }

    fn hand_back_exclusive(&self, task: u64, grant: Grant<K::Conn>) {
        match grant {
            Grant::Ready(conn) => self.check_in(conn, Some(task)),
            Grant::Create => drop(Opening {
                core: self,
                holder: Some(task),
                armed: true,
            }),
            Grant::Closed => {}
        }
    }

    fn hand_back_shared(&self, _task: u64, grant: Grant<Lease<K::Conn>>) {
        match grant {
            Grant::Ready(lease) => self.release(lease),
            Grant::Create => drop(Opening {
                core: self,
                holder: None,
                armed: true,
            }),
            Grant::Closed => {}
        }
    }

    /// Takes back an exclusive checkout: broken → discarded; inside a
    /// transaction → rolled back, or discarded if that fails; else idle.
    ///
    /// During a panic the connection is discarded without a rollback: the
    /// panic may have interrupted it mid-request, and a rollback would park
    /// an unwinding coroutine (a second panic there, from a cancelled
    /// coroutine, would abort the process).
    pub(crate) fn give_back(&self, conn: K::Conn, task: Option<u64>) {
        if K::is_broken(&conn) || std::thread::panicking() {
            return self.discard(conn, task);
        }
        if K::in_transaction(&conn) {
            let rolled_back = K::roll_back(&conn).is_ok();
            if !rolled_back || K::is_broken(&conn) || K::in_transaction(&conn) {
                return self.discard(conn, task);
            }
            self.counters.rolled_back();
        }
        self.check_in(conn, task);
    }

    /// Puts a clean connection back in service (or closes it if the pool is
    /// closed) and serves the queue.
    fn check_in(&self, conn: K::Conn, task: Option<u64>) {
        let mut fx = Effects::default();
        {
            let mut state = self.state.lock();
            if let Some(task) = task {
                state.release_holder(task);
            }
            if state.closed {
                state.forget();
                fx.close.push(conn);
            } else {
                state.insert_idle(conn);
            }
            state.dispatch(&mut fx);
        }
        self.finish(fx);
    }

    /// Closes a connection and frees its slot for a fresh one.
    pub(crate) fn discard(&self, conn: K::Conn, task: Option<u64>) {
        let mut fx = Effects::default();
        {
            let mut state = self.state.lock();
            if let Some(task) = task {
                state.release_holder(task);
            }
            state.forget();
            fx.close.push(conn);
            state.dispatch(&mut fx);
        }
        self.finish(fx);
    }

    /// Lends a connection to one shared (pipelined, autocommit) statement.
    pub(crate) fn lease(&self) -> Result<Lease<K::Conn>, Error> {
        let mut fx = Effects::default();
        let now = {
            let mut state = self.state.lock();
            if state.closed {
                return Err(Error::PoolClosed);
            }
            if !state.holders.is_empty() && state.holds(current_task()) {
                return Err(Error::NestedAcquire);
            }
            match state.try_shared(&mut fx) {
                Some(grant) => Ok(grant),
                None => {
                    let waiter = Waiter::new(0);
                    state.shared_waiters.push_back(Arc::clone(&waiter));
                    Err(waiter)
                }
            }
        };
        self.finish(fx);
        let grant = match now {
            Ok(grant) => grant,
            Err(waiter) => self.wait(
                &waiter,
                Exit {
                    leave: State::leave_shared,
                    hand_back: Core::hand_back_shared,
                },
            )?,
        };
        match grant {
            Grant::Ready(lease) => Ok(lease),
            Grant::Create => self.open_shared(),
            Grant::Closed => Err(Error::PoolClosed),
        }
    }

    /// Opens a connection for a shared statement whose slot is counted; the
    /// new connection joins the pool and queued statements pile onto it.
    fn open_shared(&self) -> Result<Lease<K::Conn>, Error> {
        let mut opening = Opening {
            core: self,
            holder: None,
            armed: true,
        };
        let conn = self.connector.connect().inspect_err(|_| {
            self.counters.connect_failed();
        })?;
        self.counters.opened();
        opening.armed = false;
        let mut fx = Effects::default();
        let lease = {
            let mut state = self.state.lock();
            state.pending -= 1;
            if state.closed {
                fx.close.push(conn);
                None
            } else {
                state.size += 1;
                let lease = state.insert_lent(conn);
                state.dispatch(&mut fx);
                Some(lease)
            }
        };
        self.finish(fx);
        lease.ok_or(Error::PoolClosed)
    }

    /// Ends a shared statement's use of its connection. A connection found
    /// broken or left inside a transaction is taken out of shared service and,
    /// once its last statement finished, discarded or rolled back.
    pub(crate) fn release(&self, lease: Lease<K::Conn>) {
        let broken = K::is_broken(&lease.conn);
        let dirty = !broken && K::in_transaction(&lease.conn);
        let Lease { entry, conn } = lease;
        drop(conn); // before the count goes down: see the lease invariant
        let mut fx = Effects::default();
        let mut to_clean = None;
        {
            let mut state = self.state.lock();
            let closed = state.closed;
            if let Some(index) = state.entries.iter().position(|e| e.id == entry) {
                let e = &mut state.entries[index];
                e.users -= 1;
                if broken || dirty {
                    e.retired = true;
                }
                if e.users == 0 && (e.retired || closed) {
                    if let Some(conn) = state.remove_entry(index) {
                        if closed || K::is_broken(&conn) {
                            state.forget();
                            fx.close.push(conn);
                        } else {
                            to_clean = Some(conn);
                        }
                    }
                }
            }
            state.dispatch(&mut fx);
        }
        self.finish(fx);
        if let Some(conn) = to_clean {
            self.give_back(conn, None);
        }
    }

    /// Closes the pool (see [`Pool::close`](crate::Pool::close)).
    pub(crate) fn close(&self) {
        let mut fx = Effects::default();
        self.state.lock().close(&mut fx);
        self.finish(fx);
    }
}
