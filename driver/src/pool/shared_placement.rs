//! Where a shared statement runs: the least-loaded connection, on at most
//! `pool_max_shared` connections at once.
//!
//! Shared statements are pipelined, and a deep pipeline is cheaper per
//! statement than several shallow ones: the server answers a batch per
//! read, the reader coroutine wakes once per batch, and fewer packets and
//! system calls carry the same statements. So shared statements spread over
//! new connections only up to the cap ([`State::shared_cap`], by default one
//! per `may` scheduler thread); past it they join the least-loaded
//! connection already carrying shared statements. Exclusive checkouts are
//! not capped.
//!
//! A connection counts against the cap while it carries shared statements
//! and takes new ones (not reserved for an exclusive waiter, not retired,
//! not broken), and while it is being opened for a shared statement. So a
//! reserved or retired connection frees its place, and a herd of statements
//! arriving at an empty pool opens no more than the cap.

use super::connector::Connector;
use super::state::State;

/// What a shared statement should do.
pub(super) enum SharedPlacement {
    /// Use the entry at this index.
    Lend(usize),
    /// Open a new connection (already counted in `pending` and
    /// `pending_shared`).
    Create,
    /// Nothing usable and no room, or every place under the cap is a
    /// connection still being opened (it serves the queue once open): queue.
    Wait,
}

impl<K: Connector> State<K> {
    /// The most connections that carry shared statements at once:
    /// `pool_max_shared`, else the number of `may` scheduler threads; at
    /// least 1 and at most `max_size`. The default is read once the runtime
    /// runs (a shared statement runs on it), so a runtime configured after
    /// the pool was built is still followed.
    pub(crate) fn shared_cap(&mut self) -> usize {
        if self.shared_cap > 0 {
            return self.shared_cap;
        }
        let wanted = self
            .max_shared
            .unwrap_or_else(|| green::runtime::settings().scheduler_threads);
        let cap = wanted.clamp(1, self.max_size.max(1));
        if self.max_shared.is_some() || green::runtime::started() {
            self.shared_cap = cap;
        }
        cap
    }

    /// Sets `pool_max_shared` (`None`: one per scheduler thread).
    pub(crate) fn set_max_shared(&mut self, max_shared: Option<usize>) {
        self.max_shared = max_shared;
        self.shared_cap = 0;
    }

