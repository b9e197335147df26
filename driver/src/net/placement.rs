//! Which scheduler thread serves a connection, and spreading connections
//! evenly over them.
//!
//! `may` hands the readiness events of a socket to the event loop of worker
//! `fd % workers` (its `Selector::add_fd`), and whatever a coroutine woken
//! there wakes in turn is queued on that same worker. So a connection's
//! reader and, through it, every task waiting for an answer on the
//! connection run on the worker its descriptor number picks. Left to the
//! kernel's numbering (each connection takes three descriptors, and any
//! file opened in between shifts the count), two connections of a process
//! often land on the same worker: it does all the work while the other
//! sleeps in `epoll_wait` and only steals a few tasks every 10 ms. That
//! halved a connection's throughput, and made it change from run to run.
//!
//! [`place`] therefore moves a socket, before it is split, to a duplicate
//! descriptor whose number picks the worker serving the fewest
//! connections; the [`Placement`] it returns counts the connection there
//! until it is dropped.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use parking_lot::Mutex;

/// Connections served by each `may` worker, by worker index.
static SERVED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A socket that `may` watches and that can be duplicated (a duplicate is
/// registered with the worker its own descriptor picks).
pub(crate) trait Duplicable: Sized {
    /// The descriptor `may` watches.
    fn descriptor(&self) -> RawFd;
    /// A duplicate of the socket on a new descriptor.
    fn duplicate(&self) -> io::Result<Self>;
}

impl Duplicable for may::net::TcpStream {
    fn descriptor(&self) -> RawFd {
        self.as_raw_fd()
    }

    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
}

impl Duplicable for may::os::unix::net::UnixStream {
    fn descriptor(&self) -> RawFd {
        self.as_raw_fd()
    }

    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
}

/// One connection counted on the worker that serves it; uncounted when
/// dropped.
#[derive(Debug)]
pub(crate) struct Placement {
    worker: usize,
}

impl Placement {
    /// The index of the `may` worker serving the connection.
    pub(crate) fn worker(&self) -> usize {
        self.worker
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let mut served = SERVED.lock();
        if let Some(count) = served.get_mut(self.worker) {
            *count = count.saturating_sub(1);
        }
    }
}

/// Counts a socket that stays on its own descriptor on the worker that
/// descriptor picks. For unix-domain sockets: `may` registers each
/// duplicate of one with its event loop, and the descriptor a moved socket
/// leaves behind is handed out again by the next duplicate (`split`), which
/// `epoll` then refuses as already registered (`EEXIST`).
pub(crate) fn count_in_place(fd: RawFd) -> Placement {
    let workers = may::config().get_workers().max(1);
    let worker = worker_of(fd, workers);
    let mut served = SERVED.lock();
    if served.len() < workers {
        served.resize(workers, 0);
    }
    served[worker] += 1;
    Placement { worker }
}

/// The worker whose event loop watches descriptor `fd`.
fn worker_of(fd: RawFd, workers: usize) -> usize {
    usize::try_from(fd).unwrap_or(0) % workers
}

/// The worker serving the fewest connections (the lowest index among
/// equals), counted in `served` as taken.
fn least_served(served: &mut Vec<usize>, workers: usize) -> usize {
    if served.len() < workers {
        served.resize(workers, 0);
    }
    let target = (0..workers).min_by_key(|&w| served[w]).unwrap_or(0);
    served[target] += 1;
    target
}

/// Moves `stream` to a descriptor watched by the worker serving the fewest
/// connections (duplicating it until the kernel hands out such a number,
/// at most once per worker; the descriptors tried on the way are closed).
/// When none fits, the stream stays where it is and is counted there.
pub(crate) fn place<S: Duplicable>(stream: S) -> io::Result<(S, Placement)> {
    let workers = may::config().get_workers().max(1);
    let target = least_served(&mut SERVED.lock(), workers);
    // Counted on `target` from here on: an error below uncounts it.
    let mut placement = Placement { worker: target };
    let mut stream = stream;
    // Kept open while duplicating, so that each duplicate gets a new number.
    let mut tried = Vec::new();
    while worker_of(stream.descriptor(), workers) != target && tried.len() < workers {
        let copy = stream.duplicate()?;
        tried.push(std::mem::replace(&mut stream, copy));
    }
    let actual = worker_of(stream.descriptor(), workers);
    if actual != target {
        // The new count must exist before the old one is dropped.
        let mut served = SERVED.lock();
        served[actual] += 1;
        drop(served);
        placement = Placement { worker: actual };
    }
    drop(tried);
    Ok((stream, placement))
}

#[cfg(test)]
mod tests {
    use super::{least_served, worker_of};

    #[test]
    fn descriptors_map_to_workers_as_may_assigns_them() {
        assert_eq!(worker_of(7, 2), 1);
        assert_eq!(worker_of(8, 2), 0);
        assert_eq!(worker_of(9, 1), 0);
        assert_eq!(worker_of(10, 4), 2);
    }

    #[test]
    fn each_new_connection_goes_to_the_worker_serving_the_fewest() {
        let mut served = Vec::new();
        let picks: Vec<usize> = (0..4).map(|_| least_served(&mut served, 2)).collect();
        assert_eq!(picks, [0, 1, 0, 1]);
        // A connection on worker 0 closed: the next one fills its place.
        served[0] -= 1;
        assert_eq!(least_served(&mut served, 2), 0);
        assert_eq!(served, [2, 2]);
    }
}
