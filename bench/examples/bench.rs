//! odm beside its peers and the server's ceiling, on TechEmpower's database
//! workloads, in one run against one server.
//!
//! ```text
//! cargo run --release --example bench
//! cargo run --release --example bench -- --workloads db,queries --levels 256,1024 --duration 5
//! cargo run --release --example bench -- --contenders odm-raw,odm-orm,tokio-postgres
//! cargo run --release --example bench -- --scale            # 10,000 tasks through pool_size=4
//! cargo run --release --example bench -- --bulk --no-matrix # add_all, COPY, iter() vs all()
//! ```
//!
//! Uses the server named by `DATABASE_URL` (a fresh database is created on
//! it and dropped afterwards), else starts a throwaway cluster. It creates
//! `world` (10,000 rows) and `fortune` (12 rows) and runs each workload
//! (`db`, `queries`, `updates`, `fortunes`: see `bench/workload.rs`) at each
//! concurrency level for each contender:
//!
//! | contender | what runs `level` concurrent requests |
//! |---|---|
//! | `pgbench` | `pgbench -M prepared`, `level` clients (at most 256, and below `max_connections`), the same statements: the ceiling for one statement per round trip |
//! | `pgbench-pipe` | the same in pipeline mode, 10 statements per pipeline: the server's ceiling |
//! | `odm-raw` | odm's driver: `level` green tasks sharing `--connections` pipelined `Client`s, statements prepared once |
//! | `odm-raw-tls` | `odm-raw` over TLS (`sslmode=require`) to a TLS-enabled throwaway cluster with the same settings (or `DATABASE_URL`) |
//! | `odm-pool` | odm's `Pool` in shared mode (`pool.query_opt(..)`), `pool_size = --connections` |
//! | `odm-pool-nocache` | `odm-pool` with `statement_cache=false` (every statement parsed again): what PgBouncer before 1.21 requires, measured direct |
//! | `odm-pool-pgbouncer` | `odm-pool-nocache` through a PgBouncer (transaction mode, `--connections` server connections) in front of the throwaway cluster (not with `DATABASE_URL`) |
//! | `odm-orm` | odm's ORM as the README shows it: `World`/`Fortune` models, a `Mapper` (`pool_size = --orm-connections`), one `Session` per request (`get`, `query().all()`, the batched update through `session.execute`), committed |
//! | `odm-orm-commit-with` | `odm-orm` with the request's last write carrying the `COMMIT` behind it (`Session::commit_behind_next_write`): write and commit in one round trip |
//! | `odm-orm-autocommit` | `odm-orm` with each request in an autocommit session (`Mapper::autocommit`): the batched update commits on its own on a shared, pipelined connection instead of in a transaction on a connection of its own |
//! | `tokio-postgres` | `level` tokio tasks sharing 1, 2, 4 or 8 connections (each tried briefly; the best is measured) |
//! | `postgres-sync` | the sync `postgres` crate on `level` OS threads, a connection each up to 64, then a blocking pool of 64 |
//!
//! Each run of a cell (each of `--repeats`) starts on a settled server
//! (`VACUUM world` and `CHECKPOINT`, so the dead rows and dirty pages of
//! earlier `updates` runs slow no later run), warms up for `--warmup`
//! (longer, up to 3 s more, until every task has finished a request), then
//! measures `--duration`. Throughput
//! counts statements as they complete (db 1, queries 20, updates 20 reads +
//! 1 batched write, fortunes 1 per request). Client CPU is this process's
//! `getrusage` time over the window (pgbench's own, as a waited-for
//! child, for pgbench), per 1,000 statements. Latency is per request
//! (per pipelined transaction of 10 requests for `pgbench-pipe` on `db`
//! and `fortunes`). Ratios are to the best `pgbench-pipe` result of the
//! workload (the server's ceiling) and to `odm-orm` at the same level.
//! Results go to stdout (a Markdown table) and to `target/bench/`
//! (`bench.json`, `bench.md`, `throughput.svg`).
//!
//! `--scale [TASKS]` adds a run of 10,000 (or TASKS) green tasks on `db`
//! through one pool of `--scale-pool` (4) connections in shared mode, and
//! reports throughput, p99 and resident memory per task above the baseline
//! (VmRSS sampled while they run).
//!
//! `--bulk [ROWS]` adds `add` vs `add_all` vs `COPY` rows/s and `iter()` vs
//! `all()` rows/s and resident memory (`bench/src/bulk.rs`); `--no-matrix`
//! skips the table above, to run only `--scale` and `--bulk`.
//!
//! On the throwaway cluster the peers and pgbench log in as the md5 test
//! role (cheap handshakes: hundreds of SCRAM logins would eat the run);
//! logins happen outside the measured windows either way.

