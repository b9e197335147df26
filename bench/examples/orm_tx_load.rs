//! A fixed amount of ORM write work, for counting what one
//! transaction-per-request costs the client: `TASKS` green tasks share a
//! mapper whose pool holds `POOL` connections, and each runs `REQUESTS`
//! requests of the benchmark's `updates` shape as `odm-orm` runs them (a
//! `mapper.session()`: 20 `get`s on shared connections, then `add_all` of
//! the 20 worlds — one upsert on a connection of the session's own, after
//! `BEGIN` — then `commit`), then the program prints the total and exits.
//! The difference between two runs with different `REQUESTS` under a
//! deterministic counter is what one request costs:
//!
//! ```text
//! cargo build --release --example orm_tx_load
//! valgrind --tool=callgrind --callgrind-out-file=a.out target/release/examples/orm_tx_load 64 8 10
//! valgrind --tool=callgrind --callgrind-out-file=b.out target/release/examples/orm_tx_load 64 8 30
//! # (Ir(b) - Ir(a)) / (64 * 20) = client instructions per request
//! perf record -e 'syscalls:sys_enter_*' target/release/examples/orm_tx_load 256 8 40
//! perf script -F comm,event | grep -v postgres | sort | uniq -c
//! ```
//!
//! Arguments: `TASKS POOL REQUESTS` (defaults 256, 8, 20); a fourth,
//! `commit-with`, `autocommit` or `batch`, runs the request as
//! `odm-orm-commit-with`, `odm-orm-autocommit` or `odm-orm-batch` instead. Uses `DATABASE_URL` when set, else a throwaway
//! cluster.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use green::GreenPool;
use odm::pg::{Client, Config};
use odm::testing::test_database;
use odm_bench::args::positional;
use odm_bench::odm_orm::{self, OrmMode};
use odm_bench::schema;
use odm_bench::workload::{Rng, Workload};

fn main() {
    if let Err(e) = run() {
        eprintln!("orm_tx_load: {e}");
        std::process::exit(1);
    }
}

fn mode() -> Result<OrmMode, String> {
    match std::env::args().nth(4).as_deref() {
        None | Some("transaction") => Ok(OrmMode::Transaction),
        Some("autocommit") => Ok(OrmMode::Autocommit),
        Some("batch") => Ok(OrmMode::AtomicBatch),
        Some("commit-with") => Ok(OrmMode::CommitWith),
        Some(other) => Err(format!(
            "argument 4 must be transaction, commit-with, autocommit or batch, got `{other}`"
        )),
    }
}

fn run() -> Result<(), String> {
    let tasks = positional(1, 256)?;
    let connections = positional(2, 8)?;
    let requests = positional(3, 20)?;
    let mode = mode()?;
    let database = test_database().map_err(|e| e.to_string())?;
    let config = Config::parse(&database.url()).map_err(|e| e.to_string())?;
    let pool = GreenPool::with_max_workers(tasks + 8);
    let setup = config.clone();
    pool.submit(move || -> Result<(), odm::Error> {
        let client = Client::connect(&setup)?;
        Ok(schema::create(|sql| client.batch_execute(sql))?)
    })
    .map_err(|e| e.to_string())?
    .join()
    .map_err(|e| format!("{e:?}"))?
    .map_err(|e| e.to_string())?;
    let mapper = odm_orm::mapper(&config, connections).map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let mapper = mapper.clone();
        let done = done.clone();
        let handle = pool
            .submit(move || -> Result<(), String> {
                // A fixed sequence per task: the same work in every run.
                let mut rng = Rng::new(i as u64 + 1);
                for _ in 0..requests {
                    odm_orm::request(&mapper, Workload::Updates, &mut rng, &|| {}, mode)
                        .map_err(|e| e.to_string())?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        handles.push(handle);
    }
    for handle in handles {
        handle.join().map_err(|e| format!("{e:?}"))??;
    }
    let elapsed = started.elapsed();
    let total = done.load(Ordering::Relaxed);
    println!(
        "{total} requests by {tasks} tasks on {connections} connections in {:.3} s: {:.0} req/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    if let Some(engine) = mapper.engine(None) {
        let stats = engine.pool().stats();
        println!(
            "pool: {} exclusive checkouts, {} shared statements, {} waits (mean {:.2} ms, \
             longest {:.1} ms), {} handed on at commit",
            stats.acquires,
            stats.shared_statements,
            stats.waits,
            stats.mean_wait().as_secs_f64() * 1000.0,
            stats.max_wait.as_secs_f64() * 1000.0,
            stats.handed_on_at_commit
        );
    }
    Ok(())
}
