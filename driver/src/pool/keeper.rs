//! [`Keeper`]: what a [`Pool`](crate::Pool) handle and its checked-out
//! connections share — the connector, the limits, the counters and the
//! bookkeeping ([`State`]) under its lock — and the procedures that keep
//! the connections: check out, vet, give back, lend, release, wait.
//! Opening connections (with their deadline and backoff) is in
//! [`super::opening`].
//!
//! Every procedure follows one pattern: take the state lock, decide, release
//! the lock, then do the slow parts (check liveness, roll back, close, wake
//! waiters). The lock is a `parking_lot` mutex held for a few instructions,
//! never across I/O or a park.
//!
//! A caller's whole visit is bounded by one [`AcquireDeadline`], `pool_timeout`
//! after it asked: the wait in the queue, the liveness checks of idle
//! connections, the backoff and the connect all take from it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::connector::Connector;
use super::lifecycle::Lifecycle;
use super::opening::Opening;
use super::state::{Checkout, Effects, Lease, State};
use super::stats::Counters;
use super::task::current_task;
use super::waiter::{AcquireDeadline, Grant, Waiter};
use crate::error::Error;

/// The keeper of a pool's connections, behind the [`Pool`](crate::Pool)
/// handle (and held by every [`PooledConnection`](crate::pool::PooledConnection)
/// to give its connection back): the connector that opens them, the
/// limits, the [`State`] that records them under one short lock, the
/// counters; its methods are the procedures that check them out and take
/// them back.
#[derive(Debug)]
pub(crate) struct Keeper<K: Connector> {
    pub(crate) connector: K,
    pub(crate) max_size: usize,
    pub(crate) timeout: Duration,
    /// A copy of the state's rules, readable without the lock.
    pub(crate) lifecycle: Lifecycle,
    /// [`PoolOptions::fail_fast`](super::PoolOptions::fail_fast).
    pub(crate) fail_fast: bool,
    state: Mutex<State<K>>,
    pub(crate) counters: Counters,
}

/// How a waiter leaves the queue, and how a grant it can no longer use is
/// handed back.
struct Exit<K: Connector, T> {
    leave: fn(&mut State<K>, &Arc<Waiter<T>>),
    hand_back: fn(&Keeper<K>, u64, Grant<T>),
}

/// Leaves the queue if the waiting coroutine unwinds (cancellation) before
/// it settled, handing back anything it was granted meanwhile.
struct WaitGuard<'a, K: Connector, T> {
    keeper: &'a Keeper<K>,
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
            let mut state = self.keeper.state.lock();
            let grant = self.waiter.take();
            if grant.is_none() {
                (self.exit.leave)(&mut state, self.waiter);
                state.dispatch(Instant::now(), &mut fx);
            }
            grant
        };
        self.keeper.finish(fx);
        if let Some(grant) = grant {
            (self.exit.hand_back)(self.keeper, self.waiter.task, grant);
        }
    }
}

