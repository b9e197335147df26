//! Time-boxed measurement of one contender at one concurrency level.
//!
//! A cell runs for a warm-up, then a measured window. Workers (threads,
//! async tasks, green tasks: whatever the contender uses) loop while
//! [`Probe::running`], and record each request's outcome in their own
//! [`Tally`], which merges into the probe when dropped. Only requests that
//! *complete* inside the window count. A progress thread prints one line on
//! stderr while the cell runs and samples this process's CPU time
//! (`getrusage(RUSAGE_SELF)`) at both ends of the window.

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::workload::{Op, Reply, Workload};

/// Sub-buckets per power of two in the latency histogram (~3% precision).
const SUB_BUCKET_BITS: u32 = 5;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Buckets enough for any `u64` number of microseconds.
const BUCKETS: usize = (64 - SUB_BUCKET_BITS as usize + 1) * SUB_BUCKETS;
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A log-linear histogram of latencies in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    fn index(micros: u64) -> usize {
        if micros < SUB_BUCKETS as u64 {
            return micros as usize;
        }
        let exponent = 63 - micros.leading_zeros();
        let shift = exponent - SUB_BUCKET_BITS;
        let mantissa = (micros >> shift) as usize & (SUB_BUCKETS - 1);
        (exponent - SUB_BUCKET_BITS + 1) as usize * SUB_BUCKETS + mantissa
    }

    /// The middle of bucket `index`, in microseconds.
    fn value(index: usize) -> u64 {
        if index < SUB_BUCKETS {
            return index as u64;
        }
        let shift = (index / SUB_BUCKETS - 1) as u32;
        let mantissa = (index % SUB_BUCKETS) as u64;
        let low = (SUB_BUCKETS as u64 + mantissa) << shift;
        low + ((1u64 << shift) >> 1)
    }

    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[Histogram::index(micros)] += 1;
        self.total += 1;
    }

    /// Counts `count` latencies of `micros` each.
    pub fn record_micros_n(&mut self, micros: u64, count: u64) {
        self.counts[Histogram::index(micros)] += count;
        self.total += count;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// The latency below which a fraction `q` (0..=1) of the counted ones
    /// fall; `None` when nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64 * q).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(Histogram::value(index)));
            }
        }
        None
    }
}

/// CPU time (user + system) of this process (`RUSAGE_SELF`) or of its
/// waited-for children (`RUSAGE_CHILDREN`, for pgbench).
pub fn cpu_time(children: bool) -> Duration {
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// What one contender achieved on one workload at one concurrency level.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Contender name (`odm-orm`, `tokio-postgres`, ...).
    pub contender: String,
    /// The workload run.
    pub workload: Workload,
    /// Concurrent tasks (threads, clients) asked for.
    pub level: usize,
    /// How the contender ran: connections, threads, pipeline depth.
    pub setup: String,
    /// Requests completed inside the window.
    pub requests: u64,
    /// Statements those requests ran.
    pub queries: u64,
    /// Requests that failed inside the window.
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Client CPU time spent in the window.
    pub cpu: Duration,
    /// Request latencies.
    pub latency: Histogram,
    /// Server connections the contender used, when it has a fixed number.
    pub connections: Option<usize>,
    /// Queries/s of every repeat of the cell (`--repeats`), in run order;
    /// this measurement is the median one. Empty for a single run.
    pub repeats: Vec<f64>,
}

