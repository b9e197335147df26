//! GreenLock: refused off-pool, parks waiters FIFO, guard releases on drop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use green::{GreenError, GreenLock, GreenPool};

/// Parks the calling coroutine until `condition` holds (30 s at most: generous, the machine may be loaded).
fn park_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        may::coroutine::sleep(Duration::from_millis(1));
    }
}

#[test]
fn acquire_off_a_coroutine_is_refused_and_the_lock_stays_unlocked() {
    let lock = GreenLock::new();
    let error = lock.acquire().unwrap_err();
    assert_eq!(error, GreenError::WrongContext("GreenLock::acquire"));
    assert!(error.to_string().contains("acquire in main greenlet"));
    assert_eq!(
        error.to_string(),
        "acquire in main greenlet: GreenLock::acquire must run on a green worker (submit it to a GreenPool)"
    );
    assert!(!lock.locked());
    assert_eq!(lock.waiters(), 0);
}

#[test]
fn the_guard_holds_the_lock_until_dropped() {
    let pool = GreenPool::with_max_workers(2);
    let lock = Arc::new(GreenLock::new());
    let task_lock = Arc::clone(&lock);
    let seen = pool
        .submit(move || {
            let guard = task_lock.acquire().unwrap();
            let held = task_lock.locked();
            drop(guard);
            (held, task_lock.locked())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(seen, (true, false));
    assert!(!lock.locked());
}

#[test]
fn contending_tasks_park_inside_the_critical_section_and_are_served_in_arrival_order() {
    const WAITERS: usize = 8;
    // more waiters than scheduler threads: if a waiter blocked its OS thread
    // the holder could never run again and this test would hang
    let pool = GreenPool::with_max_workers(WAITERS + 1);
    let lock = Arc::new(GreenLock::new());
    let order = Arc::new(Mutex::new(Vec::new()));
    let inside = Arc::new(AtomicUsize::new(0));
    let most_inside = Arc::new(AtomicUsize::new(0));

    let task = |id: usize| {
        let lock = Arc::clone(&lock);
        let order = Arc::clone(&order);
        let inside = Arc::clone(&inside);
        let most_inside = Arc::clone(&most_inside);
        move || {
            let _guard = lock.acquire().unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most_inside.fetch_max(now, Ordering::SeqCst);
            order.lock().unwrap().push(id);
            if id == 0 {
                // the first holder keeps the lock until every other task queued
                park_until("all waiters queued", || lock.waiters() == WAITERS);
            }
            // park inside the critical section
            may::coroutine::sleep(Duration::from_millis(5));
            inside.fetch_sub(1, Ordering::SeqCst);
        }
    };

    let mut handles = vec![pool.submit(task(0)).unwrap()];
    let probe = GreenPool::with_max_workers(1);
    let probe_lock = Arc::clone(&lock);
    probe
        .submit(move || park_until("the first holder", || probe_lock.locked()))
        .unwrap()
        .join()
        .unwrap();
    for id in 1..=WAITERS {
        handles.push(pool.submit(task(id)).unwrap());
        let probe_lock = Arc::clone(&lock);
        probe
            .submit(move || park_until("the waiter queued", || probe_lock.waiters() == id))
            .unwrap()
            .join()
            .unwrap();
    }
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..=WAITERS).collect::<Vec<_>>());
    assert_eq!(most_inside.load(Ordering::SeqCst), 1, "mutual exclusion");
    assert!(!lock.locked());
    assert_eq!(lock.waiters(), 0);
}
