//! Running test work on green workers: one `GreenPool` per test binary,
//! large enough that every task of a test runs at once (so the database
//! pool, not the green pool, is the bottleneck being tested). Workers start
//! only as tasks need them.

use std::sync::OnceLock;

use green::{GreenPool, Submitted};

/// The test binary's green pool.
pub fn green() -> &'static GreenPool {
    static GREEN: OnceLock<GreenPool> = OnceLock::new();
    GREEN.get_or_init(|| GreenPool::with_max_workers(2_000))
}

/// Submits `work` to the green pool.
#[allow(dead_code)] // not every test binary runs tasks side by side
pub fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Submitted<T> {
    green().submit(work).expect("the green pool accepts work")
}

/// Runs `work` on a green worker and waits for its result, re-raising its
/// panic as a test failure.
pub fn on_green<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match green().run(work) {
        Ok(value) => value,
        Err(e) => panic!("the green task failed: {e}"),
    }
}
