//! Point-select throughput of odm beside `pgbench`, against one server, in
//! one run.
//!
//! ```text
//! cargo run --release --example bench
//! cargo run --release --example bench -- --duration 5 --levels 1,16,256,1024 --connections 2
//! ```
//!
//! Uses the server named by `DATABASE_URL` (a fresh database is created on it
//! and dropped afterwards), else starts a throwaway cluster. It creates
//! `world` (10,000 rows of `id`, `randomnumber`) and runs TechEmpower's `db`
//! query, `SELECT id, randomnumber FROM world WHERE id = $1` with a random id,
//! at each concurrency level, for each contender:
//!
//! - `pgbench`: `pgbench -M prepared` with a script running the same
//!   statement (`\set id random(1, 10000)`), `-c` clients (capped below the
//!   server's `max_connections`) on `-j 2` threads: the server's ceiling for
//!   one-statement-per-round-trip clients. Its `-T` run is extended by the
//!   time it takes to open its connections (learnt from its warm-up run),
//!   and its tps excludes that time. On the throwaway cluster it logs in as
//!   the md5 test role, whose handshake is far cheaper than SCRAM's (outside
//!   the measured window either way, but hundreds of SCRAM handshakes would
//!   otherwise eat the whole run).
//! - `pgbench-pipe`: the same in pipeline mode, 10 statements per pipeline:
//!   the server's ceiling for pipelining clients.
//! - `odm-raw`: odm's driver, `level` green tasks sharing `--connections`
//!   [`Client`]s (each task on client `task % connections`), prepared
//!   statement, requests of concurrent tasks pipelined on each connection.
//! - `odm-pool`: the same through [`Pool::query_one`] (shared mode, statement
//!   cache), `pool_size = --connections`.
//!
//! Each cell runs `--warmup` seconds unmeasured, then `--duration` seconds
//! measured. Client CPU is this process's user+system time over the measured
//! window (from `/proc/self/stat`, which is what `getrusage` reports), for
//! pgbench its own (the waited-for child's) time; both per 1,000 queries.
//! Latency percentiles are per query for odm; pgbench reports only its mean.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use green::GreenPool;
use odm::pg::{Client, Config, Host, Statement};
use odm::testing::{find_server_bin_dir, test_database, TestDatabase, MD5_PASSWORD, MD5_USER};
use odm::{Error, Pool};

const WORLD_ROWS: i32 = 10_000;
const DB_QUERY: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
/// Statements per pipeline in `pgbench-pipe`.
const PIPELINE_DEPTH: usize = 10;

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

/// Command-line flags.
#[derive(Debug, Clone)]
struct Args {
    duration: Duration,
    warmup: Duration,
    levels: Vec<usize>,
    connections: usize,
    contenders: Vec<String>,
}

impl Args {
    const USAGE: &'static str = "usage: bench [--duration SECS] [--warmup SECS] \
[--levels 1,16,256,1024] [--connections N] [--contenders pgbench,pgbench-pipe,odm-raw,odm-pool]";

    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            levels: vec![1, 16, 256, 1024],
            connections: 2,
            contenders: ["pgbench", "pgbench-pipe", "odm-raw", "odm-pool"]
                .map(String::from)
                .to_vec(),
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--duration" => parsed.duration = seconds(&flag, &value()?)?,
                "--warmup" => parsed.warmup = seconds(&flag, &value()?)?,
                "--levels" => {
                    parsed.levels = value()?
                        .split(',')
                        .map(|level| match level.trim().parse::<usize>() {
                            Ok(n) if n > 0 => Ok(n),
                            _ => Err(format!("--levels: `{level}` is not a positive integer")),
                        })
                        .collect::<Result<_, _>>()?
                }
                "--connections" => {
                    parsed.connections = match value()?.parse::<usize>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err("--connections: expected a positive integer".into()),
                    }
                }
                "--contenders" => {
                    parsed.contenders = value()?.split(',').map(|c| c.trim().to_string()).collect();
                    for name in &parsed.contenders {
                        if !["pgbench", "pgbench-pipe", "odm-raw", "odm-pool"].contains(&&**name) {
                            return Err(format!("--contenders: unknown contender `{name}`"));
                        }
                    }
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown flag `{other}`")),
            }
        }
        Ok(parsed)
    }
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{flag}: `{value}` is not a positive number of seconds"
        )),
    }
}