impl Measurement {
    /// Statements per second.
    pub fn qps(&self) -> f64 {
        self.queries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Statements per second and server connection, when the contender
    /// used a fixed number of connections.
    pub fn qps_per_connection(&self) -> Option<f64> {
        self.connections
            .filter(|&n| n > 0)
            .map(|n| self.qps() / n as f64)
    }

    /// The spread of the repeats: (max − min) / median queries/s; `None`
    /// for a single run.
    pub fn spread(&self) -> Option<f64> {
        if self.repeats.len() < 2 {
            return None;
        }
        let max = self.repeats.iter().copied().fold(f64::MIN, f64::max);
        let min = self.repeats.iter().copied().fold(f64::MAX, f64::min);
        let median = self.qps();
        (median > 0.0).then(|| (max - min) / median)
    }

    /// The median of `runs` (of one cell), carrying every run's queries/s
    /// in [`Measurement::repeats`]; `None` when `runs` is empty.
    pub fn median_of(mut runs: Vec<Measurement>) -> Option<Measurement> {
        let repeats: Vec<f64> = runs.iter().map(Measurement::qps).collect();
        runs.sort_by(|a, b| a.qps().total_cmp(&b.qps()));
        let middle = runs.len() / 2;
        let mut median = runs.into_iter().nth(middle)?;
        if repeats.len() > 1 {
            median.repeats = repeats;
        }
        Some(median)
    }

    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Client CPU milliseconds per 1,000 statements (`NaN` when none ran).
    pub fn cpu_ms_per_1k(&self) -> f64 {
        if self.queries == 0 {
            return f64::NAN;
        }
        self.cpu.as_secs_f64() * 1e6 / self.queries as f64
    }

    /// Median request latency.
    pub fn p50(&self) -> Option<Duration> {
        self.latency.quantile(0.50)
    }

    /// 99th-percentile request latency.
    pub fn p99(&self) -> Option<Duration> {
        self.latency.quantile(0.99)
    }
}

/// Counts of one worker; merged into its probe when dropped.
#[derive(Debug)]
pub struct Tally {
    probe: Probe,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram,
}

impl Tally {
    /// Records one request that started at `started` and ended now with
    /// `outcome` (the statements it ran, or its error).
    pub fn record<E: fmt::Display>(&mut self, started: Instant, outcome: Result<u64, E>) {
        let now = Instant::now();
        let inner = &self.probe.0;
        inner.completions.fetch_add(1, Ordering::Relaxed);
        if !inner.in_window(now) {
            if let Err(e) = outcome {
                // Outside the window: keep the reason, pause, do not count.
                self.first_error.get_or_insert_with(|| e.to_string());
                thread_friendly_pause();
            }
            return;
        }
        match outcome {
            Ok(_) => {
                self.requests += 1;
                self.latency.record(now - started);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
                inner.progress_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A failing contender must not spin at full speed during the warm-up.
fn thread_friendly_pause() {
    if may::coroutine::is_coroutine() {
        may::coroutine::sleep(Duration::from_millis(5));
    } else {
        thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let mut totals = self
            .probe
            .0
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        totals.requests += self.requests;
        totals.errors += self.errors;
        totals.latency.merge(&self.latency);
        if totals.first_error.is_none() {
            totals.first_error = self.first_error.take();
        }
    }
}

#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram,
}

/// Window bounds not set yet.
const UNSET: u64 = u64::MAX;

#[derive(Debug)]
struct ProbeInner {
    start: Instant,
    /// Nanoseconds after `start` where the window opens and closes; set by
    /// the progress thread once the warm-up is over.
    measure_from: AtomicU64,
    end: AtomicU64,
    /// Requests finished (counted or not): tells when warm-up is over.
    completions: AtomicU64,
    progress_queries: AtomicU64,
    progress_errors: AtomicU64,
    totals: Mutex<Totals>,
}

impl ProbeInner {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_nanos()).unwrap_or(UNSET - 1)
    }

    fn in_window(&self, at: Instant) -> bool {
        let t = self.nanos(at);
        t >= self.measure_from.load(Ordering::Acquire) && t <= self.end.load(Ordering::Acquire)
    }
}

/// The shared clock and counters of one cell; cheap to clone into workers.
#[derive(Debug, Clone)]
pub struct Probe(Arc<ProbeInner>);

impl Probe {
    fn new() -> Probe {
        Probe(Arc::new(ProbeInner {
            start: Instant::now(),
            measure_from: AtomicU64::new(UNSET),
            end: AtomicU64::new(UNSET),
            completions: AtomicU64::new(0),
            progress_queries: AtomicU64::new(0),
            progress_errors: AtomicU64::new(0),
            totals: Mutex::new(Totals::default()),
        }))
    }

    /// True until the window ends: workers start no request after that.
    pub fn running(&self) -> bool {
        self.0.nanos(Instant::now()) < self.0.end.load(Ordering::Acquire)
    }