    /// Where a shared statement should run. Below the cap: an idle
    /// connection, else a new one (up to `max_size`), else the least-loaded
    /// one. At the cap: the least-loaded connection carrying shared
    /// statements; an idle one only when every place is still being opened
    /// (a usable open connection is never left for a queue).
    pub(super) fn place_shared(&mut self) -> SharedPlacement {
        let cap = self.shared_cap();
        let mut idle = None;
        let mut least_loaded: Option<(usize, usize)> = None;
        let mut carrying = self.pending_shared;
        for (i, e) in self.entries.iter().enumerate() {
            if e.reserved || e.retired || K::is_broken(&e.conn) {
                continue;
            }
            if e.users == 0 {
                idle.get_or_insert(i);
            } else {
                carrying += 1;
                if least_loaded.is_none_or(|(_, users)| e.users < users) {
                    least_loaded = Some((i, e.users));
                }
            }
        }
        if carrying >= cap {
            return match least_loaded.map(|(i, _)| i).or(idle) {
                Some(i) => SharedPlacement::Lend(i),
                None => SharedPlacement::Wait,
            };
        }
        if let Some(i) = idle {
            return SharedPlacement::Lend(i);
        }
        if self.has_room() {
            self.pending += 1;
            self.pending_shared += 1;
            return SharedPlacement::Create;
        }
        match least_loaded {
            Some((i, _)) => SharedPlacement::Lend(i),
            None => SharedPlacement::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::super::lifecycle::{Age, Lifecycle};
    use super::super::state::{Effects, Lease};
    use super::super::waiter::{Grant, Waiter};
    use super::super::PoolOptions;
    use super::*;
    use crate::error::Error;

    /// A connection of the state-machine tests: no I/O, only a broken flag.
    #[derive(Debug, Default)]
    struct Plain {
        broken: AtomicBool,
    }

    /// Hands out [`Plain`] connections; the state machine never calls the
    /// I/O operations (the procedures in `keeper` do).
    #[derive(Debug)]
    struct PlainConnector;

    impl Connector for PlainConnector {
        type Conn = Plain;
        fn connect(&self, _within: Duration) -> Result<Plain, Error> {
            Ok(Plain::default())
        }
        fn is_broken(conn: &Plain) -> bool {
            conn.broken.load(Ordering::Relaxed)
        }
        fn check_alive(_conn: &Plain, _timeout: Duration) -> Result<(), Error> {
            Ok(())
        }
        fn in_transaction(_conn: &Plain) -> bool {
            false
        }
        fn roll_back(_conn: &Plain) -> Result<(), Error> {
            Ok(())
        }
    }

    fn state(max_size: usize, max_shared: usize) -> State<PlainConnector> {
        let options = PoolOptions::new().max_size(max_size);
        let mut state = State::new(max_size, Lifecycle::from_options(&options));
        state.set_max_shared(Some(max_shared));
        state
    }

    fn age() -> Age {
        Lifecycle::from_options(&PoolOptions::new()).born(Instant::now(), 0.0)
    }

    /// One shared statement asks; `Some(entry id)` when it got a connection
    /// at once, `None` when it must open one (the open then completes, as
    /// `Keeper::open_shared` does) — the new entry's id is returned too.
    fn shared(state: &mut State<PlainConnector>) -> (Option<u64>, Lease<Plain>) {
        let mut fx = Effects::default();
        match state.try_shared(Instant::now(), &mut fx) {
            Some(Grant::Ready(lease)) => (Some(lease.entry), lease),
            Some(Grant::Create) => (None, open_shared(state)),
            other => panic!("a shared statement got {other:?}, not a connection"),
        }
    }

    /// Completes a counted open for a shared statement.
    fn open_shared(state: &mut State<PlainConnector>) -> Lease<Plain> {
        state.opening_ended(true);
        state.size += 1;
        state.insert_lent(Plain::default(), age())
    }

    /// Ends a shared statement's use of its connection (as `Keeper::release`).
    fn release(state: &mut State<PlainConnector>, lease: Lease<Plain>) {
        let Lease { entry, conn } = lease;
        drop(conn);
        let index = state.entries.iter().position(|e| e.id == entry).unwrap();
        state.entries[index].users -= 1;
        state.dispatch(Instant::now(), &mut Effects::default());
    }

    fn users(state: &State<PlainConnector>) -> Vec<usize> {
        state.entries.iter().map(|e| e.users).collect()
    }

    #[test]
    fn below_the_cap_shared_statements_open_connections() {
        let mut state = state(8, 3);
        let leases: Vec<_> = (0..3).map(|_| shared(&mut state)).collect();
        assert!(leases.iter().all(|(lent, _)| lent.is_none()));
        assert_eq!((state.size, state.pending, state.pending_shared), (3, 0, 0));
        assert_eq!(users(&state), [1, 1, 1]);
    }

    #[test]
    fn at_the_cap_no_connection_is_opened_and_the_least_loaded_one_is_joined() {
        let mut state = state(8, 2);
        let mut leases = vec![shared(&mut state).1, shared(&mut state).1];
        for _ in 0..5 {
            let (lent, lease) = shared(&mut state);
            assert!(lent.is_some(), "a connection was opened at the cap");
            leases.push(lease);
        }
        assert_eq!((state.size, state.pending), (2, 0));
        assert_eq!(users(&state), [4, 3]);
        // the busier one drains below the other: the next goes there
        let first = state.entries[0].id;
        for _ in 0..2 {
            let at = leases.iter().position(|l| l.entry == first).unwrap();
            release(&mut state, leases.swap_remove(at));
        }
        assert_eq!(shared(&mut state).0, Some(first));
    }

    #[test]
    fn connections_being_opened_count_against_the_cap() {
        let mut state = state(8, 2);
        let mut fx = Effects::default();
        let now = Instant::now();
        assert!(matches!(
            state.try_shared(now, &mut fx),
            Some(Grant::Create)
        ));
        assert!(matches!(
            state.try_shared(now, &mut fx),
            Some(Grant::Create)
        ));
        // a herd at an empty pool: the third queues although there is room
        assert!(state.try_shared(now, &mut fx).is_none());
        let waiter = Waiter::new(0);
        state.shared_waiters.push_back(Arc::clone(&waiter));
        // the first open completes and serves the queue
        let first = open_shared(&mut state);
        state.dispatch(now, &mut fx);
        match waiter.take() {
            Some(Grant::Ready(lease)) => assert_eq!(lease.entry, first.entry),
            other => panic!("the queued statement got {other:?}"),
        }
        assert_eq!((state.pending, state.pending_shared), (1, 1));
    }

    #[test]
    fn a_failed_open_gives_its_place_under_the_cap_back() {
        let mut state = state(8, 1);
        let mut fx = Effects::default();
        let now = Instant::now();
        assert!(matches!(
            state.try_shared(now, &mut fx),
            Some(Grant::Create)
        ));
        assert!(state.try_shared(now, &mut fx).is_none());
        let waiter = Waiter::new(0);
        state.shared_waiters.push_back(Arc::clone(&waiter));
        state.opening_ended(true); // as `Opening`'s drop after a failure
        state.dispatch(now, &mut fx);
        assert!(matches!(waiter.take(), Some(Grant::Create)));
        assert_eq!((state.pending, state.pending_shared), (1, 1));
    }

    #[test]
    fn below_the_cap_an_idle_connection_is_taken_before_opening_one() {
        let mut state = state(8, 2);
        state.size += 1;
        state.insert_idle(Plain::default(), age());
        let idle = state.entries[0].id;
        assert_eq!(shared(&mut state).0, Some(idle));
        assert_eq!((state.size, state.pending), (1, 0));
    }

    #[test]
    fn at_the_cap_an_idle_connection_is_left_alone() {
        let mut state = state(8, 1);
        let (_, carrying) = shared(&mut state);
        state.size += 1;
        state.insert_idle(Plain::default(), age());
        let (lent, _second) = shared(&mut state);
        assert_eq!(lent, Some(carrying.entry));
        assert_eq!(users(&state), [2, 0]);
    }

    #[test]
    fn a_reserved_or_retired_or_broken_carrier_frees_a_place_under_the_cap() {
        for how in ["reserved", "retired", "broken"] {
            let mut state = state(8, 2);
            let _a = shared(&mut state);
            let _b = shared(&mut state);
            match how {
                "reserved" => state.entries[0].reserved = true,
                "retired" => state.entries[0].retired = true,
                _ => state.entries[0].conn.broken.store(true, Ordering::Relaxed),
            }
            let (lent, _c) = shared(&mut state);
            assert_eq!(lent, None, "no connection opened beside a {how} one");
            assert_eq!(state.size, 3);
        }
    }

    #[test]
    fn with_the_only_carrier_reserved_and_no_room_a_statement_queues() {
        let mut state = state(1, 1);
        let _a = shared(&mut state);
        state.entries[0].reserved = true;
        assert!(state
            .try_shared(Instant::now(), &mut Effects::default())
            .is_none());
    }

    /// Queues `n` exclusive waiters (tasks 100..) and lets the pool
    /// rebalance its reservations.
    fn queue_exclusive(state: &mut State<PlainConnector>, n: u64) {
        for task in 100..100 + n {
            state.exclusive_waiters.push_back(Waiter::new(task));
        }
        state.dispatch(Instant::now(), &mut Effects::default());
    }

    fn reserved(state: &State<PlainConnector>) -> usize {
        state.entries.iter().filter(|e| e.reserved).count()
    }

    #[test]
    fn queued_transactions_leave_the_shared_cap_of_connections_to_shared_statements() {
        let mut state = state(8, 2);
        let leases: Vec<_> = (0..16).map(|_| shared(&mut state)).collect();
        assert_eq!(state.size, 2);
        // Six more connections carry nothing (as if transactions had
        // given them back while shared statements kept the first two busy).
        for _ in 0..6 {
            state.size += 1;
            let lease = state.insert_lent(Plain::default(), age());
            release(&mut state, lease);
        }
        // Busy everywhere: one more shared statement on each of the six.
        let mut busy = Vec::new();
        for index in 2..8 {
            busy.push(state.lend(index));
        }
        queue_exclusive(&mut state, 20);
        assert_eq!(reserved(&state), 6, "all but the cap's two reserved");
        assert!(state.entries[..2].iter().all(|e| !e.reserved));
        drop((leases, busy));
    }

    #[test]
    fn queued_transactions_still_drain_one_of_two_connections_at_a_cap_of_two() {
        let mut state = state(2, 2);
        let _leases: Vec<_> = (0..6).map(|_| shared(&mut state)).collect();
        assert_eq!(state.size, 2);
        queue_exclusive(&mut state, 3);
        assert_eq!(reserved(&state), 1, "one kept for shared, one drained");
    }

    #[test]
    fn exclusive_checkouts_are_not_capped() {
        let mut state = state(4, 1);
        let _shared = shared(&mut state);
        let mut fx = Effects::default();
        for task in 1..=3 {
            let grant = state.try_exclusive(task, Instant::now(), &mut fx);
            assert!(matches!(grant, Some(Grant::Create)), "task {task}");
        }
        assert_eq!((state.size, state.pending, state.pending_shared), (1, 3, 0));
    }

    #[test]
    fn a_cap_above_max_size_is_clamped_to_it() {
        let mut state = state(3, 10);
        assert_eq!(state.shared_cap(), 3);
        let leases: Vec<_> = (0..6).map(|_| shared(&mut state)).collect();
        assert_eq!(leases.iter().filter(|(lent, _)| lent.is_none()).count(), 3);
        assert_eq!(users(&state), [2, 2, 2]);
    }

    #[test]
    fn the_default_cap_is_the_scheduler_threads_within_max_size() {
        let threads = green::runtime::settings().scheduler_threads;
        let options = PoolOptions::new().max_size(64);
        let mut state: State<PlainConnector> = State::new(64, Lifecycle::from_options(&options));
        assert_eq!(state.shared_cap(), threads.clamp(1, 64));
        let mut small: State<PlainConnector> = State::new(1, Lifecycle::from_options(&options));
        assert_eq!(small.shared_cap(), 1);
    }
}
