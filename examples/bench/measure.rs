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

use super::workload::Workload;

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

    /// Latencies counted.
    pub fn len(&self) -> u64 {
        self.total
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
}

impl Measurement {
    /// Statements per second.
    pub fn qps(&self) -> f64 {
        self.queries as f64 / self.elapsed.as_secs_f64().max(1e-9)
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
    queries: u64,
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
        if now < inner.measure_from || now > inner.end {
            if let Err(e) = outcome {
                // Outside the window: keep the reason, pause, do not count.
                self.first_error.get_or_insert_with(|| e.to_string());
                thread_friendly_pause();
            }
            return;
        }
        match outcome {
            Ok(queries) => {
                self.requests += 1;
                self.queries += queries;
                self.latency.record(now - started);
                inner.progress_queries.fetch_add(queries, Ordering::Relaxed);
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
        totals.queries += self.queries;
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
    queries: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram,
}

#[derive(Debug)]
struct ProbeInner {
    measure_from: Instant,
    end: Instant,
    progress_queries: AtomicU64,
    progress_errors: AtomicU64,
    totals: Mutex<Totals>,
}

/// The shared clock and counters of one cell; cheap to clone into workers.
#[derive(Debug, Clone)]
pub struct Probe(Arc<ProbeInner>);

impl Probe {
    fn new(warmup: Duration, duration: Duration) -> Probe {
        let start = Instant::now();
        Probe(Arc::new(ProbeInner {
            measure_from: start + warmup,
            end: start + warmup + duration,
            progress_queries: AtomicU64::new(0),
            progress_errors: AtomicU64::new(0),
            totals: Mutex::new(Totals::default()),
        }))
    }

    /// True until the window ends: workers start no request after that.
    pub fn running(&self) -> bool {
        Instant::now() < self.0.end
    }

    /// When the window ends.
    pub fn end(&self) -> Instant {
        self.0.end
    }

    /// A fresh tally for one worker.
    pub fn tally(&self) -> Tally {
        Tally {
            probe: self.clone(),
            requests: 0,
            queries: 0,
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
pub fn time_boxed(
    cell: &Cell,
    warmup: Duration,
    duration: Duration,
    body: impl FnOnce(&Probe) -> Result<String, String>,
) -> Result<Measurement, String> {
    let probe = Probe::new(warmup, duration);
    let progress = {
        let probe = probe.clone();
        let label = cell.label();
        thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || progress_and_cpu(&probe, &label))
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
        queries: totals.queries,
        errors: totals.errors,
        first_error: totals.first_error,
        elapsed: duration,
        cpu,
        latency: totals.latency,
    })
}

/// Prints the progress line until the window ends; returns the process CPU
/// time spent inside the window.
fn progress_and_cpu(probe: &Probe, label: &str) -> Duration {
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
    sleep_until(inner.measure_from);
    let cpu_before = cpu_time(false);
    let started = Instant::now();
    loop {
        let now = Instant::now();
        if now >= inner.end {
            break;
        }
        sleep_until((now + PROGRESS_EVERY).min(inner.end));
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
        } else if Instant::now() >= inner.end {
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
