//! `GreenPool`: run plain synchronous closures on reusable may coroutines.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use may::coroutine::Coroutine;
use parking_lot::Mutex;

use crate::builder::GreenPoolBuilder;
use crate::error::GreenError;
use crate::runtime;
use crate::submitted::{run_catching, Run, Submitted, Task};
use crate::waiter::{park_current, Waiter};

/// The default number of workers of [`GreenPool::new`].
pub const DEFAULT_MAX_WORKERS: usize = 100;

type Job = Arc<dyn Run>;

may::coroutine_local!(static WORKER: RefCell<Option<WorkerRecord>> = RefCell::new(None));

/// What a worker coroutine keeps in its coroutine-local storage: its pool,
/// and the job it is running. may drops coroutine-locals when a coroutine
/// ends, also when a stack overflow abandons it without unwinding: then the
/// record still holds the job, which it fails with
/// [`GreenError::StackOverflow`] instead of leaving its caller waiting.
struct WorkerRecord {
    shared: Arc<Shared>,
    running: Option<Job>,
}

impl Drop for WorkerRecord {
    fn drop(&mut self) {
        if let Some(job) = self.running.take() {
            job.abandon(GreenError::StackOverflow);
            self.shared.worker_lost();
        }
    }
}

/// Source of pool ids; 0 means "not a worker".
static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(1);

/// A pool of green workers (may coroutines) that run submitted closures.
///
/// Workers start lazily, one per task, up to [`max_workers`](Self::max_workers),
/// and are reused; tasks beyond that wait in FIFO order. The handle is a cheap
/// `Clone` (an `Arc`), `Send` and `Sync`. When the last handle is dropped the
/// pool closes without waiting: queued and running tasks still finish, then
/// the workers exit. See the crate docs for what blocks and what parks.
#[derive(Clone)]
pub struct GreenPool {
    handle: Arc<Handle>,
}

/// Owned by user handles only; closing the pool when the last one goes.
struct Handle {
    shared: Arc<Shared>,
}

/// Owned by the handles and by every worker.
struct Shared {
    id: usize,
    max_workers: usize,
    /// Stack size in bytes; `None` follows the runtime default.
    stack_size: Option<usize>,
    report_stack_usage: bool,
    /// A configuration error reported by every `submit` (`with_max_workers(0)`).
    config_error: Option<GreenError>,
    closed: AtomicBool,
    state: Mutex<State>,
}

struct State {
    /// Tasks waiting for a worker; non-empty only while every worker is busy.
    queue: VecDeque<Job>,
    /// Parked workers, most recently idle last (reused first).
    idle: Vec<Arc<Mailbox>>,
    /// Live workers (busy or idle).
    workers: usize,
    closed: bool,
    /// Parties waiting in `shutdown` for the last worker to exit.
    exit_waiters: Vec<Waiter>,
}

/// How a parked worker receives its next job.
struct Mailbox {
    co: Coroutine,
    mail: Mutex<Mail>,
}

/// A worker's next step once its job is done.
enum Next {
    Run(Job),
    Wait,
    Exit,
}

enum Mail {
    Empty,
    Job(Job),
    Exit,
}

impl Mailbox {
    fn send(&self, mail: Mail) {
        *self.mail.lock() = mail;
        self.co.unpark();
    }
}

impl GreenPool {
    /// A pool of at most [`DEFAULT_MAX_WORKERS`] (100) workers.
    pub fn new() -> GreenPool {
        GreenPool::with_max_workers(DEFAULT_MAX_WORKERS)
    }

    /// A pool of at most `max_workers` workers.
    ///
    /// `0` is not a valid size: such a pool refuses every task with
    /// [`GreenError::InvalidConfig`] (use [`GreenPool::builder`] to get the
    /// error at construction instead).
    pub fn with_max_workers(max_workers: usize) -> GreenPool {
        match GreenPool::builder().max_workers(max_workers).build() {
            Ok(pool) => pool,
            Err(error) => GreenPool::from_parts(max_workers, None, false, Some(error)),
        }
    }

    /// A builder to choose `max_workers`, `stack_size` and stack reporting.
    pub fn builder() -> GreenPoolBuilder {
        GreenPoolBuilder::new()
    }

