//! The contenders that do not use odm: what a user would pick instead, and
//! the server's own ceiling.
//!
//! - [`Pgbench`]: `pgbench -M prepared` running the workload's statements
//!   from a script, plain (one statement per round trip) and in pipeline
//!   mode (`\startpipeline` .. `\endpipeline`, 10 statements per pipeline).
//!   Its transactions per second become requests and statements per second;
//!   its latencies come from a sampled transaction log; its CPU time is
//!   `getrusage(RUSAGE_CHILDREN)` around the run.
//! - [`TokioPeer`]: `tokio-postgres` on a multi-threaded runtime (one worker
//!   per core), `level` tasks sharing 1, 2, 4 or 8 connections; the best of
//!   those is reported.
//! - [`SyncPeer`]: the blocking `postgres` crate on `level` OS threads, one
//!   connection per thread up to 64, then a shared pool of 64 connections
//!   behind a simple blocking queue (mutex + condition variable).
//!
//! All of them run the same statements as odm: [`SELECT_WORLD`],
//! [`SELECT_FORTUNES`] and the batched [`update_sql`] of 20 rows.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::measure::{
    cpu_time, time_boxed, time_boxed_with, Cell, Histogram, Measurement, Probe,
    MAX_WARMUP_EXTENSION,
};
use super::workload::{
    request, request_async, update_params, update_sql, Fortune, Op, Reply, Rng, Workload, World,
    ROWS_PER_REQUEST, SELECT_FORTUNES, SELECT_WORLD, WORLD_ROWS,
};

/// Statements per pipeline in pgbench's pipeline mode.
pub const PIPELINE_DEPTH: usize = 10;
/// Connections of the sync crate beyond which threads share a pool.
pub const SYNC_MAX_CONNECTIONS: usize = 64;
/// Connection counts tokio-postgres tries; the best is reported.
pub const TOKIO_CONNECTIONS: [usize; 4] = [1, 2, 4, 8];
/// Server connections left free for the rest of the run when pgbench
/// opens one per client.
const CONNECTION_RESERVE: usize = 40;
/// Fraction of pgbench transactions logged for latency percentiles.
const PGBENCH_SAMPLING: f64 = 0.05;
/// A first guess of how long pgbench takes to open one connection per
/// thread (md5 or trust authentication), before it has reported its own.
const PGBENCH_CONNECT_GUESS: Duration = Duration::from_millis(5);
/// Most pgbench clients: more only thrash a small server's processes, and
/// opening hundreds more connections would eat the run.
const PGBENCH_MAX_CLIENTS: usize = 256;
/// OS thread stack for the sync crate's threads.
const SYNC_THREAD_STACK: usize = 256 * 1024;

/// The server every contender talks to, in plain connection parameters.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address, or a unix socket directory (starting with `/`).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Role.
    pub user: String,
    /// Its password, if the server asks for one.
    pub password: Option<String>,
    /// Database holding `world` and `fortune`.
    pub dbname: String,
    /// The server's `max_connections`.
    pub max_connections: usize,
}

impl Target {
    /// Most connections a contender may open at once.
    pub fn connection_budget(&self) -> usize {
        self.max_connections
            .saturating_sub(CONNECTION_RESERVE)
            .max(1)
    }

    fn tokio_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("odm-bench-peer");
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }
}

// ---------------------------------------------------------------- pgbench

/// `pgbench` as a contender.
#[derive(Debug)]
pub struct Pgbench {
    program: PathBuf,
    scratch: PathBuf,
    target: Target,
    /// Connection time pgbench reported, by client count: its `-T` clock
    /// includes opening the connections while its tps excludes it, so the
    /// run is extended by as much to measure `duration` of querying.
    connect_times: Mutex<HashMap<usize, Duration>>,
    /// Runs already made, by workload, mode and client count: a level
    /// above the client cap reuses the run at the cap.
    runs: Mutex<HashMap<(Workload, bool, usize), Measurement>>,
}

/// One pgbench script and what one of its transactions amounts to.
struct Script {
    text: String,
    requests: u64,
    queries: u64,
}