use odm_bench::{
    args, bulk, measure, odm_orm, odm_pool, odm_raw, on_green, peers, pgbench, report, scale,
    schema, workload,
};

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use green::GreenPool;
use odm::pg::{Client, Config, Host};
use odm::pool::PoolOptions;
use odm::testing::{
    find_server_bin_dir, shared_cluster, shared_tls_cluster, test_database, PgBouncer,
    TestDatabase, MD5_PASSWORD, MD5_USER, SUPERUSER, SUPERUSER_PASSWORD,
};
use odm::{Error, Pool};

use args::Args;
use measure::{time_boxed, Cell, Measurement, Probe};
use odm_orm::OrmMode;
use odm_pool::PoolExecutor;
use odm_raw::RawExecutor;
use peers::{SyncPeer, Target, TokioPeer};
use pgbench::Pgbench;
use report::{Report, RunInfo};
use workload::{request, Op, Reply, Rng, Workload, World};

/// The contender every other is compared with.
const REFERENCE: &str = "odm-orm";
/// The ceiling contender.
const CEILING: &str = "pgbench-pipe";

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message == "help" => {
            println!("{}", Args::USAGE);
            return;
        }
        Err(message) => {
            eprintln!("bench: {message}\n\n{}", Args::USAGE);
            std::process::exit(2);
        }
    };
    if let Err(err) = run(&args) {
        eprintln!("bench: {err}");
        std::process::exit(1);
    }
}

/// What the setup learnt about the server.
struct Server {
    max_connections: usize,
    version: String,
}

/// Creates the schema; lets the md5 role use it on the throwaway cluster.
fn prepare_server(green: &GreenPool, config: &Config, grant: bool) -> Result<Server, String> {
    let config = config.clone();
    on_green(green, move || {
        let client = Client::connect(&config)?;
        schema::create(|sql| client.batch_execute(sql))?;
        if grant {
            client.batch_execute(&format!(
                "GRANT SELECT, UPDATE ON world TO {MD5_USER}; GRANT SELECT ON fortune TO {MD5_USER}"
            ))?;
        }
        let max: String = client.query_one("SHOW max_connections", &[])?.try_get(0)?;
        let version: String = client.query_one("SHOW server_version", &[])?.try_get(0)?;
        client.close()?;
        Ok(Server {
            max_connections: max.trim().parse().unwrap_or(100),
            version,
        })
    })
}

/// Brings the tables back to the same state before each measured run:
/// `VACUUM world` removes the dead row versions that earlier `updates`
/// runs left (their index entries and HOT chains would otherwise slow the
/// next run's reads until pruned, and autovacuum would clean them up at a
/// random moment inside some later run), and `CHECKPOINT` writes their
/// dirty pages out now rather than during a measurement.
fn settle_server(green: &GreenPool, config: &Config) -> Result<(), String> {
    let config = config.clone();
    on_green(green, move || {
        let client = Client::connect(&config)?;
        client.batch_execute("VACUUM world")?;
        client.batch_execute("CHECKPOINT")?;
        Ok(client.close()?)
    })
}

/// Runs `cell.level` green tasks, each looping `one` (a whole request)
/// until the window ends.
fn drive_green<F, E>(
    green: &GreenPool,
    cell: &Cell,
    args: &Args,
    setup: String,
    one: F,
) -> Result<Measurement, String>
where
    F: Fn(usize, &mut Rng, &Probe) -> Result<u64, E> + Send + Sync + 'static,
    E: fmt::Display,
{
    let one = Arc::new(one);
    time_boxed(cell, args.warmup, args.duration, |probe| {
        let mut tasks = Vec::with_capacity(cell.level);
        for task in 0..cell.level {
            let probe = probe.clone();
            let one = Arc::clone(&one);
            let submitted = green
                .submit(move || {
                    let mut tally = probe.tally();
                    let mut rng = Rng::new(task as u64);
                    while probe.running() {
                        let started = Instant::now();
                        let outcome = one(task, &mut rng, &probe);
                        tally.record(started, outcome);
                    }
                })
                .map_err(|e| format!("cannot submit task {task}: {e}"))?;
            tasks.push(submitted);
        }
        for task in tasks {
            task.join().map_err(|e| format!("a task failed: {e}"))?;
        }
        Ok(setup)
    })
}

