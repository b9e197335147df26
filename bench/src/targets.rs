//! The performance goals of issue 13 (and issue 9's TLS ratio), each
//! checked against a run and printed as met or missed by how much. Only
//! goals whose cells were measured are listed.
//!
//! - odm-raw with its connections >= 0.7x the ceiling's (pgbench in
//!   pipeline mode) peak on `db` at 256 and 1024 tasks, with a spread
//!   across repeats under 15%;
//! - odm-raw client CPU <= 1.5 ms per 1,000 queries on `db` at 256 tasks;
//! - every ORM contender's `updates` >= 0.8x odm-raw's, with a p99 at most
//!   2x odm-raw's;
//! - every ORM contender's `db` and `queries` >= 1.0x odm-raw's;
//! - odm-raw-tls >= 0.8x odm-raw on `db` (issue 9).

use super::measure::Measurement;
use super::report::Report;
use super::workload::Workload;

/// The levels the goals are stated at.
const LEVELS: [usize; 2] = [256, 1024];
/// The most spread across repeats a steady cell may show.
const MAX_SPREAD: f64 = 0.15;
/// The client CPU goal, ms per 1,000 queries, at 256 tasks.
const MAX_CPU_MS_PER_1K: f64 = 1.5;

impl Report {
    /// Each goal measured in this run, as met or missed by how much.
    pub fn targets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for level in LEVELS {
            if let Some(raw) = self.find("odm-raw", Workload::Db, level) {
                at_least(
                    &mut out,
                    format!("odm-raw / {} peak, db x{level}", self.ceiling),
                    self.ratio_to_ceiling(raw),
                    0.7,
                );
                if let Some(spread) = raw.spread() {
                    let verdict = if spread < MAX_SPREAD {
                        "met".to_string()
                    } else {
                        "missed".to_string()
                    };
                    out.push(format!(
                        "odm-raw spread of {} repeats, db x{level}: {:.0}% (goal < {:.0}%) {verdict}",
                        raw.repeats.len(),
                        spread * 100.0,
                        MAX_SPREAD * 100.0
                    ));
                }
                let cpu = raw.cpu_ms_per_1k();
                if level == 256 && cpu.is_finite() {
                    at_most(
                        &mut out,
                        format!("odm-raw client CPU ms per 1,000 queries, db x{level}"),
                        cpu,
                        MAX_CPU_MS_PER_1K,
                    );
                }
            }
            for orm in self.orm_contenders() {
                self.orm_goals(&mut out, &orm, level);
            }
            let tls = self.find("odm-raw-tls", Workload::Db, level);
            let plain = self.find("odm-raw", Workload::Db, level);
            if let (Some(tls), Some(plain)) = (tls, plain) {
                at_least(
                    &mut out,
                    format!("odm-raw-tls / odm-raw, db x{level}"),
                    Some(tls.qps() / plain.qps().max(1e-9)),
                    0.8,
                );
            }
        }
        out
    }

    /// The ORM contenders measured (`odm-orm`, `odm-orm-autocommit`, ...).
    fn orm_contenders(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for m in &self.rows {
            if m.contender.starts_with("odm-orm") && !names.contains(&m.contender) {
                names.push(m.contender.clone());
            }
        }
        names
    }

    fn orm_goals(&self, out: &mut Vec<String>, orm: &str, level: usize) {
        let pair = |workload| {
            self.find(orm, workload, level)
                .zip(self.find("odm-raw", workload, level))
        };
        if let Some((o, r)) = pair(Workload::Updates) {
            at_least(
                out,
                format!("{orm} / odm-raw, updates x{level}"),
                Some(ratio(o, r)),
                0.8,
            );
            if let (Some(op99), Some(rp99)) = (o.p99(), r.p99()) {
                at_most(
                    out,
                    format!("{orm} p99 / odm-raw p99, updates x{level}"),
                    op99.as_secs_f64() / rp99.as_secs_f64().max(1e-9),
                    2.0,
                );
            }
        }
        for workload in [Workload::Db, Workload::Queries] {
            if let Some((o, r)) = pair(workload) {
                at_least(
                    out,
                    format!("{orm} / odm-raw, {workload} x{level}"),
                    Some(ratio(o, r)),
                    1.0,
                );
            }
        }
    }
}

fn ratio(a: &Measurement, b: &Measurement) -> f64 {
    a.qps() / b.qps().max(1e-9)
}

fn at_least(out: &mut Vec<String>, what: String, value: Option<f64>, goal: f64) {
    if let Some(value) = value {
        let verdict = if value >= goal {
            "met".to_string()
        } else {
            format!("missed by {:.0}%", (1.0 - value / goal) * 100.0)
        };
        out.push(format!("{what}: {value:.2} (goal >= {goal}) {verdict}"));
    }
}

fn at_most(out: &mut Vec<String>, what: String, value: f64, goal: f64) {
    let verdict = if value <= goal {
        "met".to_string()
    } else {
        format!("missed by {:.0}%", (value / goal - 1.0) * 100.0)
    };
    out.push(format!("{what}: {value:.2} (goal <= {goal}) {verdict}"));
}