/// What one contender achieved at one level.
#[derive(Debug, Clone, Default)]
struct Measurement {
    queries: u64,
    errors: u64,
    elapsed: Duration,
    client_cpu: Duration,
    /// Per-query latencies in microseconds, sorted (odm contenders).
    latencies: Vec<u32>,
    /// Mean latency when only that is known (pgbench).
    mean_latency: Option<Duration>,
    /// How the contender ran (connections, clients).
    setup: String,
}

impl Measurement {
    fn qps(&self) -> f64 {
        self.queries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn cpu_ms_per_1k(&self) -> f64 {
        if self.queries == 0 {
            return f64::NAN;
        }
        self.client_cpu.as_secs_f64() * 1e3 * 1e3 / self.queries as f64
    }

    fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.latencies.is_empty() {
            return None;
        }
        let index = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        Some(f64::from(self.latencies[index]) / 1e3)
    }
}

/// The server under test and the database holding `world`.
struct Server {
    _database: TestDatabase,
    config: Config,
    bin_dir: PathBuf,
    max_connections: usize,
    /// Role and password pgbench logs in with: on the throwaway cluster the
    /// md5 role (its handshake is far cheaper than SCRAM's, which matters
    /// when pgbench opens hundreds of connections; it is outside the
    /// measured window either way), else the URL's.
    pgbench_user: (String, Option<String>),
}

