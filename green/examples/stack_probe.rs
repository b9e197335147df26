//! Measures how much coroutine stack representative green workloads use,
//! and the resident memory of parked workers.
//!
//! `cargo run --release -p green --example stack_probe` (and again with
//! `RUST_BACKTRACE=1` to see the panic-with-backtrace path). For each
//! workload may prints `stack size = S, used size = U` in machine words
//! (multiply by 8 for bytes) when the probing pool's worker exits.
//! `stack_probe overflow` recurses past a 32 KiB worker stack to show what
//! an overflow does (the worker is lost, the task fails with `StackOverflow`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use green::{GreenLock, GreenPool};

/// Runs `work` on a fresh one-worker pool with a 1 MiB tracked stack.
fn probe(label: &str, work: impl FnOnce() + Send + 'static) {
    println!("--- {label}");
    let pool = GreenPool::builder()
        .max_workers(1)
        .stack_size(1024 * 1024)
        .report_stack_usage(true)
        .build()
        .expect("valid pool");
    let _ = pool.submit(work).expect("open pool").join();
    pool.shutdown();
    // the worker prints its usage as it finishes, just after shutdown returns
    std::thread::sleep(Duration::from_millis(50));
}

fn tcp_round_trip() {
    let listener = may::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = may::go!(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).expect("read");
        stream.write_all(&buf[..n]).expect("write");
    });
    let mut client = may::net::TcpStream::connect(addr).expect("connect");
    let message = format!("hello {} from {:?}", 42, addr);
    client.write_all(message.as_bytes()).expect("write");
    let mut reply = vec![0u8; message.len()];
    client.read_exact(&mut reply).expect("read");
    assert_eq!(reply, message.as_bytes());
    server.join().expect("server");
}

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn parked_rss(workers: usize) {
    let pool = GreenPool::with_max_workers(workers);
    let lock = Arc::new(GreenLock::new());
    let parked = Arc::new(AtomicUsize::new(0));
    // warm the runtime up before the baseline
    pool.submit(|| ()).expect("open").join().expect("ran");
    let before = rss_kib();
    let holder_lock = Arc::clone(&lock);
    let release = Arc::new(AtomicUsize::new(0));
    let holder_release = Arc::clone(&release);
    let holder = pool
        .submit(move || {
            let _guard = holder_lock.acquire().expect("on a worker");
            while holder_release.load(Ordering::SeqCst) == 0 {
                may::coroutine::sleep(Duration::from_millis(5));
            }
        })
        .expect("open");
    while !lock.locked() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let handles: Vec<_> = (1..workers)
        .map(|_| {
            let lock = Arc::clone(&lock);
            let parked = Arc::clone(&parked);
            pool.submit(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                let _guard = lock.acquire().expect("on a worker");
            })
            .expect("open")
        })
        .collect();
    while lock.waiters() < workers - 1 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let during = rss_kib();
    println!(
        "--- {workers} workers parked on a GreenLock: RSS +{} KiB, {:.1} KiB per parked worker",
        during - before,
        (during - before) as f64 / workers as f64
    );
    release.store(1, Ordering::SeqCst);
    holder.join().expect("holder");
    for handle in handles {
        handle.join().expect("waiter");
    }
    pool.shutdown();
}

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

fn main() {
    if std::env::args().nth(1).as_deref() == Some("overflow") {
        // shows what overflowing a worker stack does: may's guard-page
        // handler prints "coroutine has overflowed its stack" and drops the
        // worker without unwinding it; green fails the task
        let pool = GreenPool::builder()
            .max_workers(1)
            .stack_size(32 * 1024)
            .build()
            .expect("valid");
        let result = pool.submit(|| recurse(256)).expect("open").join();
        println!(
            "overflowing task: {result:?}; workers left: {}",
            pool.worker_count()
        );
        let after = pool
            .submit(|| "a fresh worker ran the next task")
            .expect("open")
            .join();
        println!("{after:?}");
        return;
    }
    probe("empty task", || {});
    probe("formatting, a HashMap and a sort", || {
        let mut map = HashMap::new();
        for i in 0..1000 {
            map.insert(format!("key-{i}"), i * 2);
        }
        let mut values: Vec<_> = map.into_values().collect();
        values.sort_unstable();
        println!("sum {}", values.iter().sum::<i32>());
    });
    probe("TCP round trip through may::net", tcp_round_trip);
    probe("panic inside a task (backtrace per RUST_BACKTRACE)", || {
        panic!("probe panic")
    });
    probe("forced backtrace capture and symbolization", || {
        let backtrace = std::backtrace::Backtrace::force_capture();
        println!("backtrace of {} bytes", backtrace.to_string().len());
    });
    parked_rss(10_000);
}
