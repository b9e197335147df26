//! Random spread for the pool's timers, so that connections opened together
//! do not expire together and pools that failed together do not retry in
//! lock step.
//!
//! Not cryptographic and not meant to be: SipHash with the process's random
//! keys over a counter gives well-spread fractions without a dependency.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// A fraction in `[0, 1)`, different on every call.
pub(crate) fn fraction() -> f64 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = KEYS.get_or_init(RandomState::new).hash_one(n);
    // The top 53 bits make an exactly representable f64 in [0, 1).
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// `full` scaled by `spread` (a fraction in `[0, 1)`).
pub(crate) fn part_of(full: Duration, spread: f64) -> Duration {
    full.mul_f64(spread.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_stay_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..1000).map(|_| fraction()).collect();
        assert!(draws.iter().all(|f| (0.0..1.0).contains(f)));
        let low = draws.iter().filter(|f| **f < 0.5).count();
        assert!((300..700).contains(&low), "{low} of 1000 below one half");
    }

    #[test]
    fn a_part_of_a_duration_is_never_more_than_the_whole() {
        let full = Duration::from_millis(200);
        assert_eq!(part_of(full, 0.0), Duration::ZERO);
        assert_eq!(part_of(full, 0.5), Duration::from_millis(100));
        assert!(part_of(full, 7.0) <= full);
    }
}