fn run(args: &Args) -> Result<(), String> {
    eprintln!("bench: preparing the server (DATABASE_URL or a throwaway cluster)...");
    let green = GreenPool::with_max_workers(args.levels.iter().copied().max().unwrap_or(1) + 16);
    let database = test_database().map_err(|e| e.to_string())?;
    let config = Config::parse(&database.url()).map_err(|e| e.to_string())?;
    let setup_config = config.clone();
    let throwaway = std::env::var("DATABASE_URL").map_or(true, |url| url.trim().is_empty());
    let max_connections = green
        .submit(move || create_world(&setup_config, throwaway))
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot create `world`: {e}"))?;
    let server = Server {
        _database: database,
        config: config.clone(),
        bin_dir: find_server_bin_dir().map_err(|e| e.to_string())?,
        max_connections,
        pgbench_user: if throwaway {
            (MD5_USER.to_string(), Some(MD5_PASSWORD.to_string()))
        } else {
            (
                config.user().to_string(),
                config.password().map(String::from),
            )
        },
    };
    let scratch = std::env::temp_dir().join(format!("odm-bench-{}", std::process::id()));
    fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let scripts = Scripts::write(&scratch).map_err(|e| e.to_string())?;

    let mut rows: Vec<(usize, String, Result<Measurement, String>)> = Vec::new();
    for &level in &args.levels {
        for name in &args.contenders {
            eprintln!(
                "bench: {name} at {level} concurrent tasks ({:.0} s warm-up + {:.0} s)...",
                args.warmup.as_secs_f64(),
                args.duration.as_secs_f64()
            );
            let result = match name.as_str() {
                "pgbench" => pgbench(&server, &scripts.plain, 1, level, args),
                "pgbench-pipe" => pgbench(&server, &scripts.pipelined, PIPELINE_DEPTH, level, args),
                "odm-raw" => odm_raw(&green, &server, level, args),
                "odm-pool" => odm_pool(&green, &server, level, args),
                other => Err(format!("unknown contender {other}")),
            };
            if let Err(message) = &result {
                eprintln!("bench: {name} at {level}: {message}");
            }
            rows.push((level, name.clone(), result));
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    print!("{}", table(&rows, args));
    green.shutdown();
    Ok(())
}

/// Creates and fills `world` (readable by the md5 test role on the
/// throwaway cluster); returns the server's `max_connections`.
fn create_world(config: &Config, throwaway: bool) -> Result<usize, Error> {
    let client = Client::connect(config)?;
    client.batch_execute(
        "DROP TABLE IF EXISTS world;
         CREATE TABLE world (id int4 PRIMARY KEY, randomnumber int4 NOT NULL);",
    )?;
    client.execute(
        "INSERT INTO world SELECT g, 1 + floor(random() * 10000)::int4 \
         FROM generate_series(1, $1::int4) g",
        &[&WORLD_ROWS],
    )?;
    client.batch_execute("VACUUM ANALYZE world")?;
    if throwaway {
        client.batch_execute(&format!("GRANT SELECT ON world TO {MD5_USER}"))?;
    }
    let max: String = client.query_one("SHOW max_connections", &[])?.get(0);
    max.parse::<usize>()
        .map_err(|_| Error::Protocol(format!("max_connections is `{max}`")))
}

/// pgbench script files.
struct Scripts {
    plain: PathBuf,
    pipelined: PathBuf,
}

impl Scripts {
    fn write(dir: &Path) -> Result<Scripts, Error> {
        let select = "SELECT id, randomnumber FROM world WHERE id = :id";
        let plain = dir.join("db.sql");
        fs::write(
            &plain,
            format!("\\set id random(1, {WORLD_ROWS})\n{select};\n"),
        )
        .map_err(Error::Io)?;
        let mut text = String::new();
        for i in 0..PIPELINE_DEPTH {
            let _ = writeln!(text, "\\set id{i} random(1, {WORLD_ROWS})");
        }
        text.push_str("\\startpipeline\n");
        for i in 0..PIPELINE_DEPTH {
            let _ = writeln!(
                text,
                "SELECT id, randomnumber FROM world WHERE id = :id{i};"
            );
        }
        text.push_str("\\endpipeline\n");
        let pipelined = dir.join("db-pipeline.sql");
        fs::write(&pipelined, text).map_err(Error::Io)?;
        Ok(Scripts { plain, pipelined })
    }
}

/// CPU time (user + system) of this process, and of its waited-for
/// children, from `/proc/self/stat` (the numbers `getrusage` reports).
fn cpu_times() -> Result<(Duration, Duration), String> {
    let stat =
        fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    let after_name = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("/proc/self/stat: no command name")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14..17 of proc(5), counted from `state` (field 3) here.
    let tick = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or(format!("/proc/self/stat: field {} unreadable", i + 3))
    };
    // USER_HZ is 100 on every Linux ABI.
    let to_time = |ticks: u64| Duration::from_millis(ticks * 10);
    Ok((
        to_time(tick(11)? + tick(12)?),
        to_time(tick(13)? + tick(14)?),
    ))
}

fn pgbench(
    server: &Server,
    script: &Path,
    per_transaction: usize,
    level: usize,
    args: &Args,
) -> Result<Measurement, String> {
    // Every pgbench client is a server connection; keep a margin for the
    // rest of the run.
    let clients = level.min(server.max_connections.saturating_sub(40).max(1));
    let threads = clients.min(2);
    let config = &server.config;
    let host = match config.host() {
        Host::Tcp(host) => host.clone(),
        Host::Unix(dir) => dir.display().to_string(),
    };
    let run = |seconds: Duration, warm_up: bool| -> Result<(String, Duration), String> {
        let before = cpu_times()?.1;
        let mut command = Command::new(server.bin_dir.join("pgbench"));
        command
            .args(["-n", "-M", "prepared", "-f"])
            .arg(script)
            .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
            .args(["-T", &seconds.as_secs_f64().ceil().max(1.0).to_string()])
            .args(["-h", &host, "-p", &config.port().to_string()])
            .args(["-U", &server.pgbench_user.0, config.dbname()]);
        if let Some(password) = &server.pgbench_user.1 {
            command.env("PGPASSWORD", password);
        }
        let output = command
            .output()
            .map_err(|e| format!("cannot run pgbench: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let processed = report_value(&stdout, "number of transactions actually processed: ");
        if !output.status.success() || (!warm_up && !matches!(processed, Some(n) if n > 0.0)) {
            return Err(format!(
                "pgbench failed: {}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok((stdout, cpu_times()?.1 - before))
    };
    // pgbench's -T clock includes opening its connections, while its tps
    // excludes that time: learn how long opening takes from the warm-up run
    // (given a generous allowance for it) and extend the measured run by as
    // much, so that it measures `duration` of querying.
    let allowance = Duration::from_millis(40) * clients as u32;
    let (warm, _) = run(args.warmup + allowance, true)?;
    let connecting = report_value(&warm, "initial connection time = ")
        .map_or(allowance, |ms| Duration::from_secs_f64(ms / 1e3));
    let (report, cpu) = run(args.duration + connecting.mul_f64(1.5), false)?;
    let tps = report_value(&report, "tps = ")
        .ok_or_else(|| format!("no tps in pgbench output: {report}"))?;
    let transactions = report_value(&report, "number of transactions actually processed: ")
        .ok_or_else(|| format!("no transaction count in pgbench output: {report}"))?;
    let failed = report_value(&report, "number of failed transactions: ").unwrap_or(0.0);
    let latency_ms = report_value(&report, "latency average = ");
    let queries = (transactions as u64) * per_transaction as u64;
    Ok(Measurement {
        queries,
        errors: failed as u64 * per_transaction as u64,
        elapsed: Duration::from_secs_f64(transactions / tps.max(1e-9)),
        client_cpu: cpu,
        latencies: Vec::new(),
        mean_latency: latency_ms
            .map(|ms| Duration::from_secs_f64(ms / 1e3 / per_transaction as f64)),
        setup: format!("-c {clients} -j {threads}"),
    })
}

/// The number after `prefix` on its line of pgbench's report.
fn report_value(report: &str, prefix: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.starts_with(prefix))?;
    let rest = &line[prefix.len()..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().ok()
}

/// A small, fast random number generator per task (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A world id, 1..=10,000.
    fn world_id(&mut self) -> i32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        1 + (r >> 33) as i32 % WORLD_ROWS
    }
}

/// Phases every task of a cell follows.
struct Phase {
    measuring: AtomicBool,
    stop: AtomicBool,
    queries: AtomicU64,
    errors: AtomicU64,
}

/// Runs `level` green tasks calling `one_query(task, rng)` in a loop, warms
/// up, then measures for `args.duration`.
fn drive<F>(
    green: &GreenPool,
    level: usize,
    args: &Args,
    one_query: F,
) -> Result<Measurement, String>
where
    F: Fn(usize, &mut Rng) -> Result<(), Error> + Send + Sync + 'static,
{
    let phase = Arc::new(Phase {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        queries: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let one_query = Arc::new(one_query);
    let mut tasks = Vec::with_capacity(level);
    for task in 0..level {
        let (phase, one_query) = (Arc::clone(&phase), Arc::clone(&one_query));
        let submitted = green
            .submit(move || {
                let mut rng = Rng::new(task as u64 + 1);
                let mut latencies = Vec::new();
                let mut first_error = None;
                while !phase.stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = one_query(task, &mut rng);
                    if phase.measuring.load(Ordering::Relaxed) {
                        match result {
                            Ok(()) => {
                                let micros = started.elapsed().as_micros();
                                latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                                phase.queries.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => {
                                phase.errors.fetch_add(1, Ordering::Relaxed);
                                first_error.get_or_insert(err.to_string());
                            }
                        }
                    } else if let Err(err) = result {
                        first_error.get_or_insert(err.to_string());
                        may::coroutine::sleep(Duration::from_millis(10));
                    }
                }
                (latencies, first_error)
            })
            .map_err(|e| e.to_string())?;
        tasks.push(submitted);
    }
    thread::sleep(args.warmup);
    let (cpu_before, _) = cpu_times()?;
    let started = Instant::now();
    phase.measuring.store(true, Ordering::Relaxed);
    thread::sleep(args.duration);
    phase.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let (cpu_after, _) = cpu_times()?;
    let queries = phase.queries.load(Ordering::Relaxed);
    phase.stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut first_error = None;
    for task in tasks {
        let (mut own, error) = task.join().map_err(|e| e.to_string())?;
        latencies.append(&mut own);
        if first_error.is_none() {
            first_error = error;
        }
    }
    if let Some(error) = &first_error {
        eprintln!("bench: first error: {error}");
    }
    latencies.sort_unstable();
    Ok(Measurement {
        queries,
        errors: phase.errors.load(Ordering::Relaxed),
        elapsed,
        client_cpu: cpu_after.saturating_sub(cpu_before),
        latencies,
        mean_latency: None,
        setup: String::new(),
    })
}

/// The raw driver: `level` tasks over `connections` shared clients.
fn odm_raw(
    green: &GreenPool,
    server: &Server,
    level: usize,
    args: &Args,
) -> Result<Measurement, String> {
    let connections = args.connections.min(level);
    let config = server.config.clone();
    let clients = green
        .submit(move || {
            (0..connections)
                .map(|_| {
                    let client = Client::connect(&config)?;
                    let statement = client.prepare(DB_QUERY)?;
                    Ok((client, statement))
                })
                .collect::<Result<Vec<(Client, Statement)>, Error>>()
        })
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let clients = Arc::new(clients);
    let shared = Arc::clone(&clients);
    let mut measured = drive(green, level, args, move |task, rng| {
        let (client, statement) = &shared[task % shared.len()];
        let id = rng.world_id();
        let rows = client.query_statement(statement, &[&id])?;
        let row = rows.first().ok_or(Error::RowCount(0))?;
        let (found, _random): (i32, i32) = (row.try_get(0)?, row.try_get(1)?);
        if found == id {
            Ok(())
        } else {
            Err(Error::Protocol(format!(
                "asked for world {id}, got {found}"
            )))
        }
    })?;
    measured.setup = format!("{connections} conn");
    Ok(measured)
}

/// Pool shared mode: `level` tasks calling `Pool::query_one`.
fn odm_pool(
    green: &GreenPool,
    server: &Server,
    level: usize,
    args: &Args,
) -> Result<Measurement, String> {
    let size = args.connections.min(level);
    let url = format!(
        "{}{}pool_size={size}",
        server.config.to_url(),
        if server.config.to_url().contains('?') {
            '&'
        } else {
            '?'
        }
    );
    let pool = Pool::new(Config::parse(&url).map_err(|e| e.to_string())?);
    let shared = pool.clone();
    let mut measured = drive(green, level, args, move |_task, rng| {
        let id = rng.world_id();
        let row = shared.query_one(DB_QUERY, &[&id])?;
        let (found, _random): (i32, i32) = (row.try_get(0)?, row.try_get(1)?);
        if found == id {
            Ok(())
        } else {
            Err(Error::Protocol(format!(
                "asked for world {id}, got {found}"
            )))
        }
    })?;
    measured.setup = format!("pool {size}");
    let stats = pool.stats();
    pool.close();
    if stats.waits > 0 {
        eprintln!(
            "bench: odm-pool waits: {} (max {:?})",
            stats.waits, stats.max_wait
        );
    }
    Ok(measured)
}

/// The result table: each contender's ratio to `pgbench` at the same
/// level, and to the best `pgbench` and `pgbench-pipe` result of the run
/// (the server's ceiling whatever the client count).
fn table(rows: &[(usize, String, Result<Measurement, String>)], args: &Args) -> String {
    let best = |which: &str| {
        rows.iter()
            .filter(|(_, n, _)| n == which)
            .filter_map(|(l, _, r)| r.as_ref().ok().map(|m| (m.qps(), *l)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n`db` point select ({DB_QUERY}), {:.0} s per cell after {:.0} s warm-up, {} cores\n",
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        out,
        "| tasks | contender | setup | queries/s | × pgbench same tasks | × best pgbench | × best pgbench-pipe | client CPU ms/1k q | p50 ms | p99 ms | errors |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (level, name, result) in rows {
        let same_level = rows
            .iter()
            .find(|(l, n, _)| l == level && n == "pgbench")
            .and_then(|(_, _, r)| r.as_ref().ok())
            .map(Measurement::qps);
        let m = match result {
            Ok(m) => m,
            Err(message) => {
                let message = message.replace('\n', " ");
                let _ = writeln!(
                    out,
                    "| {level} | {name} | failed: {message} | | | | | | | | |"
                );
                continue;
            }
        };
        let ratio =
            |base: Option<f64>| base.map_or("-".to_string(), |b| format!("{:.2}", m.qps() / b));
        let (p50, p99) = match (m.percentile_ms(0.50), m.percentile_ms(0.99), m.mean_latency) {
            (Some(p50), Some(p99), _) => (format!("{p50:.2}"), format!("{p99:.2}")),
            (_, _, Some(mean)) => (
                format!("{:.2} (mean)", mean.as_secs_f64() * 1e3),
                "-".into(),
            ),
            _ => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {level} | {name} | {} | {:.0} | {} | {} | {} | {:.2} | {p50} | {p99} | {} |",
            m.setup,
            m.qps(),
            ratio(same_level),
            ratio(best("pgbench").map(|b| b.0)),
            ratio(best("pgbench-pipe").map(|b| b.0)),
            m.cpu_ms_per_1k(),
            m.errors
        );
    }
    for which in ["pgbench", "pgbench-pipe"] {
        if let Some((qps, level)) = best(which) {
            let _ = writeln!(out, "\nbest {which}: {qps:.0} queries/s at {level} clients");
        }
    }
    out
}
