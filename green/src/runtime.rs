//! Process-wide setup of the may scheduler that runs every green worker.
//!
//! may keeps two settings process-global (`may::config()`): the number of
//! scheduler threads and the default coroutine stack size. green sets them
//! once, lazily, right before it starts its first coroutine. Call
//! [`RuntimeConfig::apply`] before that moment to choose other values.

use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::error::GreenError;

/// Default coroutine stack size, in bytes: 256 KiB of address space.
///
/// Measured with `cargo run [--release] -p green --example stack_probe`
/// (may's stack-usage tracking, see [`GreenPoolBuilder::report_stack_usage`](crate::GreenPoolBuilder::report_stack_usage)):
/// an empty task uses ~1 KiB (release) / ~5 KiB (debug); formatting with a
/// `HashMap` ~3 / ~7 KiB; a TCP round trip through `may::net` ~2 / ~6 KiB;
/// the deepest path found, a panic inside a task with `RUST_BACKTRACE=1`
/// (the panic hook captures and symbolizes a backtrace on the coroutine
/// stack), ~21 / ~22 KiB. 256 KiB leaves more than ten times that for the
/// database driver and ORM paths (re-measure them with the probe). Only the
/// pages a task touches become resident, so a large stack costs address
/// space, not RSS: 10,000 workers parked on a `GreenLock` cost ~8 KiB of RSS
/// each in release builds (~12 KiB in debug builds). Overflowing the stack is
/// fatal to the task and its worker and cannot be caught inside the task: the
/// segmentation fault on the guard page is taken by may, which prints
/// "coroutine has overflowed its stack" and drops the worker without
/// unwinding it (destructors of the task's locals never run, its memory
/// leaks). green then fails the task with
/// [`GreenError::StackOverflow`] and starts
/// a replacement worker for queued tasks. may exits the whole process
/// instead when the overflow overwrote the last words of the stack.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The smallest stack a pool accepts, in bytes.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// The largest stack a pool accepts, in bytes.
pub const MAX_STACK_SIZE: usize = 1024 * 1024 * 1024;

/// The settings the runtime runs with once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Number of may scheduler (OS) threads that run coroutines.
    pub scheduler_threads: usize,
    /// Stack size, in bytes, of pools that do not choose their own.
    pub default_stack_size: usize,
}

/// Settings requested before the runtime starts; `None` while unset.
static REQUESTED: Mutex<Option<RuntimeSettings>> = Mutex::new(None);
/// Settings in force; set exactly once, when the runtime starts.
static STARTED: OnceLock<RuntimeSettings> = OnceLock::new();

/// Configuration of the process-wide green runtime (may's scheduler).
///
/// ```
/// // before the first task of the process:
/// green::RuntimeConfig::new().scheduler_threads(2).stack_size(128 * 1024).apply()?;
/// # Ok::<(), green::GreenError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeConfig {
    scheduler_threads: Option<usize>,
    stack_size: Option<usize>,
}

impl RuntimeConfig {
    /// Defaults: one scheduler thread per core, [`DEFAULT_STACK_SIZE`].
    pub fn new() -> RuntimeConfig {
        RuntimeConfig::default()
    }

    /// Number of scheduler (OS) threads; at least 1.
    pub fn scheduler_threads(mut self, threads: usize) -> RuntimeConfig {
        self.scheduler_threads = Some(threads);
        self
    }

    /// Default coroutine stack size in bytes, between [`MIN_STACK_SIZE`]
    /// and [`MAX_STACK_SIZE`].
    pub fn stack_size(mut self, bytes: usize) -> RuntimeConfig {
        self.stack_size = Some(bytes);
        self
    }

    /// Records the settings for the runtime's start.
    ///
    /// # Errors
    ///
    /// [`GreenError::InvalidConfig`] for a value out of range,
    /// [`GreenError::RuntimeStarted`] once the first green coroutine exists.
    pub fn apply(self) -> Result<(), GreenError> {
        if self.scheduler_threads == Some(0) {
            return Err(GreenError::InvalidConfig(
                "scheduler_threads must be at least 1".into(),
            ));
        }
        if let Some(bytes) = self.stack_size {
            check_stack_size(bytes)?;
        }
        let mut requested = REQUESTED.lock();
        if STARTED.get().is_some() {
            return Err(GreenError::RuntimeStarted);
        }
        let defaults = default_settings();
        *requested = Some(RuntimeSettings {
            scheduler_threads: self.scheduler_threads.unwrap_or(defaults.scheduler_threads),
            default_stack_size: self.stack_size.unwrap_or(defaults.default_stack_size),
        });
        Ok(())
    }
}

/// Checks a stack size in bytes against [`MIN_STACK_SIZE`]..=[`MAX_STACK_SIZE`].
pub(crate) fn check_stack_size(bytes: usize) -> Result<(), GreenError> {
    if (MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&bytes) {
        Ok(())
    } else {
        Err(GreenError::InvalidConfig(format!(
            "stack_size must be between {MIN_STACK_SIZE} and {MAX_STACK_SIZE} bytes, got {bytes}"
        )))
    }
}

fn default_settings() -> RuntimeSettings {
    RuntimeSettings {
        scheduler_threads: std::thread::available_parallelism().map_or(1, usize::from),
        default_stack_size: DEFAULT_STACK_SIZE,
    }
}

/// The settings in force if the runtime started, else the ones it will start with.
pub fn settings() -> RuntimeSettings {
    if let Some(started) = STARTED.get() {
        return *started;
    }
    REQUESTED.lock().unwrap_or_else(default_settings)
}

/// Whether green has configured may and started coroutines.
pub fn started() -> bool {
    STARTED.get().is_some()
}

/// Configures may once (idempotent) and returns the settings in force.
pub(crate) fn start() -> &'static RuntimeSettings {
    if let Some(started) = STARTED.get() {
        return started;
    }
    let requested = REQUESTED.lock();
    STARTED.get_or_init(|| {
        let settings = requested.unwrap_or_else(default_settings);
        may::config()
            .set_workers(settings.scheduler_threads)
            .set_stack_size(stack_words(settings.default_stack_size));
        settings
    })
}

/// may counts stack sizes in machine words; green in bytes.
pub(crate) fn stack_words(bytes: usize) -> usize {
    // an even count: an odd one asks may to track (and print) stack usage
    (bytes / std::mem::size_of::<usize>()) & !1
}