    pub(crate) fn from_parts(
        max_workers: usize,
        stack_size: Option<usize>,
        report_stack_usage: bool,
        config_error: Option<GreenError>,
    ) -> GreenPool {
        let shared = Shared {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            max_workers,
            stack_size,
            report_stack_usage,
            config_error,
            closed: AtomicBool::new(false),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: Vec::new(),
                workers: 0,
                closed: false,
                exit_waiters: Vec::new(),
            }),
        };
        GreenPool {
            handle: Arc::new(Handle {
                shared: Arc::new(shared),
            }),
        }
    }

    /// Runs `func` on a worker and waits for its result: [`submit`](Self::submit)
    /// then [`Submitted::join`]. The one way a plain thread (a `main`, a
    /// test) runs synchronous database code on the pool and takes its result;
    /// on a coroutine the wait parks it.
    ///
    /// ```
    /// let pool = green::GreenPool::with_max_workers(2);
    /// assert_eq!(pool.run(|| green::in_green_worker()), Ok(true));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), and [`GreenError::Panicked`] when `func`
    /// panics.
    pub fn run<F, T>(&self, func: F) -> Result<T, GreenError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit(func)?.join()
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Runs `func` on a worker and returns a handle to its result.
    ///
    /// Called from one of this pool's own workers, `func` runs inline, right
    /// away, so a task that submits to its own full pool cannot deadlock.
    /// Otherwise the task goes to an idle worker, a new worker (below
    /// `max_workers`), or the back of the FIFO queue. `submit` never blocks.
    ///
    /// # Errors
    ///
    /// [`GreenError::Closed`] after [`shutdown`](Self::shutdown) (also for
    /// inline calls); [`GreenError::InvalidConfig`] for a pool built with
    /// `max_workers == 0`; [`GreenError::Spawn`] if the first worker cannot start.
    pub fn submit<F, T>(&self, func: F) -> Result<Submitted<T>, GreenError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.shared();
        if let Some(error) = &shared.config_error {
            return Err(error.clone());
        }
        if shared.closed.load(Ordering::Acquire) {
            return Err(GreenError::Closed);
        }
        if self.in_green_worker() {
            return Ok(Submitted::ready(run_catching(func)));
        }
        let task = Arc::new(Task::new(func));
        let submitted = Submitted::from_task(task.clone());
        shared.dispatch(task)?;
        Ok(submitted)
    }

    /// Whether the caller runs on one of this pool's workers.
    pub fn in_green_worker(&self) -> bool {
        let id = self.shared().id;
        may::coroutine::is_coroutine()
            && WORKER.with(|record| {
                record
                    .borrow()
                    .as_ref()
                    .is_some_and(|record| record.shared.id == id)
            })
    }

    /// Whether [`shutdown`](Self::shutdown) was called (or every handle dropped).
    pub fn closed(&self) -> bool {
        self.shared().closed.load(Ordering::Acquire)
    }

    /// The most workers this pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.shared().max_workers
    }

    /// The stack size of this pool's workers, in bytes.
    pub fn stack_size(&self) -> usize {
        self.shared()
            .stack_size
            .unwrap_or_else(|| runtime::settings().default_stack_size)
    }

    /// Live workers, busy or idle (introspection; a snapshot).
    pub fn worker_count(&self) -> usize {
        self.shared().state.lock().workers
    }

    /// Workers parked waiting for a task (introspection; a snapshot).
    pub fn idle_workers(&self) -> usize {
        self.shared().state.lock().idle.len()
    }

    /// Tasks waiting for a free worker (introspection; a snapshot).
    pub fn queued(&self) -> usize {
        self.shared().state.lock().queue.len()
    }

    /// Closes the pool and waits for its workers to exit.
    ///
    /// Later `submit` calls fail with [`GreenError::Closed`]; tasks already
    /// queued or running still finish. It returns when every worker has
    /// exited (blocking a plain thread, parking a coroutine); [`closed`](Self::closed)
    /// is then true. Called from one of this pool's own workers it only
    /// closes and returns (waiting for itself would deadlock); the workers
    /// exit once the queue is empty. Calling it again is harmless.
    pub fn shutdown(&self) {
        let shared = self.shared();
        shared.close();
        if self.in_green_worker() {
            return;
        }
        let mut me: Option<Waiter> = None;
        loop {
            {
                let mut state = shared.state.lock();
                if state.workers == 0 {
                    return;
                }
                if me.is_none() {
                    let waiter = Waiter::current();
                    me = Some(waiter.clone());
                    state.exit_waiters.push(waiter);
                }
            }
            park_current();
        }
    }
}

impl Default for GreenPool {
    fn default() -> GreenPool {
        GreenPool::new()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Shared {
    /// Hands `job` to an idle worker, a new worker, or the queue.
    fn dispatch(self: &Arc<Shared>, job: Job) -> Result<(), GreenError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(GreenError::Closed);
        }
        if let Some(mailbox) = state.idle.pop() {
            drop(state);
            mailbox.send(Mail::Job(job));
            return Ok(());
        }
        if state.workers < self.max_workers {
            state.workers += 1;
            drop(state);
            return self.spawn_worker(job).inspect_err(|_| self.worker_exited());
        }
        state.queue.push_back(job);
        Ok(())
    }

