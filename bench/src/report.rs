//! The results: a Markdown table on stdout, and the same as JSON, Markdown
//! and an SVG chart under `target/bench/`.
//!
//! Ratios: each row's queries/s divided by (a) the *peak* of the ceiling
//! contender (pgbench in pipeline mode) on that workload over every level
//! measured, the server's best, and (b) odm's ORM on the same workload at
//! the same level.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::bulk::{self, BulkRow};
use super::chart;
use super::measure::{ms, Measurement};
use super::workload::Workload;

/// What the run was: for the report's header and the JSON.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The command line that produced the numbers.
    pub command: String,
    /// Warm-up per cell.
    pub warmup: Duration,
    /// Measured window per cell.
    pub duration: Duration,
    /// `server_version` of the server.
    pub server_version: String,
    /// Where the server was (`TempCluster` or `DATABASE_URL`).
    pub server: String,
}

/// Every measurement of a run, with the names ratios are taken against.
#[derive(Debug, Clone)]
pub struct Report {
    /// The run's settings.
    pub info: RunInfo,
    /// One per contender × workload × level.
    pub rows: Vec<Measurement>,
    /// Failed cells: contender, workload, level, error.
    pub failures: Vec<(String, Workload, usize, String)>,
    /// Extra runs of the ceiling contender (pgbench-pipe with one client
    /// per core, where a small server peaks) that count for its peak but
    /// are not a level of the table.
    pub ceiling_runs: Vec<Measurement>,
    /// Free-form lines printed after the table (the scale run).
    pub notes: Vec<String>,
    /// The bulk section (`--bulk`), printed after the notes.
    pub bulk: Vec<BulkRow>,
    /// The ceiling contender (`pgbench-pipe`).
    pub ceiling: String,
    /// The reference contender (`odm-orm`).
    pub reference: String,
}

impl Report {
    pub(crate) fn find(
        &self,
        contender: &str,
        workload: Workload,
        level: usize,
    ) -> Option<&Measurement> {
        self.rows
            .iter()
            .find(|m| m.contender == contender && m.workload == workload && m.level == level)
    }

    /// The ceiling's best queries/s on `workload`.
    pub fn ceiling_peak(&self, workload: Workload) -> Option<f64> {
        self.rows
            .iter()
            .chain(&self.ceiling_runs)
            .filter(|m| m.contender == self.ceiling && m.workload == workload)
            .map(Measurement::qps)
            .fold(None, |best, q| Some(best.map_or(q, |b: f64| b.max(q))))
    }

    /// `m`'s queries/s over the ceiling's peak.
    pub fn ratio_to_ceiling(&self, m: &Measurement) -> Option<f64> {
        self.ceiling_peak(m.workload)
            .filter(|peak| *peak > 0.0)
            .map(|peak| m.qps() / peak)
    }

    /// `m`'s queries/s over the reference's at the same workload and level.
    pub fn ratio_to_reference(&self, m: &Measurement) -> Option<f64> {
        self.find(&self.reference, m.workload, m.level)
            .map(Measurement::qps)
            .filter(|q| *q > 0.0)
            .map(|q| m.qps() / q)
    }

    fn sorted(&self) -> Vec<&Measurement> {
        let mut rows: Vec<&Measurement> = self.rows.iter().collect();
        let order: Vec<&str> = self.contender_order();
        rows.sort_by_key(|m| {
            (
                m.workload,
                m.level,
                order.iter().position(|c| *c == m.contender),
            )
        });
        rows
    }

    /// Contenders in the order they first appear.
    pub fn contender_order(&self) -> Vec<&str> {
        let mut order: Vec<&str> = Vec::new();
        for m in &self.rows {
            if !order.contains(&m.contender.as_str()) {
                order.push(&m.contender);
            }
        }
        order
    }