impl Pgbench {
    /// `program` is the pgbench binary; scripts and logs go to `scratch`
    /// (created if missing).
    pub fn new(program: PathBuf, scratch: PathBuf, target: Target) -> Result<Pgbench, String> {
        fs::create_dir_all(&scratch)
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        Ok(Pgbench {
            program,
            scratch,
            target,
            connect_times: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
        })
    }

    fn script(workload: Workload, pipeline: bool) -> Script {
        let mut text = String::new();
        let select = |text: &mut String, var: &str| {
            let _ = writeln!(
                text,
                "SELECT id, randomnumber FROM world WHERE id = :{var};"
            );
        };
        // `updates` reads and writes 20 distinct rows in id order (one id
        // from each of 20 equal slices of the table), so that concurrent
        // batches cannot deadlock; the others draw ids uniformly.
        let slice = WORLD_ROWS / ROWS_PER_REQUEST as i32;
        let set_ids = |text: &mut String, n: usize, sorted: bool| {
            for i in 0..n {
                if sorted {
                    let low = i as i32 * slice + 1;
                    let _ = writeln!(text, "\\set id{i} random({low}, {})", low + slice - 1);
                } else {
                    let _ = writeln!(text, "\\set id{i} random(1, {WORLD_ROWS})");
                }
            }
        };
        let selects = |text: &mut String, n: usize| {
            let chunk = if pipeline { PIPELINE_DEPTH } else { n };
            for start in (0..n).step_by(chunk) {
                if pipeline {
                    text.push_str("\\startpipeline\n");
                }
                for i in start..(start + chunk).min(n) {
                    select(text, &format!("id{i}"));
                }
                if pipeline {
                    text.push_str("\\endpipeline\n");
                }
            }
        };
        let per_tx_requests = if pipeline { PIPELINE_DEPTH } else { 1 };
        match workload {
            Workload::Db => {
                set_ids(&mut text, per_tx_requests, false);
                selects(&mut text, per_tx_requests);
            }
            Workload::Queries => {
                set_ids(&mut text, ROWS_PER_REQUEST, false);
                selects(&mut text, ROWS_PER_REQUEST);
            }
            Workload::Updates => {
                set_ids(&mut text, ROWS_PER_REQUEST, true);
                for i in 0..ROWS_PER_REQUEST {
                    let _ = writeln!(text, "\\set r{i} random(1, {WORLD_ROWS})");
                }
                selects(&mut text, ROWS_PER_REQUEST);
                let mut update = update_sql(ROWS_PER_REQUEST);
                for i in (0..ROWS_PER_REQUEST).rev() {
                    update = update
                        .replace(&format!("${}:", 2 * i + 2), &format!(":r{i}:"))
                        .replace(&format!("${}:", 2 * i + 1), &format!(":id{i}:"));
                }
                let _ = writeln!(text, "{update};");
            }
            Workload::Fortunes => {
                let chunk = per_tx_requests;
                if pipeline {
                    text.push_str("\\startpipeline\n");
                }
                for _ in 0..chunk {
                    let _ = writeln!(text, "{SELECT_FORTUNES};");
                }
                if pipeline {
                    text.push_str("\\endpipeline\n");
                }
            }
        }
        let requests = match workload {
            Workload::Db | Workload::Fortunes => per_tx_requests as u64,
            Workload::Queries | Workload::Updates => 1,
        };
        Script {
            text,
            requests,
            queries: requests * workload.queries_per_request(),
        }
    }