    /// Starts a worker coroutine whose first job is `job`.
    fn spawn_worker(self: &Arc<Shared>, job: Job) -> Result<(), GreenError> {
        let settings = runtime::start();
        let bytes = self.stack_size.unwrap_or(settings.default_stack_size);
        let mut words = runtime::stack_words(bytes);
        if self.report_stack_usage {
            words |= 1;
        }
        let shared = Arc::clone(self);
        let builder = may::coroutine::Builder::new().stack_size(words);
        // SAFETY: may marks spawn unsafe because a coroutine must not keep
        // thread-local state across a park and because overflowing its stack
        // is fatal. The worker loop keeps no thread-locals (only
        // coroutine-locals), and the stack size is validated and documented.
        let spawned = catch_unwind(AssertUnwindSafe(|| unsafe {
            builder.spawn(move || worker_main(shared, job))
        }));
        match spawned {
            Ok(Ok(_detached)) => Ok(()),
            Ok(Err(error)) => Err(GreenError::Spawn(error.to_string())),
            Err(_) => Err(GreenError::Spawn(format!(
                "cannot map a {bytes}-byte coroutine stack"
            ))),
        }
    }

    /// What a worker does after its current job, decided before the job's
    /// result is handed over, so that a caller who joins and submits again
    /// finds this worker idle instead of starting another one.
    fn after_job(&self, mailbox: &Arc<Mailbox>) -> Next {
        let mut state = self.state.lock();
        if let Some(job) = state.queue.pop_front() {
            return Next::Run(job);
        }
        if state.closed {
            return Next::Exit;
        }
        state.idle.push(Arc::clone(mailbox));
        Next::Wait
    }

    /// Parks an idle worker until it gets a job, or `None` when told to exit.
    fn wait_for_mail(&self, mailbox: &Mailbox) -> Option<Job> {
        loop {
            // take the mail in its own statement: the lock must be released before parking
            let mail = std::mem::replace(&mut *mailbox.mail.lock(), Mail::Empty);
            match mail {
                Mail::Job(job) => return Some(job),
                Mail::Exit => return None,
                Mail::Empty => may::coroutine::park(),
            }
        }
    }

    /// Counts a worker out; the last one wakes `shutdown` callers.
    fn worker_exited(&self) {
        let waiters = {
            let mut state = self.state.lock();
            state.workers -= 1;
            if state.workers > 0 {
                return;
            }
            std::mem::take(&mut state.exit_waiters)
        };
        for waiter in waiters {
            waiter.wake();
        }
    }

    /// Counts out a worker lost to a stack overflow and, if tasks are
    /// queued, starts a replacement so they are not stranded.
    fn worker_lost(self: &Arc<Shared>) {
        let replacement = {
            let mut state = self.state.lock();
            if state.closed {
                None
            } else {
                state.queue.pop_front()
            }
        };
        match replacement {
            // the lost worker's slot goes to its replacement
            Some(job) => {
                if let Err(error) = self.spawn_worker(Arc::clone(&job)) {
                    job.abandon(error);
                    self.worker_exited();
                }
            }
            None => self.worker_exited(),
        }
    }

    /// Refuses new tasks and tells idle workers to exit (does not wait).
    fn close(&self) {
        let idle = {
            let mut state = self.state.lock();
            state.closed = true;
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut state.idle)
        };
        for mailbox in idle {
            mailbox.send(Mail::Exit);
        }
    }
}

/// Records the job this worker runs (see [`WorkerRecord`]).
fn set_running(job: Option<Job>) {
    WORKER.with(|record| {
        if let Some(record) = record.borrow_mut().as_mut() {
            record.running = job;
        }
    });
}

/// The body of every worker coroutine.
fn worker_main(shared: Arc<Shared>, first: Job) {
    WORKER.with(|record| {
        *record.borrow_mut() = Some(WorkerRecord {
            shared: Arc::clone(&shared),
            running: None,
        })
    });
    let mailbox = Arc::new(Mailbox {
        co: may::coroutine::current(),
        mail: Mutex::new(Mail::Empty),
    });
    let mut job = first;
    loop {
        set_running(Some(Arc::clone(&job)));
        let mut next = Next::Wait;
        job.run(&mut || next = shared.after_job(&mailbox));
        set_running(None);
        crate::abandon::forget_hooks();
        drop(job);
        job = match next {
            Next::Run(queued) => queued,
            Next::Wait => match shared.wait_for_mail(&mailbox) {
                Some(sent) => sent,
                None => break,
            },
            Next::Exit => break,
        };
    }
    shared.worker_exited();
    // A wake-up that races with `park` makes may resume this coroutine
    // inside the scheduler's registration of that park, and may's `Park`
    // destructor then spins until the registration returns. Ending the
    // coroutine right there would drop its last handle, and with it that
    // `Park`, inside the registration: a livelock of the scheduler thread.
    // Yielding once first lets the registration return.
    may::coroutine::yield_now();
}

impl fmt::Debug for GreenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        let state = shared.state.lock();
        f.debug_struct("GreenPool")
            .field("max_workers", &shared.max_workers)
            .field("workers", &state.workers)
            .field("idle", &state.idle.len())
            .field("queued", &state.queue.len())
            .field("closed", &state.closed)
            .finish()
    }
}
