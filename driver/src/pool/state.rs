//! The pool's bookkeeping, always mutated under one short lock: which
//! connections exist, who uses them, and who waits.
//!
//! Invariants (checked by the tests from the outside):
//! - `size + pending <= max_size`: a connection is counted *before* it is
//!   opened, so a thundering herd can never overshoot.
//! - `pending_shared <= pending`: the opens counted for shared statements,
//!   which also count against the shared cap ([`super::shared_placement`]).
//! - A connection is either checked out exclusively (then it is not in
//!   `entries`) or it is an [`Entry`] lent to `users` shared statements.
//! - An entry with `users == 0` holds the only `Arc` to its connection:
//!   a [`Lease`] drops its clone before the count goes down.
//! - After every change, [`State::dispatch`] has served every waiter that can
//!   be served, front of queue first.
//!
//! - An entry in service with `users == 0` is neither broken nor stale
//!   once [`State::sweep`] ran (every procedure sweeps before it hands
//!   anything out).
//!
//! Nothing here does I/O or parks: dropped connections and wake-ups are
//! collected in [`Effects`] and carried out after the lock is released.
//! Time comes in as an argument (`now`), so the rules are plain arithmetic.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::backoff::Backoff;
use super::connector::Connector;
use super::lifecycle::{Age, Lifecycle, Staleness};
use super::shared_placement::SharedPlacement;
use super::waiter::{Grant, Waiter};

/// A connection in the pool that is not checked out exclusively.
#[derive(Debug)]
pub(crate) struct Entry<C> {
    pub(crate) id: u64,
    pub(crate) conn: Arc<C>,
    /// Shared statements running on it right now.
    pub(crate) users: usize,
    /// Kept for the next exclusive waiter: no new shared statement lands on
    /// it, so it drains and is handed over (a busy shared pool cannot starve
    /// `acquire`).
    pub(crate) reserved: bool,
    /// Out of service (broken, left inside a transaction, expired, pool
    /// closed): removed when its last user leaves.
    pub(crate) retired: bool,
    /// When it expires and since when it is idle.
    pub(crate) age: Age,
}

/// A connection checked out for exclusive use, with the times the pool
/// keeps for it.
#[derive(Debug)]
pub(crate) struct Checkout<C> {
    pub(crate) conn: C,
    pub(crate) age: Age,
}

/// A shared statement's right to use one pooled connection.
#[derive(Debug)]
pub(crate) struct Lease<C> {
    pub(crate) entry: u64,
    pub(crate) conn: Arc<C>,
}

/// Work to do once the lock is released.
#[derive(Debug)]
pub(crate) struct Effects<C> {
    pub(crate) wake_exclusive: Vec<Arc<Waiter<Checkout<C>>>>,
    pub(crate) wake_shared: Vec<Arc<Waiter<Lease<C>>>>,
    /// Connections to close (dropping a client writes Terminate); every one
    /// of them counts as discarded.
    pub(crate) close: Vec<C>,
    /// Connections closed for outliving `max_lifetime`.
    pub(crate) expired: Vec<C>,
    /// Connections closed for sitting idle past `idle_timeout`.
    pub(crate) idled: Vec<C>,
}

impl<C> Default for Effects<C> {
    fn default() -> Self {
        Effects {
            wake_exclusive: Vec::new(),
            wake_shared: Vec::new(),
            close: Vec::new(),
            expired: Vec::new(),
            idled: Vec::new(),
        }
    }
}

impl<C> Effects<C> {
    /// Queues `conn` to be closed: discarded (`None`) or stale.
    pub(crate) fn close_for(&mut self, conn: C, why: Option<Staleness>) {
        match why {
            None => self.close.push(conn),
            Some(Staleness::Expired) => self.expired.push(conn),
            Some(Staleness::Idle) => self.idled.push(conn),
        }
    }

    /// Wakes the served waiters and closes the connections put aside.
    pub(crate) fn run(self) {
        for waiter in &self.wake_exclusive {
            waiter.wake();
        }
        for waiter in &self.wake_shared {
            waiter.wake();
        }
        drop(self.close);
        drop(self.expired);
        drop(self.idled);
    }
}