    /// The Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if !self.rows.is_empty() || !self.failures.is_empty() {
            let _ = writeln!(
                out,
                "| workload | tasks | contender | queries/s | per conn | spread | CPU ms/1k q | p50 ms | p99 ms | errors | × {} peak | × {} | setup |",
                self.ceiling, self.reference
            );
            let _ = writeln!(
                out,
                "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            );
        }
        let ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        for m in self.sorted() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} |",
                m.workload,
                m.level,
                m.contender,
                m.qps(),
                m.qps_per_connection()
                    .map_or("-".to_string(), |q| format!("{q:.0}")),
                m.spread()
                    .map_or("-".to_string(), |s| format!("{:.0}%", s * 100.0)),
                m.cpu_ms_per_1k(),
                ms(m.p50()),
                ms(m.p99()),
                m.errors,
                ratio(self.ratio_to_ceiling(m)),
                ratio(self.ratio_to_reference(m)),
                m.setup
            );
        }
        for (contender, workload, level, error) in &self.failures {
            let _ = writeln!(
                out,
                "| {workload} | {level} | {contender} | failed: {} | | | | | | | | | |",
                error.replace('|', "/").replace('\n', " ")
            );
        }
        for m in &self.ceiling_runs {
            let _ = writeln!(
                out,
                "\n{} {} with {} clients (counts for its peak): {:.0} queries/s, {:.2} CPU ms/1k q, {}",
                m.contender,
                m.workload,
                m.level,
                m.qps(),
                m.cpu_ms_per_1k(),
                m.setup
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        if !self.bulk.is_empty() {
            let _ = write!(out, "\n{}", bulk::table(&self.bulk));
        }
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(out, "\ntargets (issue 13; issue 9 for TLS):");
            for line in targets {
                let _ = writeln!(out, "- {line}");
            }
        }
        let errors: Vec<&Measurement> = self.rows.iter().filter(|m| m.errors > 0).collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "\nfirst error per cell with errors:");
            for m in errors {
                let _ = writeln!(
                    out,
                    "- {} {} x{}: {}",
                    m.contender,
                    m.workload,
                    m.level,
                    m.first_error.as_deref().unwrap_or("?")
                );
            }
        }
        out
    }

    /// The header line of the report.
    pub fn header(&self) -> String {
        format!(
            "{} warm-up + {} measured per cell; server {} ({}); {} cores; queries/s counts \
             statements (db 1, queries 20, updates 20 reads + 1 batched write, fortunes 1 \
             per request)\n\ncommand: `{}`",
            secs(self.info.warmup),
            secs(self.info.duration),
            self.info.server_version,
            self.info.server,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            self.info.command
        )
    }

    /// The whole report as JSON.
    pub fn json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .sorted()
            .into_iter()
            .map(|m| {
                json!({
                    "contender": m.contender,
                    "workload": m.workload.name(),
                    "level": m.level,
                    "setup": m.setup,
                    "requests": m.requests,
                    "queries": m.queries,
                    "errors": m.errors,
                    "first_error": m.first_error,
                    "seconds": m.elapsed.as_secs_f64(),
                    "queries_per_second": m.qps(),
                    "connections": m.connections,
                    "queries_per_second_per_connection": m.qps_per_connection(),
                    "repeats_queries_per_second": m.repeats,
                    "spread": m.spread(),
                    "requests_per_second": m.rps(),
                    "client_cpu_ms": m.cpu.as_secs_f64() * 1e3,
                    "client_cpu_ms_per_1000_queries": finite(m.cpu_ms_per_1k()),
                    "p50_ms": m.p50().map(|d| d.as_secs_f64() * 1e3),
                    "p99_ms": m.p99().map(|d| d.as_secs_f64() * 1e3),
                    "ratio_to_ceiling_peak": self.ratio_to_ceiling(m),
                    "ratio_to_reference": self.ratio_to_reference(m),
                })
            })
            .collect();
        let failures: Vec<serde_json::Value> = self
            .failures
            .iter()
            .map(|(c, w, l, e)| json!({"contender": c, "workload": w.name(), "level": l, "error": e}))
            .collect();
        json!({
            "command": self.info.command,
            "server": self.info.server,
            "server_version": self.info.server_version,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "warmup_seconds": self.info.warmup.as_secs_f64(),
            "duration_seconds": self.info.duration.as_secs_f64(),
            "ceiling": self.ceiling,
            "reference": self.reference,
            "rows": rows,
            "failures": failures,
            "notes": self.notes,
            "bulk": bulk::json(&self.bulk),
            "ceiling_runs": self.ceiling_runs.iter().map(|m| json!({
                "contender": m.contender,
                "workload": m.workload.name(),
                "clients": m.level,
                "queries_per_second": m.qps(),
                "client_cpu_ms_per_1000_queries": finite(m.cpu_ms_per_1k()),
                "setup": m.setup,
            })).collect::<Vec<_>>(),
            "targets": self.targets(),
        })
    }

    /// Writes `bench.json`, `bench.md` and `throughput.svg` into `dir`;
    /// returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let json = serde_json::to_string_pretty(&self.json())
            .map_err(|e| format!("cannot encode the report: {e}"))?;
        let files = [
            ("bench.json", json),
            ("bench.md", format!("{}\n\n{}", self.header(), self.table())),
            ("throughput.svg", chart::svg(self)),
        ];
        let mut written = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `target/bench` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn output_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("bench"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("bench"),
    }
}
