//! A fixed amount of raw-driver work, for counting what one query costs
//! the client: `TASKS` green tasks share `CONNS` pipelined connections and
//! each runs `QUERIES` point selects (`SELECT id, randomnumber FROM world
//! WHERE id = $1`), then the program prints the total and exits. Nothing
//! but the driver runs on the client side (no rendering, no latency
//! histogram), so the difference between two runs with different
//! `QUERIES` under a deterministic counter is the driver's cost:
//!
//! ```text
//! cargo build --release --example driver_load
//! valgrind --tool=callgrind --callgrind-out-file=a.out target/release/examples/driver_load 256 2 50
//! valgrind --tool=callgrind --callgrind-out-file=b.out target/release/examples/driver_load 256 2 150
//! # (Ir(b) - Ir(a)) / (256 * 100) = client instructions per query
//! perf record -e 'syscalls:sys_enter_*' target/release/examples/driver_load 256 2 2000
//! ```
//!
//! Arguments: `TASKS CONNS QUERIES` (defaults 256, 2, 1000). The selects
//! are marked read-only (`Client::read_only`), so they share a `Sync`
//! while answers are outstanding; with `COALESCE_READS=false` in the
//! environment each has its own (`coalesce_reads=false`), as before read
//! coalescing. Uses
//! `DATABASE_URL` when set, else a throwaway cluster. `orm_load` counts the
//! same read made through the ORM (a session and `get` per request).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use green::GreenPool;
use odm::pg::{Client, Config};
use odm::testing::test_database;
use odm_bench::args::positional;

const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
use odm_bench::workload::WORLD_ROWS;

fn main() {
    if let Err(e) = run() {
        eprintln!("driver_load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let tasks = positional(1, 256)?;
    let conns = positional(2, 2)?;
    let queries = positional(3, 1000)?;
    let coalesce = std::env::var("COALESCE_READS").map_or(true, |v| v != "false");
    let database = test_database().map_err(|e| e.to_string())?;
    let mut config = Config::parse(&database.url()).map_err(|e| e.to_string())?;
    if !coalesce {
        config = Config::parse(&format!("{}?coalesce_reads=false", database.url()))
            .map_err(|e| e.to_string())?;
    }
    let pool = GreenPool::with_max_workers(tasks + 8);
    let clients: Vec<Arc<Client>> = pool
        .submit(move || -> Result<Vec<Arc<Client>>, odm::Error> {
            let setup = Client::connect(&config)?;
            setup.batch_execute(&odm_bench::schema::load_world_sql())?;
            (0..conns)
                .map(|_| {
                    let client = Arc::new(Client::connect(&config)?);
                    client.set_shared(true);
                    Ok(client)
                })
                .collect()
        })
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|e| format!("{e:?}"))?
        .map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let client = clients[i % conns].clone();
        let done = done.clone();
        let handle = pool
            .submit(move || -> Result<(), odm::Error> {
                let statement = client.prepare(SELECT_WORLD)?;
                // A fixed sequence per task: the same work in every run.
                let mut id = (i as i32 * 7) % WORLD_ROWS;
                for _ in 0..queries {
                    id = (id * 31 + 17) % WORLD_ROWS;
                    let rows = client
                        .read_only()
                        .query_statement(&statement, &[&(id + 1)])?;
                    let got: i32 = rows[0].try_get(0)?;
                    if got != id + 1 {
                        return Err(odm::Error::Protocol(format!("asked {}, got {got}", id + 1)));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        handles.push(handle);
    }
    for handle in handles {
        handle
            .join()
            .map_err(|e| format!("{e:?}"))?
            .map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    let total = done.load(Ordering::Relaxed);
    println!(
        "{total} queries by {tasks} tasks on {conns} connections in {:.3} s: {:.0} q/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
