//! [`ScriptedServer`]: a fake PostgreSQL that plays a script of [`Step`]s
//! on every connection — well-formed answers, lies about lengths, unknown
//! message types, garbage, streams of any size, silence — to test how a
//! client holds up against a hostile or broken server, or anyone on the
//! path of a plain connection.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

use crate::backend_message::trust_login;
use crate::Error;

/// How often blocked reads, writes and accepts look at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// The size of each write of a [`Step::Stream`]'s filler.
const STREAM_CHUNK: usize = 64 * 1024;
/// The `SSLRequest` and `GSSENCRequest` codes of a startup packet.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
/// The largest startup packet read.
const STARTUP_MAX: usize = 10_000;

/// One step of a [`ScriptedServer`]'s script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Reads the startup message (refusing TLS and GSS encryption with
    /// `N`, as a server without them does), then lets the client in
    /// without a password ([`trust_login`]).
    Login,
    /// Reads the startup message only (refusing TLS and GSS encryption).
    ReadStartup,
    /// Reads the client's frontend messages up to and including the next
    /// `Sync` or `Query`: one request.
    AwaitRequest,
    /// Sends these bytes.
    Send(Vec<u8>),
    /// Sends `bytes`, then `filler` zero bytes, in 64 KiB writes, until
    /// done or the client hangs up ([`ScriptedServer::bytes_streamed`]
    /// counts the filler that left).
    Stream {
        /// Sent first (e.g. a header announcing a huge message).
        bytes: Vec<u8>,
        /// How many zero bytes follow.
        filler: u64,
    },
    /// Holds the connection open without a word until the server is
    /// dropped.
    Stall,
}

/// What the connection threads share with the handle.
#[derive(Debug, Default)]
struct Shared {
    stopping: AtomicBool,
    accepted: AtomicUsize,
    streamed: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A fake PostgreSQL on a free port of 127.0.0.1: every connection it
/// accepts plays the same script, then is closed. Plain TCP only (it
/// refuses TLS, so `sslmode=prefer` connects in plain text). It runs on
/// OS threads, not on the `may` scheduler; dropping it stops every
/// connection (within ~20 ms) and joins the threads.
///
/// ```no_run
/// use odm_testing::{backend_message as msg, ScriptedServer, Step};
/// // Logs the client in, then answers its first request with a message
/// // type PostgreSQL never sends.
/// let server = ScriptedServer::start(vec![
///     Step::Login,
///     Step::AwaitRequest,
///     Step::Send(msg::message(b'x', b"garbage")),
///     Step::Stall,
/// ])?;
/// let url = server.url();
/// # Ok::<(), odm_testing::Error>(())
/// ```
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    /// Starts listening; every connection plays `script`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the listener cannot be bound or its thread
    /// cannot start.
    pub fn start(script: Vec<Step>) -> Result<ScriptedServer, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("scripted-server".to_owned())
            .spawn(move || accept(&listener, &thread_shared, &script))?;
        Ok(ScriptedServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A URL for it: user `odm`, database `scripted`, `sslmode=prefer`
    /// (which it refuses, so the connection is plain) and a 5 s connect
    /// timeout.
    pub fn url(&self) -> String {
        format!(
            "postgresql://odm@127.0.0.1:{}/scripted?sslmode=prefer&connect_timeout=5",
            self.addr.port()
        )
    }

    /// How many connections it accepted.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many filler bytes of [`Step::Stream`]s left it, on all
    /// connections: a client that refuses a huge message at its header
    /// hangs up before much of it is sent.
    pub fn bytes_streamed(&self) -> u64 {
        self.shared.streamed.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .field("connections_accepted", &self.connections_accepted())
            .finish_non_exhaustive()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock());
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until told to stop, one thread each.
fn accept(listener: &TcpListener, shared: &Arc<Shared>, script: &[Step]) {
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _peer)) => {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let script = script.to_vec();
                let thread_shared = Arc::clone(shared);
                let spawned = thread::Builder::new()
                    .name("scripted-connection".to_owned())
                    .spawn(move || {
                        if let Err(e) = play(stream, &script, &thread_shared) {
                            log::debug!("scripted server: connection ended: {e}");
                        }
                    });
                match spawned {
                    Ok(thread) => shared.threads.lock().push(thread),
                    Err(e) => log::warn!("scripted server: cannot start a thread: {e}"),
                }
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    log::debug!("scripted server: accept failed: {e}");
                }
                thread::sleep(POLL);
            }
        }
    }
}

/// Plays the script on one connection.
fn play(stream: TcpStream, script: &[Step], shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(POLL))?;
    let mut peer = Peer { stream, shared };
    for step in script {
        match step {
            Step::Login => {
                peer.read_startup()?;
                peer.write_all(&trust_login())?;
            }
            Step::ReadStartup => peer.read_startup()?,
            Step::AwaitRequest => peer.read_request()?,
            Step::Send(bytes) => peer.write_all(bytes)?,
            Step::Stream { bytes, filler } => {
                peer.write_all(bytes)?;
                let zeros = vec![0u8; STREAM_CHUNK];
                let mut left = *filler;
                while left > 0 {
                    let n = left.min(STREAM_CHUNK as u64) as usize;
                    peer.write_all(&zeros[..n])?;
                    shared.streamed.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                }
            }
            Step::Stall => {
                while !shared.stopping.load(Ordering::SeqCst) {
                    thread::sleep(POLL);
                }
            }
        }
    }
    Ok(())
}

/// One connection's socket, with reads and writes that give up when the
/// server stops.
struct Peer<'a> {
    stream: TcpStream,
    shared: &'a Shared,
}

impl Peer<'_> {
    fn stopped(&self) -> io::Result<()> {
        if self.shared.stopping.load(Ordering::SeqCst) {
            Err(io::Error::other("the scripted server stopped"))
        } else {
            Ok(())
        }
    }

    fn read_exact(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.stopped()?;
            match self.stream.read(buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => buf = &mut buf[n..],
                Err(e) if is_poll_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.stopped()?;
            match self.stream.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if is_poll_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads startup packets until the startup message itself, refusing
    /// TLS and GSS encryption on the way.
    fn read_startup(&mut self) -> io::Result<()> {
        loop {
            let mut word = [0u8; 4];
            self.read_exact(&mut word)?;
            let length = u32::from_be_bytes(word) as usize;
            if !(8..=STARTUP_MAX).contains(&length) {
                return Err(io::Error::other("a startup packet of a bad length"));
            }
            let mut body = vec![0u8; length - 4];
            self.read_exact(&mut body)?;
            let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            if code == SSL_REQUEST || code == GSSENC_REQUEST {
                self.write_all(b"N")?;
                continue;
            }
            return Ok(());
        }
    }

    /// Reads frontend messages up to and including `Sync` or `Query`.
    fn read_request(&mut self) -> io::Result<()> {
        loop {
            let mut head = [0u8; 5];
            self.read_exact(&mut head)?;
            let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; length.saturating_sub(4)];
            self.read_exact(&mut body)?;
            match head[0] {
                b'S' | b'Q' => return Ok(()),
                b'X' => return Err(io::ErrorKind::UnexpectedEof.into()),
                _ => {}
            }
        }
    }
}

fn is_poll_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
