//! Failover on a real HA engine: a pg_auto_failover formation
//! (`odm::testing::AutoFailover`: a monitor and two nodes, synchronous
//! replication) under 100 green tasks writing through the ORM, one
//! transaction per write, through the formation's two-host `read-write`
//! URL. Each fault is counted: how long until every task writes again,
//! acknowledged writes against the rows present afterwards (none may be
//! lost), and no task stuck.
//!
//! - the primary's postgres killed with `kill -9`;
//! - a planned switchover (`pg_autoctl perform switchover`);
//! - the old primary back as a secondary: the pool never writes to it, and
//!   reads routed to replicas (a `prefer-standby` URL of both nodes) keep
//!   working throughout.
//!
//! Needs pg_auto_failover (`.ci/run` installs it). The kill test runs in
//! CI; the switchover and rejoin tests take a minute or more each and are
//! `#[ignore]`d: `cargo test --test auto_failover -- --include-ignored
//! --nocapture` runs all and prints the figures docs/scale-out.md reports.

mod green_tasks;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use green_tasks::{on_green, spawn};
use odm::testing::AutoFailover;
use odm::{Engine, Mapper, ReadRoute};

/// One acknowledged write: `id = task * 1e9 + seq`.
#[derive(odm::Model, Debug, Clone, Default)]
struct Ledger {
    #[odm(primary_key)]
    id: i64,
    task: i32,
}

const TASKS: i32 = 100;

/// What the writing tasks saw around one fault.
#[derive(Debug)]
struct Outcome {
    /// From the start of the fault until every task had a write
    /// acknowledged that it began after the fault was done (the kill sent,
    /// the switchover finished).
    every_task_writing_again: Duration,
    /// The longest time any task went without an acknowledged write.
    longest_pause: Duration,
    /// How long the fault itself took (the switchover command, the kill).
    fault_took: Duration,
    acknowledged: usize,
    present: usize,
    lost: usize,
    failed_calls: u64,
    /// Writes refused as read-only (SQLSTATE 25006): a write that reached
    /// a server that was no longer the primary.
    refused_read_only: u64,
    /// Reads through the replica route that failed after the fault.
    failed_reads: u64,
    reads: u64,
}

/// A mapper on the formation's read-write URL with the ledger table, and
/// reads routed to a `prefer-standby` URL of the same nodes.
fn ledger_mapper(formation: &AutoFailover) -> Mapper {
    let params = "connect_timeout=2&pool_size=20&pool_timeout=60";
    let engine = Engine::new(&format!("{}&{params}", formation.url()))
        .unwrap()
        .with_replicas([
            formation.url_with(&format!("target_session_attrs=prefer-standby&{params}"))
        ])
        .unwrap();
    let mp = Mapper::from_engines(vec![("default".into(), engine)]).unwrap();
    mp.register::<Ledger>().unwrap();
    let created = mp.clone();
    on_green(move || created.table_create()).unwrap();
    mp
}

