//! Pool and runtime configuration: validation errors, builder, introspection.

use green::runtime::{self, DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};
use green::{GreenError, GreenPool, RuntimeConfig};

#[test]
fn a_pool_without_workers_is_refused_with_a_typed_error() {
    let error = GreenPool::builder().max_workers(0).build().unwrap_err();
    assert_eq!(
        error,
        GreenError::InvalidConfig("max_workers must be at least 1".into())
    );
    assert_eq!(
        error.to_string(),
        "invalid green configuration: max_workers must be at least 1"
    );

    let pool = GreenPool::with_max_workers(0);
    let error = pool.submit(|| ()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid green configuration: max_workers must be at least 1"
    );
}

#[test]
fn a_stack_size_out_of_range_is_refused_naming_the_setting() {
    let error = GreenPool::builder().stack_size(1024).build().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "invalid green configuration: stack_size must be between {MIN_STACK_SIZE} and {MAX_STACK_SIZE} bytes, got 1024"
        )
    );
    assert!(GreenPool::builder()
        .stack_size(MAX_STACK_SIZE + 1)
        .build()
        .is_err());
    let error = RuntimeConfig::new().stack_size(10).apply().unwrap_err();
    assert!(error.to_string().contains("stack_size must be between"));
    let error = RuntimeConfig::new()
        .scheduler_threads(0)
        .apply()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid green configuration: scheduler_threads must be at least 1"
    );
}

#[test]
fn the_builder_sets_workers_and_stack_size_and_the_pool_runs_on_it() {
    let pool = GreenPool::builder()
        .max_workers(3)
        .stack_size(64 * 1024)
        .build()
        .unwrap();
    assert_eq!(pool.max_workers(), 3);
    assert_eq!(pool.stack_size(), 64 * 1024);
    assert_eq!(pool.submit(|| "ok").unwrap().join(), Ok("ok"));
    assert_eq!(
        GreenPool::new().stack_size(),
        runtime::settings().default_stack_size
    );
    let debug = format!("{pool:?}");
    assert!(debug.contains("max_workers: 3"), "{debug}");
    pool.shutdown();
}

#[test]
fn configuring_the_runtime_after_it_started_is_refused() {
    let pool = GreenPool::with_max_workers(1);
    pool.submit(|| ()).unwrap().join().unwrap();
    assert!(runtime::started());
    let error = RuntimeConfig::new()
        .scheduler_threads(1)
        .apply()
        .unwrap_err();
    assert_eq!(error, GreenError::RuntimeStarted);
    assert_eq!(
        error.to_string(),
        "the green runtime is already running; configure it before the first task"
    );
    let settings = runtime::settings();
    assert!(settings.scheduler_threads >= 1);
    assert_eq!(settings.default_stack_size, DEFAULT_STACK_SIZE);
    assert_eq!(may::config().get_workers(), settings.scheduler_threads);
}

#[test]
fn pool_lock_and_handles_can_cross_threads() {
    fn send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    fn send<T: Send + std::fmt::Debug>() {}
    send_sync::<GreenPool>();
    send::<green::GreenLock>();
    fn sync<T: Sync>() {}
    sync::<green::GreenLock>();
    send::<green::Submitted<String>>();
}

#[test]
fn dropping_the_last_handle_closes_the_pool_and_running_tasks_still_finish() {
    let pool = GreenPool::with_max_workers(1);
    let running = pool
        .submit(|| {
            may::coroutine::sleep(std::time::Duration::from_millis(20));
            "finished"
        })
        .unwrap();
    let queued = pool.submit(|| "queued too").unwrap();
    drop(pool);
    assert_eq!(running.join(), Ok("finished"));
    assert_eq!(queued.join(), Ok("queued too"));
}
