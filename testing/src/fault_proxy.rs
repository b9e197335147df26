//! [`FaultProxy`]: an in-process TCP proxy between a client and a real
//! server that injects network faults on command: forward, black-hole,
//! delay, truncate, reset and refuse.
//!
//! The proxy runs on plain OS threads (`std::net`), never on the `may`
//! scheduler: it is test infrastructure for that scheduler and must keep
//! working when the code under test hangs. No thread of it waits longer than
//! a short poll interval before looking at the mode and the stop flag again,
//! so every fault takes effect within milliseconds and dropping the proxy
//! joins all of its threads within a bounded time.

use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::fault_link::{pump, reset_stream, Link};
use super::url::with_host_port;
use crate::Error;

/// The longest any proxy thread sleeps or blocks before it looks at the
/// mode and the stop flag again.
pub(super) const POLL: Duration = Duration::from_millis(10);
/// How often the listener is polled for new connections.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// How long drop waits for the proxy's threads before it detaches them.
const DROP_DEADLINE: Duration = Duration::from_millis(1500);

/// One direction of a proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server: requests.
    ToServer,
    /// From the server to the client: answers.
    ToClient,
}

/// What the proxy does; one mode at a time, each switch replaces the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Forward,
    BlackHole {
        to_server: bool,
        to_client: bool,
    },
    Delay {
        to_server: Duration,
        to_client: Duration,
    },
    TruncateToClient {
        bytes: u64,
    },
    Reset,
    Refuse,
}

/// How bytes move in one direction under a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// Neither read nor written: they wait in the kernel's buffers.
    Hold,
    /// Forwarded, each chunk `delay` after it was read.
    Pass { delay: Duration },
}

impl Mode {
    /// How bytes move in `direction` under this mode.
    pub(super) fn flow(self, direction: Direction) -> Flow {
        let toward = |to_server: bool, to_client: bool| match direction {
            Direction::ToServer => to_server,
            Direction::ToClient => to_client,
        };
        match self {
            Mode::BlackHole {
                to_server,
                to_client,
            } if toward(to_server, to_client) => Flow::Hold,
            Mode::Delay {
                to_server,
                to_client,
            } => Flow::Pass {
                delay: match direction {
                    Direction::ToServer => to_server,
                    Direction::ToClient => to_client,
                },
            },
            _ => Flow::Pass {
                delay: Duration::ZERO,
            },
        }
    }
}

/// The current mode and a number bumped by every switch, so that a link can
/// tell a fresh `truncate_after` from the one it is already counting down.
#[derive(Clone, Copy, Debug)]
pub(super) struct Setting {
    pub(super) mode: Mode,
    pub(super) generation: u64,
}

/// Everything the proxy's threads share.
pub(super) struct ProxyState {
    upstream: SocketAddr,
    setting: Mutex<Setting>,
    stopping: AtomicBool,
    links: Mutex<Vec<Weak<Link>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    accepted: AtomicU64,
    bytes_to_server: AtomicU64,
    bytes_to_client: AtomicU64,
}

