//! Spans across green tasks (feature `tracing`).
//!
//! `tracing` keeps the current span per OS thread, and a coroutine that
//! parks may resume on another thread, with other coroutines running on
//! this one meanwhile: a span *entered* across a wait (`span.enter()`
//! held over a database call, a [`Submitted::join`](crate::Submitted::join),
//! a lock) is wrongly current for them, and exited on the wrong thread.
//! green therefore keeps its own current span per coroutine:
//!
//! - [`in_span`] makes a span current for the calling coroutine (or
//!   thread) while a closure runs, without entering it;
//! - [`current_span`] is that span, or `tracing`'s current one when none
//!   was set (a plain thread, a tokio task inside its `instrument`ed span);
//! - [`GreenPool::submit`](crate::GreenPool::submit) captures
//!   [`current_span`] and runs the task in a `green.task` span (target
//!   `green`) whose parent it is, itself current for the task. The span
//!   opens at submit, so its duration includes the wait in the queue.
//!
//! Code that makes spans or events meant to sit under the task names the
//! parent: `tracing::info_span!(parent: &green::trace::current_span(), ..)`,
//! as odm's statement and transaction spans do.

use std::cell::RefCell;

use tracing::Span;

may::coroutine_local!(static CURRENT: RefCell<Option<Span>> = RefCell::new(None));

/// The span current for the calling coroutine: the innermost [`in_span`]
/// (a green task's `green.task` span, a transaction's span), else
/// `tracing`'s current span of the thread.
pub fn current_span() -> Span {
    CURRENT
        .with(|current| current.borrow().clone())
        .unwrap_or_else(Span::current)
}

/// Runs `work` with `span` current for the calling coroutine (see
/// [`current_span`]); the previous one is current again afterwards, also
/// when `work` panics. The span is not *entered*: parking inside `work` is
/// safe.
pub fn in_span<T>(span: &Span, work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Span>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|current| current.borrow_mut().replace(span.clone()));
    let _restore = Restore(previous);
    work()
}

/// Wraps a task submitted now: it will run in a `green.task` span child of
/// the submitter's [`current_span`].
pub(crate) fn carry<F, T>(func: F) -> impl FnOnce() -> T + Send + 'static
where
    F: FnOnce() -> T + Send + 'static,
{
    let parent = current_span();
    let task = tracing::info_span!(target: "green", parent: &parent, "green.task");
    move || in_span(&task, func)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_span_restores_the_previous_span_even_after_a_panic() {
        let outer = Span::none();
        let inner = Span::none();
        in_span(&outer, || {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                in_span(&inner, || panic!("boom"))
            }));
            assert!(caught.is_err());
            assert!(CURRENT.with(|c| c.borrow().is_some()));
        });
        assert!(CURRENT.with(|c| c.borrow().is_none()));
    }
}
