//! [`SilentListener`]: a TCP server that accepts connections and never
//! answers nor closes them, the "server that accepts and never answers".

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

use crate::Error;

/// How often the listener is polled for new connections and the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// What the accepting thread shares with the handle.
#[derive(Debug, Default)]
struct Held {
    stopping: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
}

/// A listener on a free port of 127.0.0.1 that accepts every connection and
/// then does nothing: it never reads, never writes and never closes, so a
/// client's connect succeeds and its first read waits forever (or until its
/// own deadline). Dropping it closes the listener and every connection it
/// holds, and joins its thread (within a few milliseconds).
///
/// It runs on a plain OS thread, not on the `may` scheduler.
///
/// ```no_run
/// let silent = odm_testing::SilentListener::start()?;
/// let url = format!("postgresql+green://odm@127.0.0.1:{}/x?connect_timeout=1", silent.port());
/// # Ok::<(), odm_testing::Error>(())
/// ```
pub struct SilentListener {
    addr: SocketAddr,
    held: Arc<Held>,
    acceptor: Option<JoinHandle<()>>,
}

impl SilentListener {
    /// Starts listening on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the listener cannot be bound or its thread cannot
    /// start.
    pub fn start() -> Result<SilentListener, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let held = Arc::new(Held::default());
        let thread_held = Arc::clone(&held);
        let acceptor = thread::Builder::new()
            .name("silent-listener".to_string())
            .spawn(move || hold_connections(&listener, &thread_held))?;
        Ok(SilentListener {
            addr,
            held,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections it has accepted and holds open.
    pub fn connections_held(&self) -> usize {
        self.held.connections.lock().len()
    }
}

impl fmt::Debug for SilentListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SilentListener")
            .field("addr", &self.addr)
            .field("connections_held", &self.connections_held())
            .finish()
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.held.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.held.connections.lock().clear();
    }
}

/// Accepts and keeps every connection until told to stop.
fn hold_connections(listener: &TcpListener, held: &Held) {
    while !held.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _peer)) => held.connections.lock().push(stream),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    log::debug!("silent listener: accept failed: {e}");
                }
                thread::sleep(ACCEPT_POLL);
            }
        }
    }
}
