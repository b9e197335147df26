//! The one on-a-coroutine check: everything that touches the database calls
//! [`require_green`] first, so work started on a plain OS thread is refused
//! at once with [`Error::WrongContext`] (text starting `acquire in main
//! greenlet`) instead of blocking the thread.
//!
//! It sits below the driver, the pool and the ORM: it imports only the
//! error type and the green runtime.

use crate::error::Error;

/// `Ok` on a green worker (any `may` coroutine); otherwise the
/// wrong-context error naming `operation`. Nothing is sent or blocked.
#[inline]
pub fn require_green(operation: &'static str) -> Result<(), Error> {
    if green::in_green_worker() {
        Ok(())
    } else {
        Err(Error::wrong_context(operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_thread_is_refused_naming_the_operation() {
        let err = require_green("pool acquire").unwrap_err();
        assert!(err.is_wrong_context());
        assert!(err
            .to_string()
            .starts_with("acquire in main greenlet: pool acquire"));
    }
}
