//! The benchmark's building blocks and the green HTTP app, as a library for
//! the programs in `examples/` and the tests in `tests/`:
//!
//! ```text
//! cargo run --release --example bench        # odm beside its peers (see examples/bench.rs)
//! cargo run --release --example green_http   # TechEmpower's endpoints on green workers
//! ```
//!
//! Not published: it exists to measure odm and to show it serving HTTP.

pub mod args;
pub mod bulk;
pub mod chart;
pub mod green_http;
pub mod measure;
pub mod odm_orm;
pub mod odm_pool;
pub mod odm_raw;
pub mod peers;
pub mod pgbench;
pub mod report;
pub mod scale;
pub mod schema;
pub mod targets;
pub mod workload;

use green::GreenPool;

/// Runs `work` on a worker of `green` and waits for it; a failure to run
/// it, its panic or its error as text.
pub fn on_green<T: Send + 'static>(
    green: &GreenPool,
    work: impl FnOnce() -> Result<T, odm::Error> + Send + 'static,
) -> Result<T, String> {
    green
        .run(work)
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