    /// Runs pgbench for `duration` (whole seconds, at least one) with
    /// `level` clients (capped by the server's connection budget).
    ///
    /// When opening the connections took the whole run (no transaction
    /// processed), it runs once more with a generous allowance for them.
    pub fn run(
        &self,
        cell: &Cell,
        pipeline: bool,
        duration: Duration,
    ) -> Result<Measurement, String> {
        let clients = cell
            .level
            .min(self.target.connection_budget())
            .min(PGBENCH_MAX_CLIENTS);
        let key = (cell.workload, pipeline, clients);
        if let Some(earlier) = self
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            let mut reused = earlier.clone();
            reused.setup = format!(
                "{} (the x{} run: clients capped)",
                reused.setup, reused.level
            );
            reused.level = cell.level;
            reused.contender = cell.contender.clone();
            return Ok(reused);
        }
        let cores = thread::available_parallelism().map_or(2, |n| n.get());
        let threads = clients.min(cores);
        let guess = self
            .connect_times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&clients)
            .copied()
            .unwrap_or(PGBENCH_CONNECT_GUESS * clients.div_ceil(threads) as u32);
        let first_try = Instant::now();
        let measured = match self.run_once(cell, pipeline, duration, clients, threads, guess)? {
            Some(measured) => measured,
            None => {
                // Connecting took the whole run: allow at least as long again.
                let allowance = first_try.elapsed();
                self.run_once(cell, pipeline, duration, clients, threads, allowance)?
                    .ok_or_else(|| {
                        format!(
                            "pgbench processed no transaction in {:.1} s with {clients} clients",
                            (duration + allowance.mul_f64(1.5)).as_secs_f64()
                        )
                    })?
            }
        };
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, measured.clone());
        Ok(measured)
    }

    /// One pgbench run; `None` when it processed no transaction.
    fn run_once(
        &self,
        cell: &Cell,
        pipeline: bool,
        duration: Duration,
        clients: usize,
        threads: usize,
        connecting: Duration,
    ) -> Result<Option<Measurement>, String> {
        let script = Pgbench::script(cell.workload, pipeline);
        let tag = format!(
            "{}-{}-{}",
            cell.workload,
            if pipeline { "pipe" } else { "plain" },
            cell.level
        );
        let script_path = self.scratch.join(format!("{tag}.sql"));
        fs::write(&script_path, &script.text)
            .map_err(|e| format!("cannot write {}: {e}", script_path.display()))?;
        let log_prefix = self.scratch.join(format!("log-{tag}"));
        remove_logs(&self.scratch, &log_prefix);
        let seconds = (duration + connecting.mul_f64(1.5))
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64;

        let mut command = Command::new(&self.program);
        command
            .args(["-n", "-M", "prepared", "--max-tries=5", "-f"])
            .arg(&script_path)
            .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
            .args(["-T", &seconds.to_string()])
            .arg("-l")
            .arg(format!("--sampling-rate={PGBENCH_SAMPLING}"))
            .arg(format!("--log-prefix={}", log_prefix.display()))
            .args(["-h", &self.target.host, "-p", &self.target.port.to_string()])
            .args(["-U", &self.target.user, &self.target.dbname])
            .current_dir(&self.scratch)
            .env_remove("PGSERVICE");
        match &self.target.password {
            Some(password) => command.env("PGPASSWORD", password),
            None => command.env_remove("PGPASSWORD"),
        };
        eprint!(
            "\r\x1b[2K[{}/{}] {} {} x{} running {seconds}s",
            cell.position.0, cell.position.1, cell.contender, cell.workload, cell.level
        );
        let cpu_before = cpu_time(true);
        let output = command
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        let cpu = cpu_time(true).saturating_sub(cpu_before);
        eprint!("\r\x1b[2K");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            remove_logs(&self.scratch, &log_prefix);
            return Err(format!(
                "pgbench failed ({}): {}{}",
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let transactions = report_number(&stdout, "number of transactions actually processed: ")
            .ok_or_else(|| format!("no transaction count in pgbench's report: {stdout}"))?;
        if transactions < 1.0 {
            remove_logs(&self.scratch, &log_prefix);
            return Ok(None);
        }
        let tps = report_number(&stdout, "tps = ")
            .ok_or_else(|| format!("no tps in pgbench's report: {stdout}"))?;
        let failed = report_number(&stdout, "number of failed transactions: ").unwrap_or(0.0);
        if let Some(ms) = report_number(&stdout, "initial connection time = ") {
            self.connect_times
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(clients, Duration::from_secs_f64(ms / 1e3));
        }
        let latency = read_logs(&self.scratch, &log_prefix);
        remove_logs(&self.scratch, &log_prefix);
        let transactions = transactions as u64;
        Ok(Some(Measurement {
            contender: cell.contender.clone(),
            workload: cell.workload,
            level: cell.level,
            setup: format!(
                "-c {clients} -j {threads}{}",
                if pipeline {
                    format!(
                        ", pipelines of {PIPELINE_DEPTH}; latency per {} req",
                        script.requests
                    )
                } else {
                    String::new()
                }
            ),
            requests: transactions * script.requests,
            queries: transactions * script.queries,
            errors: failed as u64 * script.requests,
            first_error: (failed > 0.0).then(|| format!("{failed} failed transactions")),
            elapsed: Duration::from_secs_f64(transactions as f64 / tps.max(1e-9)),
            cpu,
            latency,
        }))
    }
}

/// The number after `prefix` on its line of pgbench's report.
fn report_number(report: &str, prefix: &str) -> Option<f64> {
    let line = report.lines().find_map(|l| l.trim().strip_prefix(prefix))?;
    let number: String = line
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().ok()
}

fn log_files(dir: &Path, prefix: &Path) -> Vec<PathBuf> {
    let Some(stem) = prefix.file_name().and_then(|s| s.to_str()) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{stem}.")))
        })
        .collect()
}

