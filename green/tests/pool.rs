//! GreenPool: lazy growth, reuse, FIFO queueing, panics, nested submit,
//! shutdown and many parked tasks (mirrors pulsar's greenio pool tests).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use green::{GreenError, GreenPool};

/// Polls `condition` until it holds or 10 s pass.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Parks the calling coroutine until `counter` reaches `target`.
fn park_until(counter: &AtomicUsize, target: usize) {
    while counter.load(Ordering::SeqCst) < target {
        may::coroutine::sleep(Duration::from_millis(1));
    }
}

#[test]
fn new_pool_has_a_hundred_workers_at_most_and_starts_none() {
    let pool = GreenPool::new();
    assert_eq!(pool.max_workers(), 100);
    assert_eq!(pool.worker_count(), 0);
    assert!(!pool.closed());
    assert_eq!(GreenPool::with_max_workers(5000).max_workers(), 5000);
}

#[test]
fn run_gives_the_result_of_the_closure_run_on_a_worker_or_its_panic() {
    let pool = GreenPool::with_max_workers(1);
    assert_eq!(pool.run(green::in_green_worker), Ok(true));
    let panicked = pool.run(|| -> u32 { panic!("boom {}", 8) }).unwrap_err();
    assert!(matches!(&panicked, GreenError::Panicked(_)), "{panicked:?}");
    assert!(panicked.to_string().contains("boom 8"), "{panicked}");
    pool.shutdown();
    assert_eq!(pool.run(|| 1), Err(GreenError::Closed));
}

#[test]
fn pool_grows_one_worker_per_concurrent_task_and_reuses_them() {
    let pool = GreenPool::with_max_workers(10);
    assert_eq!(pool.submit(|| 1 + 1).unwrap().join(), Ok(2));
    assert_eq!(pool.worker_count(), 1);
    eventually("the worker goes idle", || pool.idle_workers() == 1);

    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let started = Arc::clone(&started);
            pool.submit(move || {
                started.fetch_add(1, Ordering::SeqCst);
                park_until(&started, 2);
            })
            .unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(pool.worker_count(), 2);

    for i in 0..20 {
        assert_eq!(pool.submit(move || i * 2).unwrap().join(), Ok(i * 2));
    }
    assert_eq!(
        pool.worker_count(),
        2,
        "sequential tasks reuse idle workers"
    );
}