/// Runs 100 writing tasks (and one reading task on the replica route),
/// applies `fault` after two seconds, keeps writing until every task wrote
/// again (at most 120 s) plus one second, then counts.
fn under_load(formation: &AutoFailover, fault: impl FnOnce()) -> Outcome {
    let mp = ledger_mapper(formation);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let fault_at_ms = Arc::new(AtomicU64::new(u64::MAX));
    let failed_reads = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let last_ack_ms: Arc<Vec<AtomicU64>> =
        Arc::new((0..TASKS).map(|_| AtomicU64::new(0)).collect());
    let mut writers = Vec::new();
    for task in 0..TASKS {
        let (mp, stop, last_ack_ms) = (mp.clone(), stop.clone(), last_ack_ms.clone());
        writers.push(spawn(move || {
            let mut acknowledged = Vec::new();
            let (mut failed, mut read_only) = (0u64, 0u64);
            let mut seq: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = i64::from(task) * 1_000_000_000 + seq;
                seq += 1;
                let began = started.elapsed();
                match mp.begin(|s| s.add(&mut Ledger { id, task })) {
                    Ok(()) => {
                        let at = started.elapsed();
                        // When the last acknowledged write began.
                        last_ack_ms[task as usize]
                            .store(began.as_millis() as u64, Ordering::Relaxed);
                        acknowledged.push((id, began, at));
                    }
                    Err(e) => {
                        failed += 1;
                        if e.code() == Some("25006") {
                            read_only += 1;
                        }
                        may::coroutine::sleep(Duration::from_millis(20));
                    }
                }
            }
            (acknowledged, failed, read_only)
        }));
    }
    let reader = {
        let (mp, stop, fault_at_ms) = (mp.clone(), stop.clone(), fault_at_ms.clone());
        let (failed_reads, reads) = (failed_reads.clone(), reads.clone());
        spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let answer = mp.session().and_then(|mut s| {
                    s.set_read_route(ReadRoute::Replica);
                    s.query::<Ledger>().count()
                });
                reads.fetch_add(1, Ordering::Relaxed);
                if answer.is_err()
                    && started.elapsed().as_millis() as u64 > fault_at_ms.load(Ordering::Relaxed)
                {
                    failed_reads.fetch_add(1, Ordering::Relaxed);
                }
                may::coroutine::sleep(Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let fault_at = started.elapsed();
    fault_at_ms.store(fault_at.as_millis() as u64, Ordering::Relaxed);
    fault();
    let fault_done = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while last_ack_ms
        .iter()
        .any(|ms| ms.load(Ordering::Relaxed) <= fault_done.as_millis() as u64)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let (mut failed_calls, mut refused_read_only) = (0, 0);
    let mut every_task_writing_again = Duration::ZERO;
    let mut longest_pause = Duration::ZERO;
    for (task, writer) in writers.into_iter().enumerate() {
        let (acks, failed, read_only) = writer.join().expect("a writing task ended");
        let first_after = acks
            .iter()
            .find(|(_, began, _)| *began > fault_done)
            .map(|(_, _, at)| *at)
            .unwrap_or_else(|| panic!("task {task} never wrote again after the fault"));
        every_task_writing_again = every_task_writing_again.max(first_after - fault_at);
        for pair in acks.windows(2) {
            longest_pause = longest_pause.max(pair[1].2 - pair[0].2);
        }
        acknowledged.extend(acks.into_iter().map(|(id, _, _)| id));
        failed_calls += failed;
        refused_read_only += read_only;
    }
    reader.join().expect("the reading task ended");
    formation.wait_settled().unwrap();
    let counting = mp.clone();
    let present: Vec<i64> = on_green(move || {
        counting.begin(|s| {
            Ok(s.query::<Ledger>()
                .all()?
                .into_iter()
                .map(|l| l.id)
                .collect())
        })
    })
    .unwrap();
    let present_set: std::collections::HashSet<i64> = present.iter().copied().collect();
    let lost = acknowledged
        .iter()
        .filter(|id| !present_set.contains(id))
        .count();
    let outcome = Outcome {
        every_task_writing_again,
        longest_pause,
        fault_took: fault_done - fault_at,
        acknowledged: acknowledged.len(),
        present: present.len(),
        lost,
        failed_calls,
        refused_read_only,
        failed_reads: failed_reads.load(Ordering::Relaxed),
        reads: reads.load(Ordering::Relaxed),
    };
    println!(
        "fault took {:.2} s; every task writing again {:.2} s after it began; longest pause of a \
         task {:.2} s; acknowledged {}, present {}, lost {}; failed calls {} (read-only refusals \
         {}); replica-route reads {} (failed after the fault {})",
        outcome.fault_took.as_secs_f64(),
        outcome.every_task_writing_again.as_secs_f64(),
        outcome.longest_pause.as_secs_f64(),
        outcome.acknowledged,
        outcome.present,
        outcome.lost,
        outcome.failed_calls,
        outcome.refused_read_only,
        outcome.reads,
        outcome.failed_reads
    );
    outcome
}

#[test]
fn tasks_writing_through_the_ha_url_resume_after_the_primarys_postgres_is_killed_and_lose_no_acknowledged_write(
) {
    let formation = AutoFailover::start().unwrap();
    let killed = Mutex::new(None);
    let outcome = under_load(&formation, || {
        *killed.lock().unwrap() = Some(formation.kill_primary_postgres().unwrap());
    });
    println!(
        "killed node {:?}; states after: {:?}",
        killed.lock().unwrap(),
        formation.states().unwrap()
    );
    assert_eq!(outcome.lost, 0, "{outcome:?}");
    assert!(outcome.acknowledged > 0, "{outcome:?}");
    assert!(outcome.present >= outcome.acknowledged, "{outcome:?}");
    assert!(
        outcome.every_task_writing_again < Duration::from_secs(60),
        "{outcome:?}"
    );
}

#[test]
#[ignore = "about a minute: run with --include-ignored"]
fn tasks_writing_through_the_ha_url_resume_after_a_planned_switchover_and_lose_no_acknowledged_write(
) {
    let formation = AutoFailover::start().unwrap();
    let before = formation.primary_index().unwrap();
    let outcome = under_load(&formation, || formation.perform_switchover().unwrap());
    assert_ne!(formation.primary_index().unwrap(), before);
    assert_eq!(outcome.lost, 0, "{outcome:?}");
    assert!(outcome.present >= outcome.acknowledged, "{outcome:?}");
    assert!(
        outcome.every_task_writing_again < Duration::from_secs(60),
        "{outcome:?}"
    );
}

#[test]
#[ignore = "about a minute: run with --include-ignored"]
fn once_the_old_primary_is_back_as_a_secondary_the_pool_never_writes_to_it_and_replica_reads_keep_working(
) {
    let formation = AutoFailover::start().unwrap();
    let first = formation.primary_index().unwrap();
    // The load runs through the kill, the promotion of the other node and
    // the old primary's return as a secondary (pg_rewind, catch-up).
    let outcome = under_load(&formation, || {
        let killed = formation.kill_primary_postgres().unwrap();
        formation.wait_new_primary(killed).unwrap();
    });
    let states = formation.states().unwrap();
    assert_ne!(formation.primary_index().unwrap(), first, "{states:?}");
    assert_eq!(states[first].reported, "secondary", "{states:?}");
    assert_eq!(outcome.lost, 0, "{outcome:?}");
    assert_eq!(outcome.refused_read_only, 0, "{outcome:?}");
    assert_eq!(outcome.failed_reads, 0, "{outcome:?}");
    assert!(outcome.reads > 0, "{outcome:?}");
}

#[test]
fn a_formation_is_gone_when_dropped() {
    let formation = AutoFailover::start().unwrap();
    let ports = formation.ports();
    assert_eq!(ports.len(), 2);
    let states = formation.states().unwrap();
    assert_eq!(states[0].reported, "primary", "{states:?}");
    assert_eq!(states[1].reported, "secondary", "{states:?}");
    drop(formation);
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers"
        );
    }
}
