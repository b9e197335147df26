//! [`Pgbench`]: `pgbench -M prepared` as a contender, running the
//! workload's statements from a script, plain (one statement per round
//! trip) and in pipeline mode (`\startpipeline` .. `\endpipeline`, 10
//! statements per pipeline). Its transactions per second become requests
//! and statements per second; its latencies come from a sampled
//! transaction log; its CPU time is `getrusage(RUSAGE_CHILDREN)` around the
//! run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::measure::{cpu_time, Cell, Histogram, Measurement};
use super::peers::Target;
use super::workload::{update_sql, Workload, ROWS_PER_REQUEST, SELECT_FORTUNES, WORLD_ROWS};

/// Statements per pipeline in pgbench's pipeline mode.
pub const PIPELINE_DEPTH: usize = 10;

/// Fraction of pgbench transactions logged for latency percentiles.
const PGBENCH_SAMPLING: f64 = 0.05;

/// A first guess of how long pgbench takes to open one connection per
/// thread (md5 or trust authentication), before it has reported its own.
const PGBENCH_CONNECT_GUESS: Duration = Duration::from_millis(5);

/// Most pgbench clients: more only thrash a small server's processes, and
/// opening hundreds more connections would eat the run.
const PGBENCH_MAX_CLIENTS: usize = 256;

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
            // A repeat of the same cell (`--repeats`) runs again.
            .filter(|earlier| earlier.level != cell.level)
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
        let tty = std::io::stderr().is_terminal();
        let label = format!(
            "[{}/{}] {} {} x{} running {seconds}s",
            cell.position.0, cell.position.1, cell.contender, cell.workload, cell.level
        );
        if tty {
            eprint!("\r\x1b[2K{label}");
        } else {
            eprintln!("{label}");
        }
        let cpu_before = cpu_time(true);
        let output = command
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        let cpu = cpu_time(true).saturating_sub(cpu_before);
        if tty {
            eprint!("\r\x1b[2K");
        }
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
            connections: Some(clients),
            repeats: Vec::new(),
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