#[test]
fn tasks_beyond_max_workers_wait_in_fifo_order() {
    let pool = GreenPool::with_max_workers(1);
    let release = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::clone(&release);
    let blocker = pool.submit(move || park_until(&gate, 1)).unwrap();
    let queued: Vec<_> = (0..5)
        .map(|i| {
            let order = Arc::clone(&order);
            pool.submit(move || order.lock().unwrap().push(i)).unwrap()
        })
        .collect();
    assert_eq!(pool.queued(), 5);
    assert_eq!(pool.worker_count(), 1);
    release.store(1, Ordering::SeqCst);
    blocker.join().unwrap();
    for handle in queued {
        handle.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_panicking_task_reports_its_message_and_the_pool_keeps_working() {
    let pool = GreenPool::with_max_workers(1);
    let error = pool
        .submit(|| -> u32 { panic!("boom {}", 7) })
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(error, GreenError::Panicked("boom 7".into()));
    assert_eq!(error.to_string(), "task panicked: boom 7");
    let error = pool
        .submit(|| std::panic::panic_any(42_u8))
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "task panicked: panic payload is not a string"
    );
    assert_eq!(
        pool.submit(|| "still alive").unwrap().join(),
        Ok("still alive")
    );
    assert_eq!(pool.worker_count(), 1);
}

#[test]
fn an_error_returned_by_a_task_comes_back_as_its_value() {
    let pool = GreenPool::with_max_workers(2);
    let result = pool.submit(|| "x".parse::<i32>()).unwrap().join().unwrap();
    assert_eq!(
        result.unwrap_err().to_string(),
        "invalid digit found in string"
    );
}

#[test]
fn nested_submit_on_a_full_pool_runs_inline() {
    let pool = GreenPool::with_max_workers(1);
    let inner_pool = pool.clone();
    let other = GreenPool::with_max_workers(1);
    let value = pool
        .submit(move || {
            assert!(inner_pool.in_green_worker());
            assert!(green::in_green_worker());
            assert!(!other.in_green_worker());
            let nested = inner_pool.submit(|| 21).unwrap();
            assert!(nested.is_finished(), "nested submit ran inline");
            let panicked = inner_pool
                .submit(|| -> i32 { panic!("inner") })
                .unwrap()
                .join();
            assert_eq!(panicked, Err(GreenError::Panicked("inner".into())));
            nested.join().unwrap() * 2
        })
        .unwrap()
        .join();
    assert_eq!(value, Ok(42));
    assert!(!pool.in_green_worker());
    assert!(!green::in_green_worker());
}

#[test]
fn shutdown_finishes_queued_work_then_refuses_new_tasks() {
    let pool = GreenPool::with_max_workers(2);
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let done = Arc::clone(&done);
            pool.submit(move || {
                may::coroutine::sleep(Duration::from_millis(20));
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    pool.shutdown();
    assert_eq!(
        done.load(Ordering::SeqCst),
        6,
        "queued and running tasks finished"
    );
    assert!(pool.closed());
    assert_eq!(
        pool.worker_count(),
        0,
        "workers exited before shutdown returned"
    );
    for handle in handles {
        assert!(handle.is_finished());
    }
    let error = pool.submit(|| ()).unwrap_err();
    assert_eq!(error, GreenError::Closed);
    assert_eq!(
        error.to_string(),
        "cannot schedule new tasks after shutdown"
    );
    pool.shutdown();
}

#[test]
fn shutdown_of_an_idle_pool_stops_its_parked_workers() {
    let pool = GreenPool::with_max_workers(4);
    for _ in 0..3 {
        pool.submit(|| ()).unwrap().join().unwrap();
    }
    eventually("the worker goes idle", || pool.idle_workers() >= 1);
    pool.shutdown();
    assert_eq!(pool.worker_count(), 0);
    assert_eq!(pool.idle_workers(), 0);
}

#[test]
fn shutdown_from_a_coroutine_parks_and_from_an_own_worker_does_not_wait() {
    let pool = GreenPool::with_max_workers(2);
    let other = GreenPool::with_max_workers(1);
    let target = pool.clone();
    pool.submit(|| may::coroutine::sleep(Duration::from_millis(20)))
        .unwrap();
    other
        .submit(move || target.shutdown())
        .unwrap()
        .join()
        .unwrap();
    assert!(pool.closed());
    assert_eq!(pool.worker_count(), 0);

    let own = GreenPool::with_max_workers(1);
    let inner = own.clone();
    let after = own
        .submit(move || {
            inner.shutdown();
            (inner.closed(), inner.submit(|| ()).err())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(after, (true, Some(GreenError::Closed)));
    eventually("the last worker exits", || own.worker_count() == 0);
}

/// Resident set size of this process in KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_sleeping_tasks_run_concurrently() {
    const TASKS: usize = 10_000;
    let pool = GreenPool::with_max_workers(TASKS);
    let parked = Arc::new(AtomicUsize::new(0));
    let rss_before = rss_kib();
    let start = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let parked = Arc::clone(&parked);
            pool.submit(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                may::coroutine::sleep(Duration::from_millis(10));
                i
            })
            .unwrap()
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = start.elapsed();
    let rss_after = rss_kib();
    assert_eq!(total, TASKS * (TASKS - 1) / 2);
    assert_eq!(parked.load(Ordering::SeqCst), TASKS);
    eprintln!(
        "{TASKS} tasks x 10 ms: {elapsed:?} ({} workers); RSS grew {} KiB, {:.1} KiB per worker",
        pool.worker_count(),
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) as f64 / pool.worker_count() as f64
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "took {elapsed:?}; sequentially it would be 100 s"
    );
    pool.shutdown();
}

#[test]
fn a_bounded_queue_refuses_tasks_past_its_limit_and_accepts_again_once_drained() {
    let pool = GreenPool::builder()
        .max_workers(2)
        .max_queued(3)
        .build()
        .unwrap();
    assert_eq!(pool.max_queued(), Some(3));
    assert_eq!(GreenPool::new().max_queued(), None, "unbounded by default");
    let release = Arc::new(AtomicUsize::new(0));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let gate = Arc::clone(&release);
            pool.submit(move || park_until(&gate, 1)).unwrap()
        })
        .collect();
    let queued: Vec<_> = (0..3).map(|i| pool.submit(move || i).unwrap()).collect();
    assert_eq!(pool.queued(), 3);
    for _ in 0..5 {
        let refused = pool.submit(|| 99).unwrap_err();
        assert_eq!(refused, GreenError::QueueFull { max_queued: 3 });
        assert!(refused.is_queue_full());
        assert!(refused.to_string().contains("queue is full"), "{refused}");
    }
    assert_eq!(pool.queued(), 3, "a refused task is not queued");

    release.store(1, Ordering::SeqCst);
    for handle in busy {
        handle.join().unwrap();
    }
    let values: Vec<_> = queued.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(values, vec![0, 1, 2]);
    assert_eq!(pool.run(|| 5), Ok(5), "accepted again once drained");
}

#[test]
fn a_queue_bound_of_zero_runs_a_task_at_once_or_refuses_it_but_never_an_inline_one() {
    let pool = GreenPool::builder()
        .max_workers(1)
        .max_queued(0)
        .build()
        .unwrap();
    let release = Arc::new(AtomicUsize::new(0));
    let gate = Arc::clone(&release);
    let own = pool.clone();
    let busy = pool
        .submit(move || {
            // the only worker is busy (this task): its own submit runs inline
            let inline = own.run(|| 7);
            park_until(&gate, 1);
            inline
        })
        .unwrap();
    eventually("the worker is busy", || pool.worker_count() == 1);
    assert!(pool.submit(|| ()).unwrap_err().is_queue_full());
    release.store(1, Ordering::SeqCst);
    assert_eq!(busy.join(), Ok(Ok(7)));
    eventually("the worker goes idle", || pool.idle_workers() == 1);
    assert_eq!(pool.run(|| 3), Ok(3));
}