    /// Records one request straight into the shared totals (no per-worker
    /// tally: for runs with so many tasks that a histogram each would
    /// dominate their memory).
    pub fn record_shared<E: fmt::Display>(&self, started: Instant, outcome: Result<u64, E>) {
        let now = Instant::now();
        let inner = &self.0;
        inner.completions.fetch_add(1, Ordering::Relaxed);
        let counted = inner.in_window(now);
        let mut totals = inner.totals.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(_) if counted => {
                totals.requests += 1;
                totals.latency.record(now - started);
            }
            Ok(_) => {}
            Err(e) => {
                if totals.first_error.is_none() {
                    totals.first_error = Some(e.to_string());
                }
                if counted {
                    totals.errors += 1;
                    inner.progress_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts one statement that just completed (if inside the window).
    ///
    /// Throughput counts statements as they complete, not requests: with
    /// slow requests started together, completions come in bursts that a
    /// short window could miss entirely.
    pub fn statement_done(&self) {
        let inner = &self.0;
        if inner.in_window(Instant::now()) {
            inner.progress_queries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `exec` with every successful operation counted as one statement.
    pub fn counting<'a, E>(
        &'a self,
        mut exec: impl FnMut(Op) -> Result<Reply, E> + 'a,
    ) -> impl FnMut(Op) -> Result<Reply, E> + 'a {
        move |op| {
            let reply = exec(op);
            if reply.is_ok() {
                self.statement_done();
            }
            reply
        }
    }

    /// A fresh tally for one worker.
    pub fn tally(&self) -> Tally {
        Tally {
            probe: self.clone(),
            requests: 0,
            errors: 0,
            first_error: None,
            latency: Histogram::new(),
        }
    }
}

/// Where a cell is: for the progress line.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Contender name.
    pub contender: String,
    /// Workload.
    pub workload: Workload,
    /// Concurrency level.
    pub level: usize,
    /// Position of this cell in the whole run, e.g. `(7, 96)`.
    pub position: (usize, usize),
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "[{}/{}] {} {} x{}",
            self.position.0, self.position.1, self.contender, self.workload, self.level
        )
    }
}

/// Runs one cell: `body` starts the workers (cloning the probe into each,
/// dropping each worker's [`Tally`] when it stops) and returns once they
/// have all stopped, with a description of the setup.
///
/// The warm-up lasts `warmup`, and longer (up to [`MAX_WARMUP_EXTENSION`]
/// more) until the workers have finished as many requests as there are
/// workers: with slow requests (1,024 tasks each running 20 queries) a
/// fixed warm-up would end before the first requests complete, and the
/// window would count a burst of synchronized first completions, or none.
pub fn time_boxed(
    cell: &Cell,
    warmup: Duration,
    duration: Duration,
    body: impl FnOnce(&Probe) -> Result<String, String>,
) -> Result<Measurement, String> {
    time_boxed_with(cell, warmup, warmup + MAX_WARMUP_EXTENSION, duration, body)
}

/// How much longer than asked a warm-up may last waiting for steady state.
pub const MAX_WARMUP_EXTENSION: Duration = Duration::from_secs(3);

/// [`time_boxed`] with an explicit cap on the warm-up.
pub fn time_boxed_with(
    cell: &Cell,
    warmup: Duration,
    max_warmup: Duration,
    duration: Duration,
    body: impl FnOnce(&Probe) -> Result<String, String>,
) -> Result<Measurement, String> {
    let probe = Probe::new();
    let progress = {
        let probe = probe.clone();
        let label = cell.label();
        let level = cell.level as u64;
        thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || progress_and_cpu(&probe, &label, level, warmup, max_warmup, duration))
            .map_err(|e| format!("cannot start the progress thread: {e}"))?
    };
    let setup = body(&probe);
    let cpu = progress
        .join()
        .map_err(|_| "the progress thread panicked".to_string())?;
    let setup = setup?;
    let totals = std::mem::take(&mut *probe.0.totals.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Measurement {
        contender: cell.contender.clone(),
        workload: cell.workload,
        level: cell.level,
        setup,
        requests: totals.requests,
        queries: probe.0.progress_queries.load(Ordering::Relaxed),
        errors: totals.errors,
        first_error: totals.first_error,
        elapsed: duration,
        cpu,
        latency: totals.latency,
        connections: None,
        repeats: Vec::new(),
    })
}

/// Prints the progress line until the window ends; returns the process CPU
/// time spent inside the window.
fn progress_and_cpu(
    probe: &Probe,
    label: &str,
    level: u64,
    warmup: Duration,
    max_warmup: Duration,
    duration: Duration,
) -> Duration {
    let inner = &probe.0;
    let sleep_until = |t: Instant| {
        let now = Instant::now();
        if t > now {
            thread::sleep(t - now);
        }
    };
    let tty = std::io::stderr().is_terminal();
    if tty {
        eprint!("\r\x1b[2K{label} warming up");
    }
    sleep_until(inner.start + warmup);
    while inner.completions.load(Ordering::Relaxed) < level
        && inner.start.elapsed() < max_warmup.max(warmup)
    {
        thread::sleep(Duration::from_millis(5));
    }
    let cpu_before = cpu_time(false);
    let started = Instant::now();
    let end = started + duration;
    inner
        .measure_from
        .store(inner.nanos(started), Ordering::Release);
    inner.end.store(inner.nanos(end), Ordering::Release);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        sleep_until((now + PROGRESS_EVERY).min(end));
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let queries = inner.progress_queries.load(Ordering::Relaxed);
        let errors = inner.progress_errors.load(Ordering::Relaxed);
        let line = format!(
            "{label} {elapsed:.1}s {:.0} queries/s, {errors} errors",
            queries as f64 / elapsed
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if Instant::now() >= end {
            // Not a terminal: one line per cell, no carriage returns.
            eprintln!("{line}");
        }
    }
    let cpu = cpu_time(false).saturating_sub(cpu_before);
    if tty {
        eprint!("\r\x1b[2K");
    }
    cpu
}

/// Formats a duration as milliseconds with two decimals.
pub fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2}", d.as_secs_f64() * 1e3),
        None => "-".into(),
    }
}