fn remove_logs(dir: &Path, prefix: &Path) {
    for file in log_files(dir, prefix) {
        let _ = fs::remove_file(file);
    }
}

/// Transaction latencies (third column, microseconds) of pgbench's logs.
fn read_logs(dir: &Path, prefix: &Path) -> Histogram {
    let mut histogram = Histogram::new();
    for file in log_files(dir, prefix) {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            if let Some(micros) = line.split_whitespace().nth(2).and_then(|f| f.parse().ok()) {
                histogram.record_micros_n(micros, 1);
            }
        }
    }
    histogram
}

// ---------------------------------------------------------- tokio-postgres

struct TokioClient {
    client: tokio_postgres::Client,
    world: tokio_postgres::Statement,
    fortunes: tokio_postgres::Statement,
    update: tokio_postgres::Statement,
}

impl TokioClient {
    async fn exec(&self, op: Op) -> Result<Reply, tokio_postgres::Error> {
        match op {
            Op::World(id) => {
                let row = self.client.query_opt(&self.world, &[&id]).await?;
                Ok(Reply::World(row.map(|r| World {
                    id: r.get(0),
                    randomnumber: r.get(1),
                })))
            }
            Op::Update(worlds) => {
                let values = update_params(&worlds);
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let changed = if worlds.len() == ROWS_PER_REQUEST {
                    self.client.execute(&self.update, &params).await?
                } else {
                    let sql = update_sql(worlds.len());
                    self.client.execute(sql.as_str(), &params).await?
                };
                Ok(Reply::Updated(changed))
            }
            Op::Fortunes => {
                let rows = self.client.query(&self.fortunes, &[]).await?;
                Ok(Reply::Fortunes(
                    rows.iter()
                        .map(|r| Fortune {
                            id: r.get(0),
                            message: r.get(1),
                        })
                        .collect(),
                ))
            }
        }
    }
}

/// `tokio-postgres` on a multi-threaded runtime with its connections open.
pub struct TokioPeer {
    runtime: tokio::runtime::Runtime,
    clients: Vec<Arc<TokioClient>>,
}

impl std::fmt::Debug for TokioPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioPeer")
            .field("connections", &self.clients.len())
            .finish()
    }
}

impl TokioPeer {
    /// The contender name.
    pub const NAME: &'static str = "tokio-postgres";

