//! A task that overflows its worker's stack fails with a typed error, and the
//! pool replaces the lost worker. (Its own test binary: an overflow is
//! handled by may's process-wide guard-page signal handler.)

use green::{GreenError, GreenPool};

/// Recurses `depth` frames of about 1 KiB each.
#[inline(never)]
fn recurse(depth: usize) -> u8 {
    let frame = std::hint::black_box([depth as u8; 1024]);
    if depth == 0 {
        frame[0]
    } else {
        recurse(depth - 1).wrapping_add(frame[1023])
    }
}

#[test]
fn a_task_that_overflows_its_stack_fails_and_a_queued_task_still_runs() {
    let pool = GreenPool::builder()
        .max_workers(1)
        .stack_size(32 * 1024)
        .build()
        .unwrap();
    let overflowing = pool.submit(|| recurse(256)).unwrap();
    let queued = pool.submit(|| "ran on a replacement worker").unwrap();
    let error = overflowing.join().unwrap_err();
    assert_eq!(error, GreenError::StackOverflow);
    assert_eq!(
        error.to_string(),
        "task overflowed its coroutine stack; give the pool a larger stack_size"
    );
    assert_eq!(queued.join(), Ok("ran on a replacement worker"));
    assert_eq!(
        pool.submit(|| recurse(4)).unwrap().join().map(|_| ()),
        Ok(())
    );
    pool.shutdown();
    assert_eq!(pool.worker_count(), 0);
}
