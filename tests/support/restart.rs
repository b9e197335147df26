//! Writers through a server restart: green tasks insert numbered rows
//! through a mapper while the cluster restarts; every write that returned
//! `Ok` must be present afterwards, and every task must succeed again after
//! the restart. Shared by `tests/faults.rs` (transactions) and
//! `tests/autocommit.rs` (autocommit sessions).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use odm::pg::{Client, Config};
use odm::testing::{TempCluster, TestDatabase};
use odm::{Error, Mapper};

use super::super::green_tasks::{on_green, spawn};

/// Runs `tasks` writers for `seconds` through a mapper with `pool_size`
/// connections, restarting the cluster after `restart_after`; `write`
/// inserts `(task, seq)` into table `r` and returns `Ok` only when the row
/// is stored. Panics (failing the test) on a lost write, a task that never
/// wrote again, or an error other than a closed connection or a failed
/// connect.
pub fn writes_survive_a_restart<W>(
    tasks: i32,
    pool_size: usize,
    seconds: u64,
    restart_after: Duration,
    write: W,
) where
    W: Fn(&Mapper, i32, i32) -> odm::Result<()> + Clone + Send + 'static,
{
    // A cluster of its own: the restart ends every connection on it.
    let mut cluster = TempCluster::start().unwrap();
    let db = TestDatabase::create_on(&cluster).unwrap();
    let direct = db.url();
    on_green(move || {
        let client = Client::connect(&Config::parse(&direct).unwrap()).unwrap();
        client
            .batch_execute("CREATE TABLE r (task int4, seq int4, PRIMARY KEY (task, seq))")
            .unwrap();
    });
    let url = format!("{}?pool_size={pool_size}&pool_timeout=20", db.url());
    let mapper = Mapper::new(&url).unwrap();
    let restarted = Arc::new(AtomicBool::new(false));
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let writers: Vec<_> = (0..tasks)
        .map(|task| {
            let (mapper, restarted, write) = (mapper.clone(), restarted.clone(), write.clone());
            spawn(move || {
                let mut acknowledged = Vec::new();
                let mut ok_after_restart = 0;
                let mut seq = 0;
                while Instant::now() < stop_at {
                    seq += 1;
                    let after = restarted.load(Ordering::SeqCst);
                    match write(&mapper, task, seq) {
                        Ok(()) => {
                            acknowledged.push(seq);
                            if after {
                                ok_after_restart += 1;
                            }
                        }
                        Err(e) => assert!(
                            e.is_closed() || matches!(e, Error::Connect { .. }),
                            "an unexpected error: {e:?}"
                        ),
                    }
                }
                (task, acknowledged, ok_after_restart)
            })
        })
        .collect();
    thread::sleep(restart_after);
    let started = Instant::now();
    cluster.restart().unwrap();
    restarted.store(true, Ordering::SeqCst);
    eprintln!(
        "fault: server restart (fast) took {:.2?}",
        started.elapsed()
    );
    let results: Vec<_> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    for (task, _, after) in &results {
        assert!(
            *after > 0,
            "task {task} never succeeded again after the restart"
        );
    }
    let url = db.url();
    let present: HashSet<(i32, i32)> = on_green(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        client
            .query("SELECT task, seq FROM r", &[])
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    });
    let acknowledged: usize = results.iter().map(|(_, a, _)| a.len()).sum();
    let lost: Vec<(i32, i32)> = results
        .iter()
        .flat_map(|(task, seqs, _)| seqs.iter().map(move |seq| (*task, *seq)))
        .filter(|row| !present.contains(row))
        .collect();
    eprintln!(
        "restart: {acknowledged} writes acknowledged, {} present, {} lost",
        present.len(),
        lost.len()
    );
    assert!(acknowledged > 0);
    assert!(lost.is_empty(), "acknowledged but missing: {lost:?}");
}