/// One contender prepared for one level (connections opened).
enum Prepared {
    Pgbench(bool),
    Raw(Arc<Vec<RawExecutor>>),
    Pool(PoolExecutor),
    /// The mapper, its pool size, how requests run.
    Orm(odm::Mapper, usize, OrmMode),
    Tokio(TokioPeer),
    Sync(SyncPeer),
}

struct Bench<'a> {
    args: &'a Args,
    green: GreenPool,
    config: Config,
    target: Target,
    pgbench: Pgbench,
    /// The TLS server of `odm-raw-tls`, prepared on first use.
    tls: OnceLock<Result<(Option<TestDatabase>, Config), String>>,
    /// The PgBouncer of `odm-pool-pgbouncer`, started on first use.
    bouncer: OnceLock<Result<PgBouncer, String>>,
}

impl Bench<'_> {
    /// The configuration of `odm-raw-tls`: `DATABASE_URL` with
    /// `sslmode=require`, or a database on a throwaway TLS cluster (same
    /// settings as the plain one) with the benchmark's tables.
    fn tls_config(&self) -> Result<Config, String> {
        let prepared = self.tls.get_or_init(|| {
            let throwaway = std::env::var("DATABASE_URL").map_or(true, |url| url.trim().is_empty());
            let (database, url) = if throwaway {
                let cluster = shared_tls_cluster().map_err(|e| e.to_string())?;
                let database = TestDatabase::create_on(cluster).map_err(|e| e.to_string())?;
                let url = database.url();
                (Some(database), url)
            } else {
                (None, self.config.to_url())
            };
            let separator = if url.contains('?') { '&' } else { '?' };
            let config = Config::parse(&format!("{url}{separator}sslmode=require"))
                .map_err(|e| e.to_string())?;
            if throwaway {
                prepare_server(&self.green, &config, true)?;
            }
            Ok((database, config))
        });
        match prepared {
            Ok((_, config)) => Ok(config.clone()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The configuration of `odm-pool-pgbouncer`: the benchmark's database
    /// through a PgBouncer in transaction mode in front of the throwaway
    /// cluster, `--connections` server connections, statement cache off.
    fn bouncer_config(&self) -> Result<Config, String> {
        let throwaway = std::env::var("DATABASE_URL").map_or(true, |url| url.trim().is_empty());
        if !throwaway {
            return Err("needs the throwaway cluster (unset DATABASE_URL)".into());
        }
        let bouncer = self.bouncer.get_or_init(|| {
            let cluster = shared_cluster().map_err(|e| e.to_string())?;
            PgBouncer::start(cluster, self.args.connections).map_err(|e| e.to_string())
        });
        let bouncer = bouncer.as_ref().map_err(Clone::clone)?;
        let url = bouncer.url_for(SUPERUSER, SUPERUSER_PASSWORD, self.config.dbname());
        Config::parse(&url).map_err(|e| e.to_string())
    }

    fn prepare(&self, contender: &str, level: usize) -> Result<Prepared, String> {
        let connections = self.args.connections.min(level).max(1);
        Ok(match contender {
            "pgbench" => Prepared::Pgbench(false),
            "pgbench-pipe" => Prepared::Pgbench(true),
            "odm-raw" | "odm-raw-tls" => {
                let config = if contender == "odm-raw" {
                    self.config.clone()
                } else {
                    self.tls_config()?
                };
                Prepared::Raw(Arc::new(on_green(&self.green, move || {
                    (0..connections)
                        .map(|_| RawExecutor::connect(&config))
                        .collect::<Result<Vec<_>, _>>()
                })?))
            }
            "odm-pool" | "odm-pool-nocache" | "odm-pool-pgbouncer" => {
                let config = match contender {
                    "odm-pool" => self.config.clone(),
                    "odm-pool-nocache" => {
                        let url = self.config.to_url();
                        let separator = if url.contains('?') { '&' } else { '?' };
                        Config::parse(&format!("{url}{separator}statement_cache=false"))
                            .map_err(|e| e.to_string())?
                    }
                    _ => self.bouncer_config()?,
                };
                let pool = Pool::with_options(config, PoolOptions::new().max_size(connections));
                Prepared::Pool(PoolExecutor::new(pool))
            }
            "odm-orm" | "odm-orm-commit-with" | "odm-orm-autocommit" | "odm-orm-batch" => {
                let size = self.args.orm_connections.min(level).max(1);
                Prepared::Orm(
                    odm_orm::mapper_capped(&self.config, size, self.args.orm_max_shared)
                        .map_err(|e| e.to_string())?,
                    size,
                    OrmMode::of(contender).ok_or("no ORM mode")?,
                )
            }
            TokioPeer::NAME => Prepared::Tokio(TokioPeer::connect(
                &self.target,
                *peers::TOKIO_CONNECTIONS.last().unwrap_or(&8),
            )?),
            SyncPeer::NAME => Prepared::Sync(SyncPeer::connect(&self.target, level)?),
            other => return Err(format!("unknown contender {other}")),
        })
    }

    fn measure(&self, prepared: &Prepared, cell: &Cell) -> Result<Measurement, String> {
        let args = self.args;
        let workload = cell.workload;
        match prepared {
            Prepared::Pgbench(pipeline) => self.pgbench.run(cell, *pipeline, args.duration),
            Prepared::Raw(executors) => {
                let executors = Arc::clone(executors);
                let connections = executors.len();
                let setup = format!("{connections} conn, {} tasks", cell.level);
                drive_green(&self.green, cell, args, setup, move |task, rng, probe| {
                    let executor = &executors[task % executors.len()];
                    request(workload, rng, &mut probe.counting(|op| executor.exec(op)))
                })
                .map(|m| Measurement {
                    connections: Some(connections),
                    ..m
                })
            }
            Prepared::Pool(executor) => {
                let executor = executor.clone();
                let setup = format!(
                    "pool_size {}, shared, {} tasks",
                    executor.pool().max_size(),
                    cell.level
                );
                let connections = executor.pool().max_size();
                drive_green(&self.green, cell, args, setup, move |_, rng, probe| {
                    request(workload, rng, &mut probe.counting(|op| executor.exec(op)))
                })
                .map(|m| Measurement {
                    connections: Some(connections),
                    ..m
                })
            }
            Prepared::Orm(mapper, size, mode) => {
                let mapper = mapper.clone();
                let mode = *mode;
                let kind = match mode {
                    OrmMode::Transaction => "",
                    OrmMode::CommitWith => "commit behind the write, ",
                    OrmMode::Autocommit => "autocommit ",
                    OrmMode::AtomicBatch => "autocommit + atomic batch ",
                };
                let max_shared = mapper
                    .engine(None)
                    .map_or(0, |engine| engine.pool().max_shared());
                let setup = format!(
                    "pool_size {size}, max_shared {max_shared}, {kind}session per request, {} tasks",
                    cell.level
                );
                drive_green(&self.green, cell, args, setup, move |_, rng, probe| {
                    odm_orm::request(&mapper, workload, rng, &|| probe.statement_done(), mode)
                })
                .map(|m| Measurement {
                    connections: Some(*size),
                    ..m
                })
            }
            Prepared::Tokio(peer) => {
                peer.run_best(cell, args.duration / 4, args.warmup, args.duration)
            }
            Prepared::Sync(peer) => peer.run(cell, args.warmup, args.duration),
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        match self {
            Prepared::Pool(executor) => executor.pool().close(),
            Prepared::Orm(mapper, _, _) => mapper.close(),
            _ => {}
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let throwaway = std::env::var("DATABASE_URL").map_or(true, |url| url.trim().is_empty());
    eprintln!(
        "bench: preparing the server ({})...",
        if throwaway {
            "throwaway cluster"
        } else {
            "DATABASE_URL"
        }
    );
    let max_level = args.levels.iter().copied().max().unwrap_or(1);
    let green = GreenPool::with_max_workers(max_level.max(args.scale.unwrap_or(0)) + 16);
    let database = test_database().map_err(|e| e.to_string())?;
    let config = Config::parse(&database.url()).map_err(|e| e.to_string())?;
    let server = prepare_server(&green, &config, throwaway)?;
    let (user, password) = if throwaway {
        (MD5_USER.to_owned(), Some(MD5_PASSWORD.to_owned()))
    } else {
        (
            config.user().to_owned(),
            config.password().map(String::from),
        )
    };
    let target = Target {
        host: match config.host() {
            Host::Tcp(host) => host.clone(),
            Host::Unix(dir) => dir.display().to_string(),
        },
        port: config.port(),
        user,
        password,
        dbname: config.dbname().to_owned(),
        max_connections: server.max_connections,
    };
    let scratch = std::env::temp_dir().join(format!("odm-bench-{}", std::process::id()));
    let bin_dir = find_server_bin_dir().map_err(|e| e.to_string())?;
    let bench = Bench {
        args,
        green: green.clone(),
        config: config.clone(),
        pgbench: Pgbench::new(bin_dir.join("pgbench"), scratch.clone(), target.clone())?,
        target,
        tls: OnceLock::new(),
        bouncer: OnceLock::new(),
    };
    let mut report = Report {
        info: RunInfo {
            command: command_line(),
            warmup: args.warmup,
            duration: args.duration,
            server_version: server.version.clone(),
            server: if throwaway {
                "throwaway TempCluster, fsync off".into()
            } else {
                "DATABASE_URL".into()
            },
        },
        rows: Vec::new(),
        failures: Vec::new(),
        ceiling_runs: Vec::new(),
        notes: Vec::new(),
        bulk: Vec::new(),
        ceiling: CEILING.into(),
        reference: REFERENCE.into(),
    };
    let contenders: &[String] = if args.no_matrix {
        &[]
    } else {
        &args.contenders
    };
    let total = contenders.len() * args.levels.len() * args.workloads.len();
    let mut position = 0;
    for contender in contenders {
        for &level in &args.levels {
            let prepared = match bench.prepare(contender, level) {
                Ok(prepared) => Some(prepared),
                Err(e) => {
                    eprintln!("bench: {contender} x{level}: {e}");
                    for &workload in &args.workloads {
                        report
                            .failures
                            .push((contender.clone(), workload, level, e.clone()));
                    }
                    position += args.workloads.len();
                    None
                }
            };
            let Some(prepared) = prepared else { continue };
            for &workload in &args.workloads {
                position += 1;
                let cell = Cell {
                    contender: contender.clone(),
                    workload,
                    level,
                    position: (position, total),
                };
                let runs: Result<Vec<Measurement>, String> = (0..args.repeats)
                    .map(|_| {
                        settle_server(&bench.green, &bench.config)?;
                        bench.measure(&prepared, &cell)
                    })
                    .collect();
                match runs.map(Measurement::median_of) {
                    Ok(Some(m)) => report.rows.push(m),
                    Ok(None) => {}
                    Err(e) => {
                        eprintln!("bench: {contender} {workload} x{level}: {e}");
                        report
                            .failures
                            .push((contender.clone(), workload, level, e));
                    }
                }
            }
        }
    }
    // The server's ceiling: pgbench-pipe with one client per core, where a
    // small server peaks, unless that is one of the levels anyway.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    if contenders.iter().any(|c| c == CEILING) && !args.levels.contains(&cores) {
        for &workload in &args.workloads {
            let cell = Cell {
                contender: CEILING.into(),
                workload,
                level: cores,
                position: (1, 1),
            };
            let run = settle_server(&bench.green, &bench.config)
                .and_then(|()| bench.pgbench.run(&cell, true, args.duration));
            match run {
                Ok(m) => report.ceiling_runs.push(m),
                Err(e) => report
                    .notes
                    .push(format!("{CEILING} {workload} x{cores}: {e}")),
            }
        }
    }
    if contenders.iter().any(|c| c.starts_with("odm-")) {
        match bookkeeping_cpu(&bench.green, args) {
            Ok(note) => report.notes.push(note),
            Err(e) => report
                .notes
                .push(format!("bookkeeping calibration failed: {e}")),
        }
    }
    if let Some(tasks) = args.scale {
        match scale_run(&bench, tasks) {
            Ok(note) => report.notes.push(note),
            Err(e) => report.notes.push(format!("scale run failed: {e}")),
        }
    }
    if let Some(rows) = args.bulk {
        match bulk::run(&green, &config, rows, args.bulk_stream_rows, args.repeats) {
            Ok(rows) => report.bulk = rows,
            Err(e) => report.notes.push(format!("bulk run failed: {e}")),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("\n{}\n\n{}", report.header(), report.table());
    let written = report.write(&report::output_dir())?;
    for path in written {
        eprintln!("bench: wrote {}", path.display());
    }
    eprintln!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    green.shutdown();
    drop(database);
    Ok(())
}

/// The bench's own share of the client CPU figure of a green contender:
/// the same cell machinery (`drive_green`: the probe's clock reads and
/// counters, the latency histogram, the workload's random ids) around an
/// executor that does no database work and only yields to the scheduler
/// once per statement, as a parked request would, at 256 tasks on `db`.
/// The CPU column (this process's CPU in the window, `RUSAGE_SELF`: the
/// driver, its reader coroutines, `may`'s scheduler and this bookkeeping;
/// never the server, a separate process) includes it.
fn bookkeeping_cpu(green: &GreenPool, args: &Args) -> Result<String, String> {
    let cell = Cell {
        contender: "bookkeeping".into(),
        workload: Workload::Db,
        level: 256,
        position: (1, 1),
    };
    let setup = "no-op executor".to_owned();
    let m = drive_green(green, &cell, args, setup, |_, rng, probe| {
        request(
            Workload::Db,
            rng,
            &mut probe.counting(|op| -> Result<Reply, Error> {
                may::coroutine::yield_now();
                Ok(match op {
                    Op::World(id) => Reply::World(Some(World {
                        id,
                        randomnumber: id,
                    })),
                    Op::Update(worlds) => Reply::Updated(worlds.len() as u64),
                    Op::Fortunes => Reply::Fortunes(Vec::new()),
                })
            }),
        )
    })?;
    Ok(format!(
        "bench bookkeeping (db, 256 green tasks, an executor that only yields): \
         {:.2} CPU ms per 1,000 statements — part of every odm contender's CPU \
         figure; the rest is the driver, its coroutines and the scheduler",
        m.cpu_ms_per_1k()
    ))
}

/// The command line, for the report.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        "cargo run --release --example bench".into()
    } else {
        format!("cargo run --release --example bench -- {}", args.join(" "))
    }
}

/// Scale mode: `tasks` green tasks on `db` through one pool of
/// `--scale-pool` connections in shared mode; reports throughput, p99 and
/// resident memory per task above the baseline.
fn scale_run(bench: &Bench<'_>, tasks: usize) -> Result<String, String> {
    let args = bench.args;
    let pool_size = args.scale_pool;
    let executor = PoolExecutor::new(Pool::with_options(
        bench.config.clone(),
        PoolOptions::new().max_size(pool_size),
    ));
    // Open the pool's connections and start the workers' runtime first, so
    // that the baseline holds everything but the tasks.
    {
        let executor = executor.clone();
        on_green(&bench.green, move || {
            let mut rng = Rng::new(0);
            request(Workload::Db, &mut rng, &mut |op| executor.exec(op))
                .map_err(|e| Error::Protocol(e.to_string()))
        })?;
    }
    let sampler = scale::RssSampler::start(Duration::from_millis(20))?;
    let cell = Cell {
        contender: format!("odm-pool scale (pool_size={pool_size})"),
        workload: Workload::Db,
        level: tasks,
        position: (1, 1),
    };
    let duration = args.duration.max(Duration::from_secs(2));
    let warmup = args.warmup.max(Duration::from_millis(500));
    let shared = executor.clone();
    let measured = time_boxed(&cell, warmup, duration, |probe| {
        let mut handles = Vec::with_capacity(tasks);
        for task in 0..tasks {
            let probe = probe.clone();
            let executor = shared.clone();
            handles.push(
                bench
                    .green
                    .submit(move || {
                        let mut rng = Rng::new(task as u64);
                        while probe.running() {
                            let started = Instant::now();
                            let outcome = request(
                                Workload::Db,
                                &mut rng,
                                &mut probe.counting(|op| executor.exec(op)),
                            );
                            probe.record_shared(started, outcome);
                        }
                    })
                    .map_err(|e| format!("cannot submit task {task}: {e}"))?,
            );
        }
        // Every task exists now: sample at once, besides the sampler's beat.
        sampler.sample();
        for handle in handles {
            handle.join().map_err(|e| format!("a task failed: {e}"))?;
        }
        Ok(format!("{tasks} tasks, pool_size {pool_size}"))
    })?;
    let footprint = sampler.finish(tasks);
    executor.pool().close();
    Ok(format!(
        "scale: {tasks} green tasks on `db` through pool_size={pool_size} (shared mode): \
         {:.0} queries/s, p50 {} ms, p99 {} ms, {} errors; {footprint} (goal <= 40 KiB)",
        measured.qps(),
        measure::ms(measured.p50()),
        measure::ms(measured.p99()),
        measured.errors,
    ))
}