    /// Starts the runtime and opens `connections` connections.
    pub fn connect(target: &Target, connections: usize) -> Result<TokioPeer, String> {
        let cores = thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
        let config = target.tokio_config();
        let clients = runtime.block_on(async {
            let mut clients = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("tokio-postgres cannot connect: {e}"))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                let prepare = |sql: String| {
                    let client = &client;
                    async move {
                        client
                            .prepare(&sql)
                            .await
                            .map_err(|e| format!("tokio-postgres cannot prepare: {e}"))
                    }
                };
                let world = prepare(SELECT_WORLD.to_owned()).await?;
                let fortunes = prepare(SELECT_FORTUNES.to_owned()).await?;
                let update = prepare(update_sql(ROWS_PER_REQUEST)).await?;
                clients.push(Arc::new(TokioClient {
                    client,
                    world,
                    fortunes,
                    update,
                }));
            }
            Ok::<_, String>(clients)
        })?;
        Ok(TokioPeer { runtime, clients })
    }

    /// Runs `cell.level` tasks over the first `connections` connections,
    /// warming up for `warmup` to `max_warmup` (see [`time_boxed_with`]).
    pub fn run(
        &self,
        cell: &Cell,
        connections: usize,
        (warmup, max_warmup): (Duration, Duration),
        duration: Duration,
    ) -> Result<Measurement, String> {
        let connections = connections.clamp(1, self.clients.len()).min(cell.level);
        time_boxed_with(cell, warmup, max_warmup, duration, |probe| {
            self.runtime.block_on(async {
                let mut tasks = Vec::with_capacity(cell.level);
                for task in 0..cell.level {
                    let client = Arc::clone(&self.clients[task % connections]);
                    let probe = probe.clone();
                    let workload = cell.workload;
                    tasks.push(tokio::spawn(async move {
                        let mut tally = probe.tally();
                        let mut rng = Rng::new(task as u64);
                        while probe.running() {
                            let started = Instant::now();
                            let outcome = request_async(workload, &mut rng, |op| {
                                let reply = client.exec(op);
                                async {
                                    let reply = reply.await;
                                    if reply.is_ok() {
                                        probe.statement_done();
                                    }
                                    reply
                                }
                            })
                            .await;
                            tally.record(started, outcome);
                        }
                    }));
                }
                for task in tasks {
                    task.await
                        .map_err(|e| format!("a tokio task failed: {e}"))?;
                }
                Ok(format!("{connections} conn, {} tasks", cell.level))
            })
        })
    }

    /// The best of [`TOKIO_CONNECTIONS`]: each count is tried for `trial`
    /// (after a short warm-up, not extended), then the best one is measured
    /// properly. Ties (such as no request finishing in a trial) go to the
    /// larger count.
    pub fn run_best(
        &self,
        cell: &Cell,
        trial: Duration,
        warmup: Duration,
        duration: Duration,
    ) -> Result<Measurement, String> {
        let mut best: Option<(f64, usize)> = None;
        for connections in TOKIO_CONNECTIONS {
            if connections > cell.level.max(1) || connections > self.clients.len() {
                continue;
            }
            let tried = self.run(cell, connections, (trial / 2, trial / 2), trial)?;
            if best.map_or(true, |(qps, _)| tried.qps() >= qps) {
                best = Some((tried.qps(), connections));
            }
        }
        let connections = best.map_or(1, |(_, c)| c);
        let mut measured = self.run(
            cell,
            connections,
            (warmup, warmup + MAX_WARMUP_EXTENSION),
            duration,
        )?;
        measured.setup = format!("best of 1-8 conn: {}", measured.setup);
        Ok(measured)
    }
}

// ------------------------------------------------------------ postgres (sync)

struct SyncClient {
    client: postgres::Client,
    world: postgres::Statement,
    fortunes: postgres::Statement,
    update: postgres::Statement,
}

impl SyncClient {
    fn connect(target: &Target) -> Result<SyncClient, String> {
        let config: postgres::Config = target.tokio_config().into();
        let mut client = config
            .connect(postgres::NoTls)
            .map_err(|e| format!("postgres cannot connect: {e}"))?;
        let mut prepare = |sql: &str| {
            client
                .prepare(sql)
                .map_err(|e| format!("postgres cannot prepare: {e}"))
        };
        let world = prepare(SELECT_WORLD)?;
        let fortunes = prepare(SELECT_FORTUNES)?;
        let update = prepare(&update_sql(ROWS_PER_REQUEST))?;
        Ok(SyncClient {
            client,
            world,
            fortunes,
            update,
        })
    }

