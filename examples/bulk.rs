//! Bulk work measured: `Session::add_all` against one-by-one
//! `Session::add` and a raw `COPY`, and `Query::iter` against `all()`.
//!
//! ```text
//! cargo run --release --example bulk              # 100,000 rows
//! cargo run --release --example bulk -- 1000000   # another row count
//! ```
//!
//! Uses `DATABASE_URL` when set (creates table `bulk_item`, drops it at the
//! end), else a throwaway cluster. Prints rows/s for each way of writing
//! (each in one transaction, in one green task) and of reading back, with
//! the growth of resident memory while reading.
//!
//! 2026-12-01, release build, throwaway cluster on the same 2-core machine
//! under heavy load from other builds (load average about 20), 100,000
//! rows (one-by-one `add`: 10,000):
//!
//! | write | rows/s |
//! |---|---|
//! | `add`, one by one | 7,387 |
//! | `add_all`, slices of 10 | 33,994 |
//! | `add_all`, slices of 100 | 56,170 |
//! | `add_all`, 1,000 rows a statement | 88,826 |
//! | raw `COPY` (nothing read back) | 238,544 |
//!
//! | read (1,000,000 rows) | rows/s | resident growth |
//! |---|---|---|
//! | `all()` | 253,090 | 53.4 MiB |
//! | `iter()`, fetch_size 1000 | 463,015 | 0.0 MiB |
//!
//! `COPY` is faster still but returns nothing: reading keys and server
//! defaults back would take a second statement, so `add_all` uses
//! multi-row `INSERT ... RETURNING`.

use std::io::Write;
use std::time::Instant;

use green::GreenPool;
use odm::testing::TempCluster;
use odm::{Mapper, Model};

#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "bulk_item")]
struct Item {
    #[odm(primary_key)]
    id: Option<i64>,
    #[odm(max_length = 80)]
    name: String,
    qty: i32,
    #[odm(default = "0")]
    reserved: Option<i32>,
}

fn items(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| Item {
            name: format!("item number {i}"),
            qty: i as i32,
            ..Default::default()
        })
        .collect()
}

fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// Runs `work` (one committed transaction) on an empty table; prints rows/s.
fn timed(mp: &Mapper, what: &str, rows: usize, work: impl FnOnce() -> odm::Result<()>) {
    mp.begin(|s| s.execute("TRUNCATE bulk_item", &[]).map(drop))
        .expect("truncate");
    let start = Instant::now();
    work().expect(what);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "| {what} | {rows} | {secs:.2} s | {:.0} rows/s |",
        rows as f64 / secs
    );
}

fn run(mp: &Mapper, n: usize) -> odm::Result<()> {
    println!("| write | rows | time | throughput |\n|---|---|---|---|");
    let one_by_one = (n / 10).max(1);
    timed(mp, "add, one by one", one_by_one, || {
        mp.begin(|s| {
            for mut item in items(one_by_one) {
                s.add(&mut item)?;
            }
            Ok(())
        })
    });
    for chunk in [10, 100] {
        timed(mp, &format!("add_all, slices of {chunk}"), n, || {
            mp.begin(|s| {
                let mut all = items(n);
                for slice in all.chunks_mut(chunk) {
                    s.add_all(slice)?;
                }
                Ok(())
            })
        });
    }
    timed(mp, "add_all (1,000 rows a statement)", n, || {
        mp.begin(|s| s.add_all(&mut items(n)))
    });
    timed(mp, "raw COPY (nothing read back)", n, || {
        let rows = items(n);
        let conn = mp.engine(None).expect("default bind").pool().acquire()?;
        conn.batch_execute("BEGIN")?;
        let mut copy = conn.copy_in("COPY bulk_item (name, qty) FROM STDIN")?;
        for item in &rows {
            writeln!(copy, "{}\t{}", item.name, item.qty)?;
        }
        copy.finish()?;
        conn.batch_execute("COMMIT")
    });

    mp.begin(|s| s.execute("TRUNCATE bulk_item", &[]).map(drop))?;
    mp.begin(|s| s.add_all(&mut items(n)))?;
    println!("\n| read | rows | time | throughput | resident growth |\n|---|---|---|---|---|");
    for streaming in [false, true] {
        let before = resident_mib();
        let mut peak = before;
        let start = Instant::now();
        let count = mp.begin(|s| {
            if streaming {
                let mut count = 0usize;
                for item in s.query::<Item>().iter()? {
                    item?;
                    count += 1;
                    if count.is_multiple_of(10_000) {
                        peak = peak.max(resident_mib());
                    }
                }
                Ok(count)
            } else {
                let all = s.query::<Item>().all()?;
                peak = peak.max(resident_mib());
                Ok(all.len())
            }
        })?;
        let secs = start.elapsed().as_secs_f64();
        let what = if streaming {
            "iter (fetch_size 1000)"
        } else {
            "all()"
        };
        println!(
            "| {what} | {count} | {secs:.2} s | {:.0} rows/s | {:.1} MiB |",
            count as f64 / secs,
            peak - before
        );
    }
    let _ = Item::table();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let (url, _cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let cluster = TempCluster::start()?;
            (cluster.url(), Some(cluster))
        }
    };
    let pool = GreenPool::new();
    let mp = Mapper::new(&url)?;
    mp.register::<Item>()?;
    let on_pool = mp.clone();
    pool.run(move || -> odm::Result<()> {
        on_pool.table_create()?;
        let result = run(&on_pool, n);
        on_pool.begin(|s| s.execute("DROP TABLE bulk_item", &[]).map(drop))?;
        result
    })??;
    Ok(())
}
