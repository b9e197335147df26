//! The benchmark's command line.

use std::time::Duration;

use super::workload::Workload;

/// Every contender, in report order.
pub const CONTENDERS: [&str; 13] = [
    "pgbench",
    "pgbench-pipe",
    "odm-raw",
    "odm-raw-tls",
    "odm-pool",
    "odm-pool-nocache",
    "odm-pool-pgbouncer",
    "odm-orm",
    "odm-orm-commit-with",
    "odm-orm-autocommit",
    "odm-orm-batch",
    "tokio-postgres",
    "postgres-sync",
];
/// Command-line flags.
#[derive(Debug, Clone)]
pub struct Args {
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Concurrency levels.
    pub levels: Vec<usize>,
    /// Measured window per cell.
    pub duration: Duration,
    /// Warm-up per cell (at least).
    pub warmup: Duration,
    /// Contenders to run, in order.
    pub contenders: Vec<String>,
    /// Times each cell runs; the median run is reported, with the spread.
    pub repeats: usize,
    /// Connections of odm-raw and odm-pool.
    pub connections: usize,
    /// `pool_size` of odm-orm's mapper.
    pub orm_connections: usize,
    /// `pool_max_shared` of odm-orm's mapper (`None`: the pool's default).
    pub orm_max_shared: Option<usize>,
    /// Tasks of the scale run, if any.
    pub scale: Option<usize>,
    /// `pool_size` of the scale run.
    pub scale_pool: usize,
    /// Rows written per contender of the bulk section, if it runs.
    pub bulk: Option<usize>,
    /// Rows read per contender of the bulk section's `stream`.
    pub bulk_stream_rows: usize,
    /// Skip the contender × workload × level table.
    pub no_matrix: bool,
}

impl Args {
    /// Usage text.
    pub const USAGE: &'static str = "\
usage: cargo run --release --example bench -- [FLAGS]

  --workloads LIST      db,queries,updates,fortunes (default: all)
  --levels LIST         concurrent tasks per cell (default: 1,16,256,1024)
  --duration SECS       measured window per cell (default: 0.6)
  --warmup SECS         warm-up per cell, extended until every task finished
                        a request (default: 0.2)
  --repeats N           runs of each cell; the median is reported with the
                        spread (max - min) / median of queries/s (default: 1)
  --contenders LIST     pgbench,pgbench-pipe,odm-raw,odm-raw-tls,odm-pool,
                        odm-pool-nocache,odm-pool-pgbouncer,odm-orm,
                        odm-orm-commit-with,odm-orm-autocommit,odm-orm-batch,
                        tokio-postgres,postgres-sync
                        (default: all)
  --connections N       connections of odm-raw(-tls) and odm-pool(-*), and
                        PgBouncer's server connections (default: cores)
  --orm-connections N   pool_size of odm-orm(-autocommit, -batch) (default: 4 x cores)
  --orm-max-shared N    pool_max_shared of odm-orm(-autocommit, -batch): most
                        connections shared statements spread over (default:
                        the pool's, one per scheduler thread)
  --scale [TASKS]       also run TASKS (10,000) green tasks on db through one
                        pool and report memory per task
  --scale-pool N        pool_size of the scale run (default: 4)
  --bulk [ROWS]         also run the bulk section: ROWS (100,000) rows written
                        by add one by one (a tenth), add_all and raw COPY, and
                        --bulk-stream-rows read by iter() and all()
  --bulk-stream-rows N  rows read by the bulk section (default: 1,000,000)
  --no-matrix           skip the contender x workload x level table (run
                        only --scale and --bulk)

DATABASE_URL names the server to use; without it a throwaway cluster runs.
Results: stdout and target/bench/{bench.json,bench.md,throughput.svg}.";

    /// Parses the flags (without the program name).
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut parsed = Args {
            workloads: Workload::ALL.to_vec(),
            levels: vec![1, 16, 256, 1024],
            duration: Duration::from_millis(600),
            warmup: Duration::from_millis(200),
            contenders: CONTENDERS.map(String::from).to_vec(),
            repeats: 1,
            connections: cores,
            orm_connections: 4 * cores,
            orm_max_shared: None,
            scale: None,
            scale_pool: 4,
            bulk: None,
            bulk_stream_rows: 1_000_000,
            no_matrix: false,
        };
        let mut pending: Option<String> = None;
        while let Some(flag) = pending.take().or_else(|| args.next()) {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--workloads" => parsed.workloads = Workload::parse_list(&value()?)?,
                "--levels" => parsed.levels = positive_list("--levels", &value()?)?,
                "--duration" => parsed.duration = seconds("--duration", &value()?)?,
                "--warmup" => {
                    let v = value()?;
                    parsed.warmup = if v == "0" {
                        Duration::ZERO
                    } else {
                        seconds("--warmup", &v)?
                    }
                }
                "--contenders" => {
                    let list = value()?;
                    parsed.contenders = Vec::new();
                    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !CONTENDERS.contains(&name) {
                            return Err(format!(
                                "--contenders: unknown contender `{name}` (expected one of {})",
                                CONTENDERS.join(", ")
                            ));
                        }
                        if !parsed.contenders.iter().any(|c| c == name) {
                            parsed.contenders.push(name.to_owned());
                        }
                    }
                    if parsed.contenders.is_empty() {
                        return Err("--contenders: no contender given".into());
                    }
                }
                "--repeats" => parsed.repeats = positive("--repeats", &value()?)?,
                "--connections" => {
                    parsed.connections = positive("--connections", &value()?)?;
                }
                "--orm-connections" => {
                    parsed.orm_connections = positive("--orm-connections", &value()?)?;
                }
                "--orm-max-shared" => {
                    parsed.orm_max_shared = Some(positive("--orm-max-shared", &value()?)?);
                }
                "--scale" => {
                    // An optional task count may follow.
                    match args.next() {
                        Some(next) if !next.starts_with("--") => {
                            parsed.scale = Some(positive("--scale", &next)?);
                        }
                        other => {
                            parsed.scale = Some(10_000);
                            pending = other;
                        }
                    }
                }
                "--scale-pool" => parsed.scale_pool = positive("--scale-pool", &value()?)?,
                "--bulk" => match args.next() {
                    Some(next) if !next.starts_with("--") => {
                        parsed.bulk = Some(positive("--bulk", &next)?);
                    }
                    other => {
                        parsed.bulk = Some(100_000);
                        pending = other;
                    }
                },
                "--bulk-stream-rows" => {
                    parsed.bulk_stream_rows = positive("--bulk-stream-rows", &value()?)?;
                }
                "--no-matrix" => parsed.no_matrix = true,
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown flag `{other}`")),
            }
        }
        Ok(parsed)
    }
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: `{value}` is not a positive integer")),
    }
}

fn positive_list(flag: &str, value: &str) -> Result<Vec<usize>, String> {
    let mut list = value
        .split(',')
        .map(|v| positive(flag, v))
        .collect::<Result<Vec<_>, _>>()?;
    list.dedup();
    Ok(list)
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{flag}: `{value}` is not a positive number of seconds"
        )),
    }
}

/// The positive whole number at `position` of a fixed-load program's
/// command line (`driver_load`, `orm_load`, `orm_tx_load`), `default` when
/// it is absent; an error naming the position otherwise.
pub fn positional(position: usize, default: usize) -> Result<usize, String> {
    match std::env::args().nth(position) {
        None => Ok(default),
        Some(text) => {
            text.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("argument {position} must be a positive number, got `{text}`")
            })
        }
    }
}
