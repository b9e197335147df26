//! Work that must not hold a scheduler thread — a blocking system call
//! (`getaddrinfo`, a file read) or CPU-heavy hashing (SCRAM's PBKDF2) — runs
//! on a helper thread while the calling coroutine parks (DESIGN.md's runtime
//! rules). Off a coroutine it simply runs in place.

use std::io;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use crate::net::deadline::time_left;

/// Runs `work` on a fresh helper thread named `name` and parks until it is
/// done, for at most the time left before `deadline` (a `TimedOut` error
/// carrying `late` after that; the thread then finishes on its own and its
/// result is dropped).
pub fn run_off_scheduler<T, F>(
    name: &str,
    deadline: Option<Instant>,
    late: &'static str,
    work: F,
) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !may::coroutine::is_coroutine() {
        return Ok(work());
    }
    let (sender, receiver) = may::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // The caller may have given up waiting: nobody to tell then.
            let _ = sender.send(work());
        })?;
    let lost = || io::Error::other(format!("the {name} thread ended without an answer"));
    match time_left(deadline)? {
        None => receiver.recv().map_err(|_| lost()),
        Some(left) => match receiver.recv_timeout(left) {
            Ok(done) => Ok(done),
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(io::ErrorKind::TimedOut, late)),
            Err(RecvTimeoutError::Disconnected) => Err(lost()),
        },
    }
}
