//! One connection through a [`FaultProxy`](super::FaultProxy): the client's
//! socket, the upstream socket, and the pump that moves bytes one way
//! between them under the proxy's current mode.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::fault_proxy::{Direction, Flow, Mode, ProxyState, Setting, POLL};

/// The most bytes read in one go.
const CHUNK: usize = 16 * 1024;
/// How long the proxy waits for the upstream server to accept.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A proxied connection. Both pumps hold it; when the last one lets go, both
/// sockets close (with a reset if [`Link::reset`] was called).
#[derive(Debug)]
pub(super) struct Link {
    client: TcpStream,
    upstream: TcpStream,
    /// Set when the link was reset or closed: the pumps stop.
    ended: AtomicBool,
}

impl Link {
    /// Connects to `upstream` for `client`; every socket wait is bounded by
    /// `poll`. When the upstream cannot be reached the client is reset.
    pub(super) fn open(
        client: TcpStream,
        upstream: SocketAddr,
        poll: Duration,
    ) -> io::Result<Link> {
        let upstream = match TcpStream::connect_timeout(&upstream, UPSTREAM_CONNECT_TIMEOUT) {
            Ok(stream) => stream,
            Err(e) => {
                reset_stream(client);
                return Err(e);
            }
        };
        for stream in [&client, &upstream] {
            stream.set_nonblocking(false)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(poll))?;
            stream.set_write_timeout(Some(poll))?;
        }
        Ok(Link {
            client,
            upstream,
            ended: AtomicBool::new(false),
        })
    }

    /// Ends the link with a TCP RST on both sides: `SO_LINGER` 0 now, the
    /// close when the pumps let go (within one poll interval).
    pub(super) fn reset(&self) {
        for stream in [&self.client, &self.upstream] {
            if let Err(e) = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO)) {
                log::debug!("fault proxy: cannot set SO_LINGER: {e}");
            }
        }
        self.ended.store(true, Ordering::SeqCst);
    }

    /// Ends the link with an orderly close (FIN) on both sides.
    pub(super) fn close(&self) {
        for stream in [&self.client, &self.upstream] {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.ended.store(true, Ordering::SeqCst);
    }

    fn ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Ends the link after an I/O error: a reset is passed on as a reset,
    /// anything else as a close.
    fn fail(&self, error: &io::Error) {
        if error.kind() == ErrorKind::ConnectionReset {
            self.reset();
        } else {
            self.close();
        }
    }

    /// The socket read from and the socket written to in `direction`.
    fn ends(&self, direction: Direction) -> (&TcpStream, &TcpStream) {
        match direction {
            Direction::ToServer => (&self.client, &self.upstream),
            Direction::ToClient => (&self.upstream, &self.client),
        }
    }
}

/// Closes `stream` with a TCP RST.
pub(super) fn reset_stream(stream: TcpStream) {
    if let Err(e) = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)) {
        log::debug!("fault proxy: cannot set SO_LINGER: {e}");
    }
    drop(stream);
}

/// Bytes read and waiting to be written.
struct Chunk {
    due: Instant,
    bytes: Vec<u8>,
}

/// What is left of a `truncate_after` allowance on one link.
#[derive(Default)]
struct Allowance {
    /// The setting generation the allowance was granted under.
    generation: Option<u64>,
    remaining: Option<u64>,
}

impl Allowance {
    /// Starts counting a fresh `truncate_after`, or stops counting when the
    /// mode is something else.
    fn follow(&mut self, setting: Setting) {
        match setting.mode {
            Mode::TruncateToClient { bytes } => {
                if self.generation != Some(setting.generation) {
                    self.generation = Some(setting.generation);
                    self.remaining = Some(bytes);
                }
            }
            _ => *self = Allowance::default(),
        }
    }

    fn spent(&self) -> bool {
        self.remaining == Some(0)
    }

    /// How many of `len` bytes may still be forwarded.
    fn take(&mut self, len: usize) -> usize {
        match &mut self.remaining {
            Some(remaining) => {
                let n = (*remaining).min(len as u64);
                *remaining -= n;
                n as usize
            }
            None => len,
        }
    }
}

/// Why a pump stopped writing.
enum Stop {
    /// The link ended or the proxy is stopping.
    Ended,
    /// The destination failed.
    Failed(io::Error),
}

/// Moves bytes in `direction` until the link ends, the source closes, or the
/// proxy stops. Never waits longer than [`POLL`] without looking at the
/// mode again.
pub(super) fn pump(state: &ProxyState, link: &Link, direction: Direction) {
    let (mut from, to) = link.ends(direction);
    let mut pending: VecDeque<Chunk> = VecDeque::new();
    let mut buf = vec![0u8; CHUNK];
    let mut allowance = Allowance::default();
    let mut read_timeout = POLL;
    let mut source_closed = false;
    loop {
        if state.stopping() || link.ended() {
            return;
        }
        let setting = state.setting();
        if setting.mode == Mode::Reset {
            link.reset();
            return;
        }
        if direction == Direction::ToClient {
            allowance.follow(setting);
            if allowance.spent() {
                link.close();
                return;
            }
        }
        let delay = match setting.mode.flow(direction) {
            Flow::Hold => {
                thread::sleep(POLL);
                continue;
            }
            Flow::Pass { delay } => delay,
        };

        while pending.front().is_some_and(|c| c.due <= Instant::now()) {
            let Some(chunk) = pending.pop_front() else {
                break;
            };
            let n = allowance.take(chunk.bytes.len());
            match write_fully(state, link, to, &chunk.bytes[..n]) {
                Ok(()) => state.count(direction, n),
                Err(Stop::Ended) => return,
                Err(Stop::Failed(e)) => {
                    link.fail(&e);
                    return;
                }
            }
            if allowance.spent() {
                link.close();
                return;
            }
        }

        let wait = pending
            .front()
            .map_or(POLL, |c| c.due.saturating_duration_since(Instant::now()))
            .clamp(Duration::from_millis(1), POLL);
        if source_closed {
            if pending.is_empty() {
                // Pass the orderly close on; the other direction carries on.
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            thread::sleep(wait);
            continue;
        }
        if wait != read_timeout {
            if let Err(e) = from.set_read_timeout(Some(wait)) {
                link.fail(&e);
                return;
            }
            read_timeout = wait;
        }
        match from.read(&mut buf) {
            Ok(0) => source_closed = true,
            Ok(n) => pending.push_back(Chunk {
                due: Instant::now() + delay,
                bytes: buf[..n].to_vec(),
            }),
            Err(e) if is_wait(&e) => {}
            Err(e) => {
                link.fail(&e);
                return;
            }
        }
    }
}

/// Writes all of `bytes`, retrying after each write timeout until the link
/// ends or the proxy stops.
fn write_fully(
    state: &ProxyState,
    link: &Link,
    mut to: &TcpStream,
    mut bytes: &[u8],
) -> Result<(), Stop> {
    while !bytes.is_empty() {
        if state.stopping() || link.ended() {
            return Err(Stop::Ended);
        }
        match to.write(bytes) {
            Ok(0) => return Err(Stop::Failed(ErrorKind::WriteZero.into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if is_wait(&e) => {}
            Err(e) => return Err(Stop::Failed(e)),
        }
    }
    Ok(())
}

/// True for the errors a socket timeout or a signal gives: try again.
fn is_wait(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}
