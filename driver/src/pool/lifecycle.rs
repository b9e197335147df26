//! How long a pooled connection may live and sit idle, and when it must
//! prove it is alive before it is handed out.
//!
//! The pool has no background thread: these rules are applied when the pool
//! is touched (an acquire, a shared statement, a connection handed back).
//! An untouched pool closes nothing.

use std::time::{Duration, Instant};

use super::jitter;
use super::PoolOptions;

/// The longest a liveness check may take, cut to what is left of the
/// caller's `pool_timeout` (HikariCP's `validationTimeout`): a live server
/// answers an empty query in well under a millisecond.
pub(crate) const LIVENESS_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest share of `max_lifetime` taken off at random per connection,
/// so connections opened together do not all expire together (HikariCP
/// uses the same 2.5 %).
const LIFETIME_JITTER: f64 = 0.025;

/// Why the pool closes a connection that is not broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Staleness {
    /// Older than its `max_lifetime`.
    Expired,
    /// Idle for longer than `idle_timeout`.
    Idle,
}

/// The times the pool keeps for one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Age {
    /// When it must be closed (`max_lifetime` after it was opened, less
    /// jitter); `None` = never.
    pub(crate) expires_at: Option<Instant>,
    /// When it last went idle (handed back, or its last shared statement
    /// finished).
    pub(crate) idle_since: Instant,
}

impl Age {
    /// The same connection, idle from `now`.
    pub(crate) fn idle_from(self, now: Instant) -> Age {
        Age {
            idle_since: now,
            ..self
        }
    }
}

/// The lifetime rules of one pool, from its [`PoolOptions`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifecycle {
    /// `max_lifetime`; `None` = connections live for ever.
    pub(crate) max_lifetime: Option<Duration>,
    /// `idle_timeout`; `None` = idle connections are kept for ever.
    pub(crate) idle_timeout: Option<Duration>,
    /// See [`PoolOptions::liveness_check_after`].
    pub(crate) liveness_window: Duration,
    /// See [`LIVENESS_TIMEOUT`].
    pub(crate) liveness_timeout: Duration,
}

impl Lifecycle {
    /// The rules `options` ask for.
    pub(crate) fn from_options(options: &PoolOptions) -> Lifecycle {
        Lifecycle {
            max_lifetime: options.get_max_lifetime(),
            idle_timeout: options.get_idle_timeout(),
            liveness_window: options.get_liveness_check_after(),
            liveness_timeout: LIVENESS_TIMEOUT,
        }
    }

    /// The age of a connection opened at `now`; `spread` (in `[0, 1)`)
    /// picks how much of [`LIFETIME_JITTER`] comes off its lifetime.
    pub(crate) fn born(&self, now: Instant, spread: f64) -> Age {
        let expires_at = self.max_lifetime.map(|lifetime| {
            let jitter = jitter::part_of(lifetime.mul_f64(LIFETIME_JITTER), spread);
            now + (lifetime - jitter)
        });
        Age {
            expires_at,
            idle_since: now,
        }
    }

    /// True once a connection of this age has outlived `max_lifetime`.
    pub(crate) fn is_expired(&self, age: &Age, now: Instant) -> bool {
        age.expires_at.is_some_and(|at| now >= at)
    }

    /// Why an idle connection of this age should be closed now, if at all.
    pub(crate) fn staleness(&self, age: &Age, now: Instant) -> Option<Staleness> {
        if self.is_expired(age, now) {
            Some(Staleness::Expired)
        } else if self
            .idle_timeout
            .is_some_and(|timeout| now.saturating_duration_since(age.idle_since) >= timeout)
        {
            Some(Staleness::Idle)
        } else {
            None
        }
    }

    /// True when a connection idle since `age.idle_since` must pass a
    /// liveness check before it is handed out.
    pub(crate) fn needs_check(&self, age: &Age, now: Instant) -> bool {
        now.saturating_duration_since(age.idle_since) > self.liveness_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lifetime: Option<u64>, idle: Option<u64>) -> Lifecycle {
        Lifecycle {
            max_lifetime: lifetime.map(Duration::from_secs),
            idle_timeout: idle.map(Duration::from_secs),
            liveness_window: PoolOptions::new().get_liveness_check_after(),
            liveness_timeout: LIVENESS_TIMEOUT,
        }
    }

    #[test]
    fn a_lifetime_loses_at_most_two_and_a_half_percent_to_jitter() {
        let now = Instant::now();
        let rules = rules(Some(100), None);
        let earliest = rules.born(now, 0.999_999).expires_at.expect("expires");
        let latest = rules.born(now, 0.0).expires_at.expect("expires");
        assert_eq!(latest, now + Duration::from_secs(100));
        assert!(earliest >= now + Duration::from_millis(97_500));
        assert!(earliest < latest);
    }

    #[test]
    fn without_limits_nothing_goes_stale() {
        let now = Instant::now();
        let rules = rules(None, None);
        let age = rules.born(now, 0.5);
        assert_eq!(age.expires_at, None);
        let much_later = now + Duration::from_secs(1_000_000);
        assert_eq!(rules.staleness(&age, much_later), None);
    }

    #[test]
    fn expiry_is_checked_before_idleness() {
        let now = Instant::now();
        let rules = rules(Some(10), Some(5));
        let age = rules.born(now, 0.0);
        assert_eq!(rules.staleness(&age, now + Duration::from_secs(4)), None);
        assert_eq!(
            rules.staleness(&age, now + Duration::from_secs(6)),
            Some(Staleness::Idle)
        );
        let used = age.idle_from(now + Duration::from_secs(9));
        assert_eq!(
            rules.staleness(&used, now + Duration::from_secs(10)),
            Some(Staleness::Expired)
        );
    }

    #[test]
    fn only_a_connection_idle_past_the_window_is_checked() {
        let now = Instant::now();
        let rules = rules(None, None);
        let age = rules.born(now, 0.0);
        assert!(!rules.needs_check(&age, now + Duration::from_millis(400)));
        assert!(rules.needs_check(&age, now + Duration::from_millis(600)));
    }
}
