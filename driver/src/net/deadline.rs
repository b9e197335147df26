//! Deadlines as `may` keeps them: park and socket timeouts in whole
//! milliseconds, the time left before a deadline, and the error of a wait
//! that passed the connect deadline.

use std::io;
use std::time::{Duration, Instant};

/// `d` rounded up to whole milliseconds: `may` keeps park timeouts in
/// whole milliseconds, and a timeout that rounds down to zero never fires.
pub(crate) fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000).max(1) as u64)
}

/// The time left before `deadline` (`None`: no deadline), rounded up to
/// whole milliseconds as `may` keeps them; a timed-out error once it passed.
pub(crate) fn time_left(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(whole_millis(left))),
            _ => Err(timed_out()),
        },
    }
}

/// The error of a wait that passed the connect deadline.
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no answer within connect_timeout")
}

/// A socket call that ran into its timeout, named as the connect deadline.
pub(crate) fn deadline_named(result: io::Result<usize>) -> io::Result<usize> {
    result.map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(),
        _ => e,
    })
}
