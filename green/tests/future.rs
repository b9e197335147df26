//! Both directions across the async boundary: `.await` a `Submitted` from a
//! hand-written executor, and `green::wait` on a future from a coroutine.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use green::{GreenError, GreenPool};

/// Wakes the thread that runs `block_on`.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls `future` on this thread, parking between polls.
/// Returns the output and how many polls it took.
fn block_on<F: Future>(future: F) -> (F::Output, usize) {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
        std::thread::park();
    }
}

/// A one-shot future completed by `complete` (from any thread).
#[derive(Clone, Default)]
struct OneShot {
    state: Arc<Mutex<(Option<String>, Option<Waker>)>>,
}

impl OneShot {
    fn complete(&self, value: &str) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.0 = Some(value.to_owned());
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for OneShot {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        let mut state = self.state.lock().unwrap();
        match state.0.take() {
            Some(value) => Poll::Ready(value),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_submitted_task_can_be_awaited_from_a_minimal_executor() {
    let pool = GreenPool::with_max_workers(4);
    let slow = pool
        .submit(|| {
            may::coroutine::sleep(Duration::from_millis(30));
            20
        })
        .unwrap();
    let fast = pool.submit(|| 22).unwrap();
    let (sum, polls) = block_on(async move { Ok::<_, GreenError>(slow.await? + fast.await?) });
    assert_eq!(sum, Ok(42));
    assert!(polls >= 2, "the slow task was pending at first");

    let panicked = pool.submit(|| -> i32 { panic!("async boom") }).unwrap();
    let (result, _) = block_on(panicked);
    assert_eq!(result, Err(GreenError::Panicked("async boom".into())));
}

#[test]
fn polling_a_submitted_again_after_it_completed_reports_a_taken_result() {
    let pool = GreenPool::with_max_workers(1);
    let mut submitted = pool.submit(|| 5).unwrap();
    let (first, _) = block_on(&mut submitted);
    assert_eq!(first, Ok(5));
    let (again, _) = block_on(&mut submitted);
    assert_eq!(again, Err(GreenError::ResultTaken));
    assert_eq!(
        again.unwrap_err().to_string(),
        "the task's result was already taken"
    );
}

#[test]
fn wait_parks_until_a_future_completed_by_another_thread() {
    let pool = GreenPool::with_max_workers(2);
    let oneshot = OneShot::default();
    let completer = oneshot.clone();
    let waited = pool
        .submit(move || {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                completer.complete("from another thread");
            });
            green::wait(oneshot)
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(waited.as_deref(), Ok("from another thread"));
}

#[test]
fn wait_on_a_submitted_of_another_pool_from_a_coroutine() {
    let outer = GreenPool::with_max_workers(1);
    let inner = GreenPool::with_max_workers(1);
    let value = outer
        .submit(move || {
            let task = inner
                .submit(|| {
                    may::coroutine::sleep(Duration::from_millis(10));
                    7
                })
                .unwrap();
            green::wait(task)
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(value, Ok(Ok(7)));
}

#[test]
fn wait_off_a_coroutine_is_refused_without_polling() {
    let polled = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&polled);
    let future = std::future::poll_fn(move |_| {
        *flag.lock().unwrap() = true;
        Poll::Ready(())
    });
    let error = green::wait(future).unwrap_err();
    assert_eq!(error, GreenError::WrongContext("green::wait"));
    assert!(error.to_string().contains("acquire in main greenlet"));
    assert!(!*polled.lock().unwrap());
}

#[test]
fn join_from_a_coroutine_parks_instead_of_blocking_its_thread() {
    // one scheduler thread per core; many joiners parked at once would
    // starve the workers if join blocked the OS thread
    let outer = GreenPool::with_max_workers(64);
    let inner = GreenPool::with_max_workers(64);
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let inner = inner.clone();
            outer
                .submit(move || {
                    inner
                        .submit(move || {
                            may::coroutine::sleep(Duration::from_millis(20));
                            i
                        })
                        .unwrap()
                        .join()
                })
                .unwrap()
        })
        .collect();
    let total: usize = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .sum();
    assert_eq!(total, (0..64).sum());
}
