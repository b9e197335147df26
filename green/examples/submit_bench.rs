//! Throughput of the submit → worker → join hot path for an empty task.
//!
//! `cargo run --release -p green --example submit_bench [tasks]`
//! Reports tasks/second for: submit+join one at a time from a plain thread,
//! the same from a coroutine (a task of another pool), and a pipelined batch
//! (submit all, then join all) from a plain thread.

use std::time::Instant;

use green::GreenPool;

fn one_at_a_time(pool: &GreenPool, tasks: usize) -> f64 {
    let start = Instant::now();
    for i in 0..tasks {
        let value = pool.submit(move || i).expect("open").join().expect("ran");
        std::hint::black_box(value);
    }
    tasks as f64 / start.elapsed().as_secs_f64()
}

fn pipelined(pool: &GreenPool, tasks: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|i| pool.submit(move || i).expect("open"))
        .collect();
    for handle in handles {
        std::hint::black_box(handle.join().expect("ran"));
    }
    tasks as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let tasks: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let pool = GreenPool::new();
    // warm up: start the runtime and a few workers
    pipelined(&pool, 1000);

    let thread_rate = one_at_a_time(&pool, tasks);
    println!("plain thread, submit+join one at a time: {thread_rate:>12.0} tasks/s");

    let caller = GreenPool::with_max_workers(1);
    let target = pool.clone();
    let co_rate = caller
        .submit(move || one_at_a_time(&target, tasks))
        .expect("open")
        .join()
        .expect("ran");
    println!("coroutine, submit+join one at a time:    {co_rate:>12.0} tasks/s");

    let batch_rate = pipelined(&pool, tasks);
    println!("plain thread, submit all then join all:  {batch_rate:>12.0} tasks/s");

    let target = pool.clone();
    let co_batch = caller
        .submit(move || pipelined(&target, tasks))
        .expect("open")
        .join()
        .expect("ran");
    println!("coroutine, submit all then join all:     {co_batch:>12.0} tasks/s");
    println!("workers used: {}", pool.worker_count());
    pool.shutdown();
    caller.shutdown();
}
