//! Scale mode helpers: resident memory of this process, and what each of
//! many parked tasks costs above a baseline.
//!
//! The scale run starts thousands of green tasks that all want one of a few
//! pooled connections, so nearly all of them are parked at any moment. A
//! [`RssSampler`] reads `VmRSS` from `/proc/self/status` every few
//! milliseconds while they run; the peak minus the baseline taken before
//! they started, divided by the task count, is the memory per parked task.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Resident set size of this process in KiB (`VmRSS` of
/// `/proc/self/status`).
pub fn rss_kib() -> Result<u64, String> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    parse_vm_rss(&status).ok_or_else(|| "no VmRSS line in /proc/self/status".to_string())
}

/// The `VmRSS:   1234 kB` value of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value),
        Some("mB") => Some(value * 1024),
        Some(_) => None,
    }
}

/// Samples RSS on a background thread and keeps the peak.
#[derive(Debug)]
pub struct RssSampler {
    baseline: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Takes the baseline now and starts sampling every `every`.
    pub fn start(every: Duration) -> Result<RssSampler, String> {
        let baseline = rss_kib()?;
        let peak = Arc::new(AtomicU64::new(baseline));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            thread::Builder::new()
                .name("bench-rss".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(now) = rss_kib() {
                            peak.fetch_max(now, Ordering::Relaxed);
                        }
                        thread::sleep(every);
                    }
                })
                .map_err(|e| format!("cannot start the rss sampler: {e}"))?
        };
        Ok(RssSampler {
            baseline,
            peak,
            stop,
            thread: Some(thread),
        })
    }

    /// Records a sample now (call it when every task is known to be alive).
    pub fn sample(&self) {
        if let Ok(now) = rss_kib() {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Stops sampling; returns what `tasks` tasks cost.
    pub fn finish(mut self, tasks: usize) -> Footprint {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        Footprint {
            tasks,
            baseline_kib: self.baseline,
            peak_kib: self.peak.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Resident memory of a scale run.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// Tasks alive at the peak.
    pub tasks: usize,
    /// RSS before the tasks started, KiB.
    pub baseline_kib: u64,
    /// Highest RSS seen while they ran, KiB.
    pub peak_kib: u64,
}

impl Footprint {
    /// KiB per task above the baseline.
    pub fn per_task_kib(&self) -> f64 {
        self.peak_kib.saturating_sub(self.baseline_kib) as f64 / self.tasks.max(1) as f64
    }
}

impl std::fmt::Display for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {} KiB baseline, {} KiB peak with {} tasks: {:.1} KiB per task",
            self.baseline_kib,
            self.peak_kib,
            self.tasks,
            self.per_task_kib()
        )
    }
}