    fn exec(&mut self, op: Op) -> Result<Reply, postgres::Error> {
        match op {
            Op::World(id) => {
                let row = self.client.query_opt(&self.world, &[&id])?;
                Ok(Reply::World(row.map(|r| World {
                    id: r.get(0),
                    randomnumber: r.get(1),
                })))
            }
            Op::Update(worlds) => {
                let values = update_params(&worlds);
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let changed = if worlds.len() == ROWS_PER_REQUEST {
                    self.client.execute(&self.update, &params)?
                } else {
                    self.client
                        .execute(update_sql(worlds.len()).as_str(), &params)?
                };
                Ok(Reply::Updated(changed))
            }
            Op::Fortunes => {
                let rows = self.client.query(&self.fortunes, &[])?;
                Ok(Reply::Fortunes(
                    rows.iter()
                        .map(|r| Fortune {
                            id: r.get(0),
                            message: r.get(1),
                        })
                        .collect(),
                ))
            }
        }
    }
}

/// A blocking pool: a stack of idle clients and a condition variable.
struct BlockingPool {
    idle: Mutex<Vec<SyncClient>>,
    available: Condvar,
}

impl BlockingPool {
    fn take(&self) -> SyncClient {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(client) = idle.pop() {
                return client;
            }
            idle = self.available.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give(&self, client: SyncClient) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(client);
        self.available.notify_one();
    }
}

/// The sync `postgres` crate on OS threads.
pub struct SyncPeer {
    pool: Arc<BlockingPool>,
    connections: usize,
}

impl std::fmt::Debug for SyncPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncPeer")
            .field("connections", &self.connections)
            .finish()
    }
}

impl SyncPeer {
    /// The contender name.
    pub const NAME: &'static str = "postgres-sync";

    /// Opens the connections `level` threads need: one each up to
    /// [`SYNC_MAX_CONNECTIONS`], then that many, shared.
    pub fn connect(target: &Target, level: usize) -> Result<SyncPeer, String> {
        let connections = level.clamp(1, SYNC_MAX_CONNECTIONS);
        // Open them in parallel: authentication dominates.
        let opened: Vec<Result<SyncClient, String>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..connections)
                .map(|_| scope.spawn(|| SyncClient::connect(target)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a connecting thread panicked".into()))
                })
                .collect()
        });
        let idle = opened.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(SyncPeer {
            pool: Arc::new(BlockingPool {
                idle: Mutex::new(idle),
                available: Condvar::new(),
            }),
            connections,
        })
    }

    /// Runs `cell.level` threads; each takes a connection per request from
    /// the shared pool when there are more threads than connections, else
    /// keeps its own for the whole run.
    pub fn run(
        &self,
        cell: &Cell,
        warmup: Duration,
        duration: Duration,
    ) -> Result<Measurement, String> {
        let shared = cell.level > self.connections;
        time_boxed(cell, warmup, duration, |probe| {
            thread::scope(|scope| {
                let mut handles = Vec::with_capacity(cell.level);
                for task in 0..cell.level {
                    let probe: Probe = probe.clone();
                    let pool = &self.pool;
                    let workload = cell.workload;
                    let spawned = thread::Builder::new()
                        .stack_size(SYNC_THREAD_STACK)
                        .spawn_scoped(scope, move || {
                            let mut tally = probe.tally();
                            let mut rng = Rng::new(task as u64);
                            let mut own = (!shared).then(|| pool.take());
                            while probe.running() {
                                let started = Instant::now();
                                let outcome = match own.as_mut() {
                                    Some(client) => request(
                                        workload,
                                        &mut rng,
                                        &mut probe.counting(|op| client.exec(op)),
                                    ),
                                    None => {
                                        let mut client = pool.take();
                                        let outcome = request(
                                            workload,
                                            &mut rng,
                                            &mut probe.counting(|op| client.exec(op)),
                                        );
                                        pool.give(client);
                                        outcome
                                    }
                                };
                                tally.record(started, outcome);
                            }
                            if let Some(client) = own {
                                pool.give(client);
                            }
                        })
                        .map_err(|e| format!("cannot start thread {task}: {e}"))?;
                    handles.push(spawned);
                }
                for handle in handles {
                    handle
                        .join()
                        .map_err(|_| "a benchmark thread panicked".to_string())?;
                }
                Ok(if shared {
                    format!("{} threads, pool of {}", cell.level, self.connections)
                } else {
                    format!("{} threads, 1 conn each", cell.level)
                })
            })
        })
    }
}
