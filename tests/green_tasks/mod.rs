//! Running test work on green workers: one `GreenPool` per test binary,
//! large enough that every task of a test runs at once.

use std::sync::OnceLock;

use green::{GreenPool, Submitted};

/// The test binary's green pool.
pub fn green() -> &'static GreenPool {
    static GREEN: OnceLock<GreenPool> = OnceLock::new();
    GREEN.get_or_init(|| GreenPool::with_max_workers(500))
}

/// Submits `work` to the green pool.
pub fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Submitted<T> {
    green().submit(work).expect("the green pool accepts work")
}

/// Runs `work` on a green worker and waits for its result, re-raising its
/// panic as a test failure.
pub fn on_green<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    spawn(work).join().expect("the green task finishes")
}