/// Everything behind the pool lock.
#[derive(Debug)]
pub(crate) struct State<K: Connector> {
    pub(crate) max_size: usize,
    pub(crate) entries: Vec<Entry<K::Conn>>,
    /// Established connections: entries plus exclusive checkouts plus
    /// connections being rolled back.
    pub(crate) size: usize,
    /// Connections being opened right now (already counted against max).
    pub(crate) pending: usize,
    /// Of `pending`, those opened for shared statements (they count
    /// against the shared cap).
    pub(crate) pending_shared: usize,
    /// `pool_max_shared` as set; `None` = one per scheduler thread.
    pub(crate) max_shared: Option<usize>,
    /// The shared cap in force once known (0 = not yet read); see
    /// [`State::shared_cap`].
    pub(crate) shared_cap: usize,
    pub(crate) exclusive_waiters: VecDeque<Arc<Waiter<Checkout<K::Conn>>>>,
    pub(crate) shared_waiters: VecDeque<Arc<Waiter<Lease<K::Conn>>>>,
    /// Tasks holding an exclusive checkout (one entry per checkout).
    pub(crate) holders: Vec<u64>,
    pub(crate) closed: bool,
    /// When connections expire, idle out and get checked.
    pub(crate) lifecycle: Lifecycle,
    /// Holds connects back after failures.
    pub(crate) backoff: Backoff,
    next_entry: u64,
}

impl<K: Connector> State<K> {
    pub(crate) fn new(max_size: usize, lifecycle: Lifecycle) -> State<K> {
        State {
            max_size,
            lifecycle,
            backoff: Backoff::default(),
            entries: Vec::new(),
            size: 0,
            pending: 0,
            pending_shared: 0,
            max_shared: None,
            shared_cap: 0,
            exclusive_waiters: VecDeque::new(),
            shared_waiters: VecDeque::new(),
            holders: Vec::new(),
            closed: false,
            next_entry: 1,
        }
    }

    /// True when one more connection may be opened.
    pub(crate) fn has_room(&self) -> bool {
        self.size + self.pending < self.max_size
    }

    /// A connection counted in `pending` (for a shared statement or not)
    /// was opened or failed to open.
    pub(crate) fn opening_ended(&mut self, shared: bool) {
        self.pending -= 1;
        if shared {
            self.pending_shared -= 1;
        }
    }

