//! A fixed amount of ORM work, for counting what one ORM read costs the
//! client: `TASKS` green tasks share a mapper whose pool has `POOL_SIZE`
//! connections, and each runs `REQUESTS` requests of the `db` workload the
//! way the benchmark's `odm-orm` contender does — a new
//! [`Mapper::session`](odm::Mapper::session), one `get::<World>(id)`, the
//! session committed — then the program prints the total and exits. The
//! reads run on the pool's shared, pipelined connections. Nothing but odm
//! runs on the client side, so the difference between two runs with
//! different `REQUESTS` under a deterministic counter is the ORM's cost per
//! read, to set beside `driver_load`'s raw point select:
//!
//! ```text
//! cargo build --release --example orm_load
//! valgrind --tool=callgrind --callgrind-out-file=a.out target/release/examples/orm_load 256 2 50
//! valgrind --tool=callgrind --callgrind-out-file=b.out target/release/examples/orm_load 256 2 150
//! # (Ir(b) - Ir(a)) / (256 * 100) = client instructions per ORM read
//! callgrind_annotate --inclusive=yes b.out | head -80
//! ```
//!
//! Arguments: `TASKS POOL_SIZE REQUESTS [MODE]` (defaults 256, 2, 1000,
//! `get`); MODE `autocommit` runs each request's `get` in an autocommit
//! session (`odm-orm-autocommit`), `query` reads with
//! `query::<World>().filter(World::ID.eq(id)).all()` instead of `get`.
//! Uses `DATABASE_URL` when set, else a throwaway cluster.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use green::GreenPool;
use odm::pg::{Client, Config};
use odm::testing::test_database;
use odm::Mapper;
use odm_bench::args::positional;
use odm_bench::measure::cpu_time;
use odm_bench::odm_orm::{self, World};

use odm_bench::workload::WORLD_ROWS;

fn main() {
    if let Err(e) = run() {
        eprintln!("orm_load: {e}");
        std::process::exit(1);
    }
}

/// How a request reads (the fourth argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `session()`, `get::<World>(id)`, `commit()` (the default).
    Get,
    /// `autocommit_session()`, `get::<World>(id)`.
    Autocommit,
    /// `session()`, `query::<World>().filter(World::ID.eq(id)).all()`,
    /// `commit()`.
    Query,
}

fn mode() -> Result<Mode, String> {
    match std::env::args().nth(4).as_deref() {
        None | Some("get") => Ok(Mode::Get),
        Some("autocommit") => Ok(Mode::Autocommit),
        Some("query") => Ok(Mode::Query),
        Some(other) => Err(format!(
            "argument 4 must be `get`, `autocommit` or `query`, got `{other}`"
        )),
    }
}

/// One request: a new session, one read by primary key, the session ended.
fn request(mapper: &Mapper, mode: Mode, id: i32) -> Result<World, odm::Error> {
    let world = match mode {
        Mode::Autocommit => mapper.autocommit_session()?.get::<World>(id)?,
        Mode::Get => {
            let mut session = mapper.session()?;
            let world = session.get::<World>(id)?;
            session.commit()?;
            world
        }
        Mode::Query => {
            let mut session = mapper.session()?;
            let mut worlds = session.query::<World>().filter(World::ID.eq(id)).all()?;
            session.commit()?;
            worlds.pop()
        }
    };
    world.ok_or_else(|| odm::Error::Protocol(format!("world {id} not found")))
}

fn run() -> Result<(), String> {
    let tasks = positional(1, 256)?;
    let pool_size = positional(2, 2)?;
    let requests = positional(3, 1000)?;
    let mode = mode()?;
    let database = test_database().map_err(|e| e.to_string())?;
    let config = Config::parse(&database.url()).map_err(|e| e.to_string())?;
    let mapper = odm_orm::mapper(&config, pool_size).map_err(|e| e.to_string())?;
    let pool = GreenPool::with_max_workers(tasks + 8);
    let setup = config.clone();
    pool.submit(move || -> Result<(), odm::Error> {
        Ok(Client::connect(&setup)?.batch_execute(&odm_bench::schema::load_world_sql())?)
    })
    .map_err(|e| e.to_string())?
    .join()
    .map_err(|e| format!("{e:?}"))?
    .map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_before = cpu_time(false);
    let mut handles = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let mapper = mapper.clone();
        let done = done.clone();
        let handle = pool
            .submit(move || -> Result<(), odm::Error> {
                // A fixed sequence per task: the same work in every run.
                let mut id = (i as i32 * 7) % WORLD_ROWS;
                for _ in 0..requests {
                    id = (id * 31 + 17) % WORLD_ROWS;
                    let world = request(&mapper, mode, id + 1)?;
                    if world.id != id + 1 {
                        return Err(odm::Error::Protocol(format!(
                            "asked {}, got {}",
                            id + 1,
                            world.id
                        )));
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
    let cpu = cpu_time(false).saturating_sub(cpu_before);
    let total = done.load(Ordering::Relaxed);
    println!(
        "{total} ORM reads by {tasks} tasks on a pool of {pool_size} in {:.3} s: {:.0} reads/s, \
         client CPU {:.2} ms per 1,000 reads",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / total.max(1) as f64
    );
    Ok(())
}
