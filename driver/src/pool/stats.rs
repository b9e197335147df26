//! Counters the pool keeps about itself: how often and how long callers
//! waited, how many connections it opened, threw away or retired for age,
//! and how often the connect backoff held callers back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of a pool's counters since it was created
/// ([`Pool::stats`](crate::Pool::stats)).
///
/// Waits count only callers that had to park because no connection was
/// free; a caller served at once does not add to `waits` or `total_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Exclusive checkouts handed out by [`Pool::acquire`](crate::Pool::acquire).
    pub acquires: u64,
    /// Statements run in shared mode ([`Pool::query`](crate::Pool::query) and friends).
    pub shared_statements: u64,
    /// Callers (exclusive or shared) that parked waiting for a connection.
    pub waits: u64,
    /// Time spent parked by all of them together.
    pub total_wait: Duration,
    /// The longest single wait.
    pub max_wait: Duration,
    /// Callers that gave up with [`Error::PoolTimeout`](crate::Error::PoolTimeout).
    pub timeouts: u64,
    /// Connections opened successfully.
    pub connections_opened: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections thrown away: broken, not cleanly rolled back, or returned
    /// after [`Pool::close`](crate::Pool::close).
    pub connections_discarded: u64,
    /// Connections handed back inside a transaction and rolled back.
    pub rollbacks_on_return: u64,
    /// Connections a committing session handed straight to the next
    /// waiting [`Pool::acquire`](crate::Pool::acquire) caller as soon as its
    /// `COMMIT` was sent (also counted in `acquires`).
    pub handed_on_at_commit: u64,
    /// Connections closed because they outlived `max_lifetime` (not counted
    /// in `connections_discarded`).
    pub connections_expired: u64,
    /// Connections closed because they sat idle past `idle_timeout` (not
    /// counted in `connections_discarded`).
    pub connections_idled_out: u64,
    /// Idle connections that failed the liveness check before an exclusive
    /// acquire and were discarded (also counted in `connections_discarded`).
    pub liveness_failures: u64,
    /// Times a caller parked because the connect backoff held its connect
    /// back.
    pub backoff_waits: u64,
    /// Callers failed at once with the last connect error because the
    /// backoff would not allow a connect before their deadline.
    pub backoff_refusals: u64,
}

impl PoolStats {
    /// Mean time a waiting caller spent parked (zero when nobody waited).
    pub fn mean_wait(&self) -> Duration {
        match u32::try_from(self.waits) {
            Ok(0) => Duration::ZERO,
            Ok(waits) => self.total_wait / waits,
            Err(_) => Duration::from_nanos(
                u64::try_from(self.total_wait.as_nanos() / u128::from(self.waits))
                    .unwrap_or(u64::MAX),
            ),
        }
    }
}

/// The live counters behind [`PoolStats`]; lock-free so that recording never
/// contends with the pool's state lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    acquires: AtomicU64,
    shared_statements: AtomicU64,
    waits: AtomicU64,
    total_wait_nanos: AtomicU64,
    max_wait_nanos: AtomicU64,
    timeouts: AtomicU64,
    connections_opened: AtomicU64,
    connect_failures: AtomicU64,
    connections_discarded: AtomicU64,
    rollbacks_on_return: AtomicU64,
    handed_on_at_commit: AtomicU64,
    connections_expired: AtomicU64,
    connections_idled_out: AtomicU64,
    liveness_failures: AtomicU64,
    backoff_waits: AtomicU64,
    backoff_refusals: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Counters {
    pub(crate) fn acquired(&self) {
        self.acquires.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn shared_statement(&self) {
        self.shared_statements.fetch_add(1, Ordering::Relaxed);
    }

    /// A caller parked for `waited` (whatever the outcome).
    pub(crate) fn waited(&self, waited: Duration) {
        let n = nanos(waited);
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.total_wait_nanos.fetch_add(n, Ordering::Relaxed);
        self.max_wait_nanos.fetch_max(n, Ordering::Relaxed);
    }

    pub(crate) fn timed_out(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn opened(&self) {
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn discarded(&self) {
        self.connections_discarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rolled_back(&self) {
        self.rollbacks_on_return.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn passed_on(&self) {
        self.handed_on_at_commit.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn expired(&self) {
        self.connections_expired.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn idled_out(&self) {
        self.connections_idled_out.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn liveness_failed(&self) {
        self.liveness_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn backoff_wait(&self) {
        self.backoff_waits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn backoff_refused(&self) {
        self.backoff_refusals.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> PoolStats {
        PoolStats {
            acquires: self.acquires.load(Ordering::Relaxed),
            shared_statements: self.shared_statements.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(self.total_wait_nanos.load(Ordering::Relaxed)),
            max_wait: Duration::from_nanos(self.max_wait_nanos.load(Ordering::Relaxed)),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            connections_opened: self.connections_opened.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            connections_discarded: self.connections_discarded.load(Ordering::Relaxed),
            rollbacks_on_return: self.rollbacks_on_return.load(Ordering::Relaxed),
            handed_on_at_commit: self.handed_on_at_commit.load(Ordering::Relaxed),
            connections_expired: self.connections_expired.load(Ordering::Relaxed),
            connections_idled_out: self.connections_idled_out.load(Ordering::Relaxed),
            liveness_failures: self.liveness_failures.load(Ordering::Relaxed),
            backoff_waits: self.backoff_waits.load(Ordering::Relaxed),
            backoff_refusals: self.backoff_refusals.load(Ordering::Relaxed),
        }
    }
}