    /// Idle connections: in the pool, in service, no statement running.
    pub(crate) fn available(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.users == 0 && !e.retired)
            .count()
    }

    /// Does `task` hold an exclusive checkout?
    pub(crate) fn holds(&self, task: u64) -> bool {
        !self.holders.is_empty() && self.holders.contains(&task)
    }

    /// Forgets one exclusive checkout of `task`.
    pub(crate) fn release_holder(&mut self, task: u64) {
        if let Some(i) = self.holders.iter().position(|&t| t == task) {
            self.holders.swap_remove(i);
        }
    }

    fn new_entry(&mut self, conn: K::Conn, users: usize, age: Age) -> &Entry<K::Conn> {
        let id = self.next_entry;
        self.next_entry += 1;
        self.entries.push(Entry {
            id,
            conn: Arc::new(conn),
            users,
            reserved: false,
            retired: false,
            age,
        });
        &self.entries[self.entries.len() - 1]
    }

    /// Puts a clean connection back in service, idle.
    pub(crate) fn insert_idle(&mut self, conn: K::Conn, age: Age) {
        self.new_entry(conn, 0, age);
    }

    /// Puts a new connection in service, lent to the statement that opened it.
    pub(crate) fn insert_lent(&mut self, conn: K::Conn, age: Age) -> Lease<K::Conn> {
        let entry = self.new_entry(conn, 1, age);
        Lease {
            entry: entry.id,
            conn: Arc::clone(&entry.conn),
        }
    }

    /// Why the entry at `index` should leave service now: `Some(None)` when
    /// broken, `Some(Some(_))` when stale (only an idle entry idles out).
    fn verdict(&self, index: usize, now: Instant) -> Option<Option<Staleness>> {
        let entry = &self.entries[index];
        if K::is_broken(&entry.conn) {
            return Some(None);
        }
        if entry.users == 0 {
            self.lifecycle.staleness(&entry.age, now).map(Some)
        } else if self.lifecycle.is_expired(&entry.age, now) {
            Some(Some(Staleness::Expired))
        } else {
            None
        }
    }

    /// Takes broken and stale connections out of service: idle ones are
    /// closed now (a backend killed while idle is noticed here, not by the
    /// next statement), busy ones are retired so that no new statement
    /// lands on them and they close when their last statement finishes.
    pub(crate) fn sweep(&mut self, now: Instant, fx: &mut Effects<K::Conn>) {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].retired {
                i += 1;
                continue;
            }
            let Some(why) = self.verdict(i, now) else {
                i += 1;
                continue;
            };
            if self.entries[i].users > 0 {
                self.entries[i].retired = true;
                i += 1;
                continue;
            }
            // The last entry moves to `i`, so `i` is looked at again; an
            // entry a lease still holds is kept, retired, at the end.
            if let Some((conn, _)) = self.remove_entry(i) {
                self.size -= 1;
                fx.close_for(conn, why);
            }
        }
    }

    /// Removes the entry at `index` and returns its connection, or `None`
    /// if a lease still holds it (impossible by the lease invariant; the
    /// entry is then kept, retired, at the end).
    pub(crate) fn remove_entry(&mut self, index: usize) -> Option<(K::Conn, Age)> {
        let entry = self.entries.swap_remove(index);
        let age = entry.age;
        match Arc::try_unwrap(entry.conn) {
            Ok(conn) => Some((conn, age)),
            Err(conn) => {
                self.entries.push(Entry {
                    conn,
                    retired: true,
                    ..entry
                });
                None
            }
        }
    }

    /// A connection is gone for good (discarded or failed to open).
    pub(crate) fn forget(&mut self) {
        self.size -= 1;
    }

    /// Takes an idle connection for exclusive use, preferring one that was
    /// reserved (drained) for an exclusive waiter, then the most recently
    /// used (so that surplus connections stay idle and time out). Broken
    /// and stale ones met on the way are closed.
    pub(crate) fn take_idle(
        &mut self,
        now: Instant,
        fx: &mut Effects<K::Conn>,
    ) -> Option<Checkout<K::Conn>> {
        loop {
            let index = self
                .entries
                .iter()
                .enumerate()
                .filter(|(i, e)| e.users == 0 && !e.retired && !self.kept_for_shared(*i))
                .max_by_key(|(_, e)| (e.reserved, e.age.idle_since))
                .map(|(i, _)| i)?;
            let verdict = self.verdict(index, now);
            // `None` is unreachable by the lease invariant; the entry is kept.
            let Some((conn, age)) = self.remove_entry(index) else {
                continue;
            };
            match verdict {
                Some(why) => {
                    self.size -= 1;
                    fx.close_for(conn, why);
                }
                None => return Some(Checkout { conn, age }),
            }
        }
    }

    /// Whether the entry at `index` is the last one open to shared
    /// statements while some are queued for one: an exclusive caller leaves
    /// it to them (in a pool of more than one connection), so a queue of
    /// transactions cannot take every connection away from the shared
    /// statements behind it, which would then each wait for a transaction
    /// to end and run alone instead of pipelined.
    fn kept_for_shared(&self, index: usize) -> bool {
        self.max_size > 1
            && !self.shared_waiters.is_empty()
            && !self.entries[index].reserved
            && self
                .entries
                .iter()
                .filter(|e| !e.reserved && !e.retired)
                .count()
                == 1
    }

    /// Lends the entry at `index` to one more shared statement.
    pub(super) fn lend(&mut self, index: usize) -> Lease<K::Conn> {
        let entry = &mut self.entries[index];
        entry.users += 1;
        Lease {
            entry: entry.id,
            conn: Arc::clone(&entry.conn),
        }
    }

    /// Serves an exclusive caller at once if it need not queue.
    pub(crate) fn try_exclusive(
        &mut self,
        task: u64,
        now: Instant,
        fx: &mut Effects<K::Conn>,
    ) -> Option<Grant<Checkout<K::Conn>>> {
        self.sweep(now, fx);
        if !self.exclusive_waiters.is_empty() {
            return None; // first come, first served
        }
        let grant = if let Some(conn) = self.take_idle(now, fx) {
            Grant::Ready(conn)
        } else if self.has_room() {
            self.pending += 1;
            Grant::Create
        } else {
            return None;
        };
        self.holders.push(task);
        Some(grant)
    }

    /// Serves a shared statement at once if it need not queue.
    pub(crate) fn try_shared(
        &mut self,
        now: Instant,
        fx: &mut Effects<K::Conn>,
    ) -> Option<Grant<Lease<K::Conn>>> {
        self.sweep(now, fx);
        if !self.shared_waiters.is_empty() {
            return None;
        }
        match self.place_shared() {
            SharedPlacement::Lend(i) => Some(Grant::Ready(self.lend(i))),
            SharedPlacement::Create => Some(Grant::Create),
            SharedPlacement::Wait => None,
        }
    }

    /// Serves every waiter that can be served, in arrival order, then keeps
    /// one busy connection reserved per exclusive waiter still queued.
    pub(crate) fn dispatch(&mut self, now: Instant, fx: &mut Effects<K::Conn>) {
        if self.exclusive_waiters.is_empty() && self.shared_waiters.is_empty() {
            // The common case in shared mode: nobody to serve.
            if self.entries.iter().any(|e| e.reserved) {
                self.rebalance_reservations();
            }
            return;
        }
        while let Some(front) = self.exclusive_waiters.front() {
            let task = front.task;
            let grant = if let Some(conn) = self.take_idle(now, fx) {
                Grant::Ready(conn)
            } else if self.has_room() {
                self.pending += 1;
                Grant::Create
            } else {
                break;
            };
            self.holders.push(task);
            if let Some(waiter) = self.exclusive_waiters.pop_front() {
                waiter.give(grant);
                fx.wake_exclusive.push(waiter);
            }
        }
        if !self.shared_waiters.is_empty() {
            self.sweep(now, fx);
        }
        while !self.shared_waiters.is_empty() {
            let grant = match self.place_shared() {
                SharedPlacement::Lend(i) => Grant::Ready(self.lend(i)),
                SharedPlacement::Create => Grant::Create,
                SharedPlacement::Wait => break,
            };
            if let Some(waiter) = self.shared_waiters.pop_front() {
                waiter.give(grant);
                fx.wake_shared.push(waiter);
            }
        }
        self.rebalance_reservations();
    }

    /// One busy, in-service entry reserved per queued exclusive waiter,
    /// except those that stay open to shared statements when the pool has
    /// room for more than one connection: as many as the shared cap allows,
    /// but at least one and never all of them (exclusive waiters then get
    /// the connections other exclusive holders give back, or one drained
    /// for them). Leaving only one would put every task's shared statements
    /// on one connection — one server backend, one core — while
    /// transactions queue.
    fn rebalance_reservations(&mut self) {
        let in_service = self.entries.iter().filter(|e| !e.retired).count();
        let drainable = if self.max_size > 1 {
            let kept = self.shared_cap().min(in_service.saturating_sub(1)).max(1);
            in_service.saturating_sub(kept)
        } else {
            in_service
        };
        let wanted = self.exclusive_waiters.len().min(drainable);
        let mut reserved = self
            .entries
            .iter()
            .filter(|e| e.reserved && !e.retired)
            .count();
        while reserved < wanted {
            let next = self
                .entries
                .iter_mut()
                .filter(|e| !e.reserved && !e.retired)
                .min_by_key(|e| e.users);
            match next {
                Some(entry) => {
                    entry.reserved = true;
                    reserved += 1;
                }
                None => break,
            }
        }
        while reserved > wanted {
            let next = self
                .entries
                .iter_mut()
                .filter(|e| e.reserved && !e.retired)
                .max_by_key(|e| e.users);
            match next {
                Some(entry) => {
                    entry.reserved = false;
                    reserved -= 1;
                }
                None => break,
            }
        }
    }

    /// Removes a waiter that gave up (timeout, cancellation).
    pub(crate) fn leave_exclusive(&mut self, waiter: &Arc<Waiter<Checkout<K::Conn>>>) {
        self.exclusive_waiters.retain(|w| !Arc::ptr_eq(w, waiter));
    }

    /// Removes a shared waiter that gave up.
    pub(crate) fn leave_shared(&mut self, waiter: &Arc<Waiter<Lease<K::Conn>>>) {
        self.shared_waiters.retain(|w| !Arc::ptr_eq(w, waiter));
    }

    /// Closes the pool: every waiter is told, idle connections are closed,
    /// busy ones retire when their users leave.
    pub(crate) fn close(&mut self, fx: &mut Effects<K::Conn>) {
        self.closed = true;
        for waiter in self.exclusive_waiters.drain(..) {
            waiter.give(Grant::Closed);
            fx.wake_exclusive.push(waiter);
        }
        for waiter in self.shared_waiters.drain(..) {
            waiter.give(Grant::Closed);
            fx.wake_shared.push(waiter);
        }
        let mut busy = Vec::new();
        for entry in self.entries.drain(..) {
            if entry.users > 0 {
                busy.push(Entry {
                    retired: true,
                    ..entry
                });
                continue;
            }
            match Arc::try_unwrap(entry.conn) {
                Ok(conn) => {
                    self.size -= 1;
                    fx.close.push(conn);
                }
                Err(conn) => busy.push(Entry {
                    conn,
                    retired: true,
                    ..entry
                }),
            }
        }
        self.entries = busy;
    }
}