impl<K: Connector> Keeper<K> {
    pub(crate) fn new(
        connector: K,
        max_size: usize,
        timeout: Duration,
        lifecycle: Lifecycle,
    ) -> Keeper<K> {
        Keeper {
            connector,
            max_size,
            timeout,
            lifecycle,
            fail_fast: false,
            state: Mutex::new(State::new(max_size, lifecycle)),
            counters: Counters::default(),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock()
    }

    /// Carries out what a locked section decided.
    pub(super) fn finish(&self, fx: Effects<K::Conn>) {
        for _ in &fx.close {
            self.counters.discarded();
        }
        for _ in &fx.expired {
            self.counters.expired();
        }
        for _ in &fx.idled {
            self.counters.idled_out();
        }
        fx.run();
    }

    /// The timeout error for a caller whose deadline passed.
    pub(super) fn timed_out(&self, deadline: &AcquireDeadline) -> Error {
        self.counters.timed_out();
        Error::PoolTimeout {
            waited: deadline.started.elapsed(),
            size: self.max_size,
        }
    }

    /// Checks out a connection for `task`'s exclusive use. With `another`,
    /// a task that already holds connections may take one more (refused at
    /// once when its own holdings fill the pool); without it, that is
    /// [`Error::NestedAcquire`].
    pub(crate) fn acquire(&self, task: u64, another: bool) -> Result<Checkout<K::Conn>, Error> {
        let deadline = AcquireDeadline::after(self.timeout);
        loop {
            let checkout = match self.exclusive_grant(task, another, &deadline)? {
                Grant::Ready(checkout) => checkout,
                Grant::Create => return self.open_exclusive(task, &deadline),
                Grant::Closed => return Err(Error::PoolClosed),
            };
            if let Some(checkout) = self.vet(checkout, task, &deadline)? {
                self.counters.acquired();
                return Ok(checkout);
            }
        }
    }

    /// A connection, or the right to open one, for `task`: at once, or after
    /// parking in the queue until `deadline`.
    fn exclusive_grant(
        &self,
        task: u64,
        another: bool,
        deadline: &AcquireDeadline,
    ) -> Result<Grant<Checkout<K::Conn>>, Error> {
        let mut fx = Effects::default();
        let now = Instant::now();
        let immediate = {
            let mut state = self.state.lock();
            if state.closed {
                return Err(Error::PoolClosed);
            }
            if state.holds(task) {
                if !another {
                    return Err(Error::NestedAcquire);
                }
                let held = state.holders.iter().filter(|&&t| t == task).count();
                if held >= state.max_size {
                    return Err(Error::PoolHeldByTask {
                        size: state.max_size,
                    });
                }
            }
            match state.try_exclusive(task, now, &mut fx) {
                Some(grant) => Ok(grant),
                None => {
                    let waiter = Waiter::new(task);
                    state.exclusive_waiters.push_back(Arc::clone(&waiter));
                    state.dispatch(now, &mut fx);
                    Err(waiter)
                }
            }
        };
        self.finish(fx);
        match immediate {
            Ok(grant) => Ok(grant),
            Err(waiter) => self.wait(
                &waiter,
                deadline,
                Exit {
                    leave: State::leave_exclusive,
                    hand_back: Keeper::hand_back_exclusive,
                },
            ),
        }
    }

    /// Lets a connection that sat idle past the liveness window out only if
    /// it answers an empty query in time; a dead one is discarded and
    /// `Ok(None)` says "try the next one".
    fn vet(
        &self,
        checkout: Checkout<K::Conn>,
        task: u64,
        deadline: &AcquireDeadline,
    ) -> Result<Option<Checkout<K::Conn>>, Error> {
        let now = Instant::now();
        if !self.lifecycle.needs_check(&checkout.age, now) && !K::must_ask(&checkout.conn) {
            return Ok(Some(checkout));
        }
        let left = deadline.remaining(now);
        if left.is_zero() {
            self.check_in(checkout, Some(task));
            return Err(self.timed_out(deadline));
        }
        let timeout = left.min(self.lifecycle.liveness_timeout);
        let answer = K::check_alive(&checkout.conn, timeout);
        if answer.is_ok() && !K::is_broken(&checkout.conn) {
            return Ok(Some(checkout));
        }
        self.counters.liveness_failed();
        self.discard(checkout.conn, Some(task));
        match answer {
            // No answer at all: the server or the path to it is not
            // responding, and a new connection would only wait out
            // connect_timeout too. The caller hears it now.
            Err(e) if e.is_query_timeout() => Err(e),
            // Closed (restart, terminated backend): try the next one.
            _ => Ok(None),
        }
    }

    /// Parks until the waiter is served or the deadline passes.
    fn wait<T>(
        &self,
        waiter: &Arc<Waiter<T>>,
        deadline: &AcquireDeadline,
        exit: Exit<K, T>,
    ) -> Result<Grant<T>, Error> {
        let leave = exit.leave;
        let mut guard = WaitGuard {
            keeper: self,
            waiter,
            exit,
            settled: false,
        };
        let grant = match waiter.park_until(deadline.at) {
            Some(grant) => grant,
            None => {
                let mut fx = Effects::default();
                let raced = {
                    let mut state = self.state.lock();
                    let grant = waiter.take();
                    if grant.is_none() {
                        leave(&mut state, waiter);
                        state.dispatch(Instant::now(), &mut fx);
                    }
                    grant
                };
                guard.settled = true;
                self.finish(fx);
                self.counters.waited(waiter.since.elapsed());
                return match raced {
                    Some(grant) => Ok(grant),
                    None => Err(self.timed_out(deadline)),
                };
            }
        };
        guard.settled = true;
        self.counters.waited(waiter.since.elapsed());
        Ok(grant)
    }

    fn hand_back_exclusive(&self, task: u64, grant: Grant<Checkout<K::Conn>>) {
        match grant {
            Grant::Ready(checkout) => self.check_in(checkout, Some(task)),
            Grant::Create => drop(Opening::new(self, Some(task))),
            Grant::Closed => {}
        }
    }

    fn hand_back_shared(&self, _task: u64, grant: Grant<Lease<K::Conn>>) {
        match grant {
            Grant::Ready(lease) => self.release(lease),
            Grant::Create => drop(Opening::new(self, None)),
            Grant::Closed => {}
        }
    }

    /// Takes back an exclusive checkout: broken → discarded; inside a
    /// transaction → rolled back, or discarded if that fails; past its
    /// `max_lifetime` → closed; else idle.
    ///
    /// During a panic the connection is discarded without a rollback: the
    /// panic may have interrupted it mid-request, and a rollback would park
    /// an unwinding coroutine (a second panic there, from a cancelled
    /// coroutine, would abort the process).
    pub(crate) fn give_back(&self, checkout: Checkout<K::Conn>, task: Option<u64>) {
        let conn = &checkout.conn;
        if K::is_broken(conn) || std::thread::panicking() {
            return self.discard(checkout.conn, task);
        }
        if K::in_transaction(conn) {
            let rolled_back = K::roll_back(conn).is_ok();
            if !rolled_back || K::is_broken(conn) || K::in_transaction(conn) {
                return self.discard(checkout.conn, task);
            }
            self.counters.rolled_back();
        }
        self.check_in(checkout, task);
    }

    /// Hands an exclusive checkout straight to the exclusive waiter at the
    /// front of the queue, without a round through the idle connections:
    /// for a connection whose transaction-ending `COMMIT` is on its way
    /// (the waiter's requests follow it on the wire). `Err` gives the
    /// checkout back untouched when nobody waits for a connection, shared
    /// statements wait (it goes to them first, as in [`Keeper::check_in`]),
    /// the pool is closed, or the connection is broken or past its
    /// `max_lifetime`: the caller then gives it back as usual once the
    /// answer is in.
    pub(crate) fn pass_on(
        &self,
        checkout: Checkout<K::Conn>,
        task: u64,
    ) -> Result<(), Checkout<K::Conn>> {
        if K::is_broken(&checkout.conn) {
            return Err(checkout);
        }
        let now = Instant::now();
        let mut fx = Effects::default();
        let waiter = {
            let mut state = self.state.lock();
            if state.closed
                || !state.shared_waiters.is_empty()
                || self.lifecycle.is_expired(&checkout.age, now)
            {
                return Err(checkout);
            }
            let Some(waiter) = state.exclusive_waiters.pop_front() else {
                return Err(checkout);
            };
            state.release_holder(task);
            state.holders.push(waiter.task);
            waiter.give(Grant::Ready(Checkout {
                conn: checkout.conn,
                age: checkout.age.idle_from(now),
            }));
            state.dispatch(now, &mut fx);
            waiter
        };
        self.finish(fx);
        waiter.wake();
        self.counters.passed_on();
        Ok(())
    }

    /// Puts a clean connection back in service (or closes it if the pool is
    /// closed or it outlived `max_lifetime`) and serves the queue.
    fn check_in(&self, checkout: Checkout<K::Conn>, task: Option<u64>) {
        let Checkout { conn, age } = checkout;
        let now = Instant::now();
        let mut fx = Effects::default();
        {
            let mut state = self.state.lock();
            if let Some(task) = task {
                state.release_holder(task);
            }
            if state.closed {
                state.forget();
                fx.close.push(conn);
            } else if self.lifecycle.is_expired(&age, now) {
                state.forget();
                fx.expired.push(conn);
            } else {
                state.insert_idle(conn, age.idle_from(now));
            }
            state.sweep(now, &mut fx);
            state.dispatch(now, &mut fx);
        }
        self.finish(fx);
    }

    /// Closes a connection and frees its slot for a fresh one.
    pub(crate) fn discard(&self, conn: K::Conn, task: Option<u64>) {
        self.free_slot(Some(conn), task);
    }

    /// Frees the slot of a checkout whose task was abandoned without
    /// unwinding (a stack overflow): its connection, out of reach on the
    /// dead task's stack, was closed by the caller. Never parks.
    pub(crate) fn reclaim_abandoned(&self, task: u64) {
        log::warn!(
            target: "odm::pool",
            "a task was abandoned (stack overflow) holding a connection: it was closed and its slot freed"
        );
        self.counters.discarded();
        self.free_slot(None, Some(task));
    }

    fn free_slot(&self, conn: Option<K::Conn>, task: Option<u64>) {
        let mut fx = Effects::default();
        {
            let mut state = self.state.lock();
            if let Some(task) = task {
                state.release_holder(task);
            }
            state.forget();
            fx.close.extend(conn);
            state.dispatch(Instant::now(), &mut fx);
        }
        self.finish(fx);
    }

    /// Lends a connection to one shared (pipelined, autocommit) statement.
    pub(crate) fn lease(&self) -> Result<Lease<K::Conn>, Error> {
        let deadline = AcquireDeadline::after(self.timeout);
        let now = deadline.started;
        let mut fx = Effects::default();
        let immediate = {
            let mut state = self.state.lock();
            if state.closed {
                return Err(Error::PoolClosed);
            }
            if !state.holders.is_empty() && state.holds(current_task()) {
                return Err(Error::NestedAcquire);
            }
            match state.try_shared(now, &mut fx) {
                Some(grant) => Ok(grant),
                None => {
                    let waiter = Waiter::new(0);
                    state.shared_waiters.push_back(Arc::clone(&waiter));
                    Err(waiter)
                }
            }
        };
        self.finish(fx);
        let grant = match immediate {
            Ok(grant) => grant,
            Err(waiter) => self.wait(
                &waiter,
                &deadline,
                Exit {
                    leave: State::leave_shared,
                    hand_back: Keeper::hand_back_shared,
                },
            )?,
        };
        match grant {
            Grant::Ready(lease) => Ok(lease),
            Grant::Create => self.open_shared(&deadline),
            Grant::Closed => Err(Error::PoolClosed),
        }
    }

    /// Ends a shared statement's use of its connection. A connection found
    /// broken, left inside a transaction or past its `max_lifetime` is taken
    /// out of shared service and, once its last statement finished,
    /// discarded, rolled back or closed.
    pub(crate) fn release(&self, lease: Lease<K::Conn>) {
        self.release_as(lease, false);
    }

    /// [`Keeper::release`] of a connection found unusable by asking the
    /// server ([`Connector::must_ask`]): taken out of service and closed
    /// once its last statement finished.
    pub(crate) fn release_unfit(&self, lease: Lease<K::Conn>) {
        self.release_as(lease, true);
    }

    fn release_as(&self, lease: Lease<K::Conn>, unfit: bool) {
        let broken = unfit || K::is_broken(&lease.conn);
        let dirty = !broken && K::in_transaction(&lease.conn);
        let Lease { entry, conn } = lease;
        drop(conn); // before the count goes down: see the lease invariant
        let now = Instant::now();
        let mut fx = Effects::default();
        let mut to_clean = None;
        {
            let mut state = self.state.lock();
            let closed = state.closed;
            if let Some(index) = state.entries.iter().position(|e| e.id == entry) {
                let e = &mut state.entries[index];
                e.users -= 1;
                if broken || dirty || self.lifecycle.is_expired(&e.age, now) {
                    e.retired = true;
                }
                if e.users == 0 {
                    e.age = e.age.idle_from(now);
                }
                if e.users == 0 && (e.retired || closed) {
                    if let Some((conn, age)) = state.remove_entry(index) {
                        if closed || unfit || K::is_broken(&conn) {
                            state.forget();
                            fx.close.push(conn);
                        } else {
                            to_clean = Some(Checkout { conn, age });
                        }
                    }
                }
            }
            state.dispatch(now, &mut fx);
        }
        self.finish(fx);
        if let Some(checkout) = to_clean {
            self.give_back(checkout, None);
        }
    }

    /// Closes the pool (see [`Pool::close`](crate::Pool::close)).
    pub(crate) fn close(&self) {
        let mut fx = Effects::default();
        self.state.lock().close(&mut fx);
        self.finish(fx);
    }
}