impl ProxyState {
    pub(super) fn setting(&self) -> Setting {
        *self.setting.lock()
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Counts `n` bytes forwarded in `direction`.
    pub(super) fn count(&self, direction: Direction, n: usize) {
        let counter = match direction {
            Direction::ToServer => &self.bytes_to_server,
            Direction::ToClient => &self.bytes_to_client,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Runs `work` on a new thread that drop will join; false (and `work`
    /// dropped unrun) once the proxy is stopping or the thread cannot start.
    fn spawn(&self, name: &str, work: impl FnOnce() + Send + 'static) -> bool {
        let mut threads = self.threads.lock();
        if self.stopping() {
            return false;
        }
        threads.retain(|thread| !thread.is_finished());
        match thread::Builder::new().name(name.to_string()).spawn(work) {
            Ok(handle) => {
                threads.push(handle);
                true
            }
            Err(e) => {
                log::warn!("fault proxy: cannot start a thread: {e}");
                false
            }
        }
    }

    /// The connections still open, forgetting those that ended.
    fn live_links(&self) -> Vec<Arc<Link>> {
        let mut links = self.links.lock();
        links.retain(|link| link.strong_count() > 0);
        links.iter().filter_map(Weak::upgrade).collect()
    }
}

/// An in-process TCP proxy on 127.0.0.1 in front of one upstream server,
/// for tests that inject network faults against a real PostgreSQL.
///
/// Each accepted client connection gets its own upstream connection and two
/// forwarding directions. The mode is switched at any time with
/// [`forward`](FaultProxy::forward), [`black_hole`](FaultProxy::black_hole),
/// [`delay`](FaultProxy::delay),
/// [`truncate_after`](FaultProxy::truncate_after),
/// [`reset`](FaultProxy::reset) or [`refuse`](FaultProxy::refuse); each
/// switch replaces the previous mode and applies at once to every current
/// connection and to every future one. The proxy only ever connects to the
/// upstream address it was given.
///
/// Dropping the proxy stops the listener, closes every connection and joins
/// its threads (within about 1.5 s in the worst case).
///
/// ```no_run
/// # fn main() -> Result<(), odm_testing::Error> {
/// let cluster = odm_testing::shared_cluster()?;
/// let proxy = odm_testing::FaultProxy::in_front_of("127.0.0.1", cluster.port())?;
/// let url = proxy.proxied_url(&cluster.url())?; // connect here
/// proxy.black_hole(); // ... and the network path goes silent
/// # Ok(()) }
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

impl FaultProxy {
    /// Starts a proxy listening on a free port of 127.0.0.1 that forwards to
    /// `upstream`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the listener cannot be bound or its thread cannot
    /// start.
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ProxyState {
            upstream,
            setting: Mutex::new(Setting {
                mode: Mode::Forward,
                generation: 0,
            }),
            stopping: AtomicBool::new(false),
            links: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            bytes_to_server: AtomicU64::new(0),
            bytes_to_client: AtomicU64::new(0),
        });
        let acceptor_state = Arc::clone(&state);
        if !state.spawn("fault-proxy-accept", move || {
            accept_loop(&acceptor_state, &listener)
        }) {
            return Err(Error::Io(std::io::Error::other(
                "cannot start the fault proxy's listener thread",
            )));
        }
        Ok(FaultProxy { addr, state })
    }

    /// Starts a proxy in front of the TCP server at `host`:`port`. A host
    /// name is resolved here, on the calling thread (IPv4 first: a test
    /// server usually listens on 127.0.0.1 only, while `localhost` may
    /// resolve to ::1 first): call it from a test thread, not a coroutine.
    ///
    /// # Errors
    ///
    /// [`Error::Server`] when the host does not resolve; else as
    /// [`FaultProxy::start`].
    pub fn in_front_of(host: &str, port: u16) -> Result<FaultProxy, Error> {
        let upstream = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => (host, port)
                .to_socket_addrs()
                .ok()
                .and_then(|addrs| addrs.min_by_key(|addr| addr.is_ipv6()))
                .ok_or_else(|| Error::Server(format!("host `{host}` does not resolve")))?,
        };
        FaultProxy::start(upstream)
    }

    /// `url` with its host and port replaced by this proxy's, so that a
    /// client configured with it connects through the proxy.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] when `url` is not a `postgresql+green://`,
    /// `postgresql://` or `postgres://` URL.
    pub fn proxied_url(&self, url: &str) -> Result<String, Error> {
        with_host_port(url, &self.addr.to_string())
    }

    /// The address the proxy listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The upstream server's address.
    pub fn upstream(&self) -> SocketAddr {
        self.state.upstream
    }

    /// Forwards everything, both ways, on every connection (the default);
    /// ends every other mode. Bytes held by a black hole are delivered now.
    pub fn forward(&self) {
        self.switch(Mode::Forward);
    }

    /// A dead network path: nothing is forwarded in either direction and
    /// nothing is closed.
    ///
    /// The proxy stops reading rather than reading and dropping: bytes stay
    /// in the kernel's buffers, a sender's writes succeed until those fill up
    /// and then block, as on a path where nothing is acknowledged any more,
    /// and [`forward`](FaultProxy::forward) delivers them in order, like a
    /// path that heals (TCP never loses bytes in the middle of a stream). A
    /// new connection is completed by the kernel but not accepted by the
    /// proxy: it sees nothing until `forward`. TCP keepalive probes are still
    /// answered by the proxy's kernel, so only a client-side deadline
    /// notices this fault.
    pub fn black_hole(&self) {
        self.switch(Mode::BlackHole {
            to_server: true,
            to_client: true,
        });
    }

    /// A black hole in one direction only; the other one forwards. With
    /// [`Direction::ToClient`] requests reach the server and run, but their
    /// answers are held.
    pub fn black_hole_one_way(&self, direction: Direction) {
        self.switch(Mode::BlackHole {
            to_server: direction == Direction::ToServer,
            to_client: direction == Direction::ToClient,
        });
    }

    /// Forwards each chunk `delay` after it was read, both ways (latency,
    /// not a bandwidth limit: chunks read meanwhile are not held up longer).
    pub fn delay(&self, delay: Duration) {
        self.switch(Mode::Delay {
            to_server: delay,
            to_client: delay,
        });
    }

    /// Delays one direction only; the other one forwards at once.
    pub fn delay_one_way(&self, direction: Direction, delay: Duration) {
        self.switch(Mode::Delay {
            to_server: if direction == Direction::ToServer {
                delay
            } else {
                Duration::ZERO
            },
            to_client: if direction == Direction::ToClient {
                delay
            } else {
                Duration::ZERO
            },
        });
    }

    /// Lets each connection forward `bytes` more bytes from the server to the
    /// client, then closes it (an orderly close on both sides, as when a
    /// server or middlebox gives up in the middle of an answer). Requests
    /// still flow. A connection opened later gets the same allowance, counted
    /// from its first byte; `0` closes every connection at once.
    pub fn truncate_after(&self, bytes: u64) {
        self.switch(Mode::TruncateToClient { bytes });
    }

    /// Resets every current connection with a TCP RST (`SO_LINGER` 0, then
    /// close) on the client side and on the server side, within
    /// milliseconds, and resets every new connection as soon as it is
    /// accepted, until the mode is switched again (usually with
    /// [`forward`](FaultProxy::forward)).
    pub fn reset(&self) {
        self.switch(Mode::Reset);
        for link in self.state.live_links() {
            link.reset();
        }
    }

    /// Turns new connections away: each is reset as soon as it is accepted,
    /// before any byte is exchanged (the kernel completes the handshake, so
    /// the client sees the reset on its first read or write of the startup).
    /// Current connections keep forwarding.
    pub fn refuse(&self) {
        self.switch(Mode::Refuse);
    }

    /// How many connections the proxy has accepted (refused ones included).
    pub fn connections_accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Relaxed)
    }

    /// How many proxied connections are open now.
    pub fn connections_open(&self) -> usize {
        self.state.live_links().len()
    }

    /// Bytes forwarded from clients to the server so far.
    pub fn bytes_to_server(&self) -> u64 {
        self.state.bytes_to_server.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from the server to clients so far.
    pub fn bytes_to_client(&self) -> u64 {
        self.state.bytes_to_client.load(Ordering::Relaxed)
    }

    fn switch(&self, mode: Mode) {
        let mut setting = self.state.setting.lock();
        setting.mode = mode;
        setting.generation += 1;
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.state.upstream)
            .field("mode", &self.state.setting().mode)
            .field("connections_accepted", &self.connections_accepted())
            .field("bytes_to_server", &self.bytes_to_server())
            .field("bytes_to_client", &self.bytes_to_client())
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        for link in self.state.live_links() {
            link.close();
        }
        let deadline = Instant::now() + DROP_DEADLINE;
        loop {
            let threads = std::mem::take(&mut *self.state.threads.lock());
            if threads.is_empty() {
                return;
            }
            while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            for thread in threads {
                if thread.is_finished() {
                    let _ = thread.join();
                } else {
                    log::warn!("fault proxy: a thread did not stop in time and was detached");
                }
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }
}

/// Accepts client connections until the proxy stops; not at all while both
/// directions are black-holed (the kernel completes the handshakes).
fn accept_loop(state: &Arc<ProxyState>, listener: &TcpListener) {
    let silent = Mode::BlackHole {
        to_server: true,
        to_client: true,
    };
    while !state.stopping() {
        if state.setting().mode == silent {
            thread::sleep(POLL);
            continue;
        }
        match listener.accept() {
            Ok((client, _peer)) => admit(state, client),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    log::debug!("fault proxy: accept failed: {e}");
                }
                thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// Resets `client` at once when new connections are turned away, else
/// proxies it on a thread of its own.
fn admit(state: &Arc<ProxyState>, client: TcpStream) {
    state.accepted.fetch_add(1, Ordering::Relaxed);
    if matches!(state.setting().mode, Mode::Reset | Mode::Refuse) {
        reset_stream(client);
        return;
    }
    let link_state = Arc::clone(state);
    state.spawn("fault-proxy-link", move || serve(link_state, client));
}

/// Opens the upstream connection for `client`, then forwards requests on
/// this thread and answers on a second one.
fn serve(state: Arc<ProxyState>, client: TcpStream) {
    let link = match Link::open(client, state.upstream, POLL) {
        Ok(link) => Arc::new(link),
        Err(e) => {
            log::debug!("fault proxy: cannot reach {}: {e}", state.upstream);
            return;
        }
    };
    {
        let mut links = state.links.lock();
        links.retain(|link| link.strong_count() > 0);
        links.push(Arc::downgrade(&link));
    }
    let answers_state = Arc::clone(&state);
    let answers_link = Arc::clone(&link);
    if state.spawn("fault-proxy-answers", move || {
        pump(&answers_state, &answers_link, Direction::ToClient)
    }) {
        pump(&state, &link, Direction::ToServer);
    }
}
