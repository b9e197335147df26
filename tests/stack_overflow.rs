//! A task that overflows its coroutine stack while holding a pooled
//! connection inside a transaction: green drops it without unwinding (no
//! destructor runs), yet the pool gets its slot back and the server rolls
//! the transaction back and releases its locks — the connection is closed
//! by the hook the checkout registered with `green::on_abandon`. (Its own
//! test binary: an overflow goes through may's process-wide signal
//! handler.)
//!
//! Run: `cargo test --test stack_overflow`

use green::{GreenError, GreenPool};
use odm::pg::{Client, Config, Pool};
use odm::testing::test_database;

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
fn a_task_that_overflows_its_stack_holding_a_transaction_gives_back_the_slot_and_the_locks() {
    let db = test_database().unwrap();
    let url = db.url();
    let green = GreenPool::builder()
        .max_workers(4)
        .stack_size(128 * 1024)
        .build()
        .unwrap();
    let setup = url.clone();
    green
        .run(move || {
            let client = Client::connect(&Config::parse(&setup).unwrap()).unwrap();
            client
                .batch_execute(
                    "CREATE TABLE t (id int4 PRIMARY KEY, v int4); INSERT INTO t VALUES (1, 0)",
                )
                .unwrap();
        })
        .unwrap();
    let pool = Pool::from_url(&format!("{url}?pool_size=1&pool_timeout=5")).unwrap();

    let holder = pool.clone();
    let overflowed = green
        .submit(move || {
            let conn = holder.acquire().unwrap();
            conn.batch_execute("BEGIN; UPDATE t SET v = 1 WHERE id = 1")
                .unwrap();
            // Holds the connection, the open transaction and the row lock.
            recurse(100_000)
        })
        .unwrap()
        .join();
    assert_eq!(overflowed.unwrap_err(), GreenError::StackOverflow);

    let pool2 = pool.clone();
    let value: i32 = green
        .run(move || {
            // The pool's only slot is free again (else this fails after
            // pool_timeout, 5 s), and the row lock is gone (else the update
            // fails after lock_timeout, 2 s).
            let conn = pool2.acquire().unwrap();
            conn.batch_execute("SET lock_timeout = 2000").unwrap();
            conn.execute("UPDATE t SET v = v + 2 WHERE id = 1", &[])
                .unwrap();
            conn.query_one("SELECT v FROM t WHERE id = 1", &[])
                .unwrap()
                .get(0)
        })
        .unwrap();
    assert_eq!(value, 2, "the abandoned transaction was rolled back");
    assert_eq!(pool.size(), 1);
    assert!(pool.stats().connections_discarded >= 1);
}
