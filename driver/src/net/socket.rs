//! The byte stream to the server: TCP or a unix socket, both from `may`, so
//! every wait parks the calling coroutine instead of its OS thread; host
//! names are resolved on a helper thread for the same reason. A TLS stream
//! is TCP with a rustls session (`tls.rs` for the handshake,
//! `tls_halves.rs` for the split halves).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use may::io::{SplitIo, SplitReader, SplitWriter};
use may::net::TcpStream;
use may::os::unix::net::UnixStream;

use crate::config::Config;
use crate::error::Error;
use crate::net::deadline::{deadline_named, time_left, timed_out};
use crate::net::off_scheduler::run_off_scheduler;
use crate::net::placement::{count_in_place, place, Placement};
#[cfg(feature = "tls")]
use crate::net::tls::TlsStream;
#[cfg(feature = "tls")]
use crate::net::tls_halves::{seal_last_words, SharedSession, TlsReadHalf, TlsWriteHalf};

/// A connected stream, before it is split into its reading and writing halves.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TCP with an established TLS session.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Socket {
    /// The `tls-server-end-point` channel-binding data (RFC 5929): the hash
    /// of the server's certificate, with SHA-256 when its signature uses
    /// MD5, SHA-1 or SHA-256, else the signature's own hash. `None` for a
    /// plain socket, or a certificate whose signature names no hash.
    pub(crate) fn tls_server_end_point(&self) -> Option<Vec<u8>> {
        match self {
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.end_point.clone(),
            _ => None,
        }
    }

    /// Whether the stream is encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            Socket::Tls(_) => true,
            _ => false,
        }
    }

    /// Opens a TCP connection, trying every address `host` resolves to, all
    /// before `deadline`; keepalive and `tcp_user_timeout` are set from
    /// `config`.
    pub(crate) fn connect_tcp(
        host: &str,
        port: u16,
        config: &Config,
        deadline: Option<Instant>,
    ) -> Result<Socket, Error> {
        let target = || format!("{host}:{port}");
        let connect_error = |source| Error::Connect {
            target: target(),
            source,
        };
        let addrs = resolve(host, port, deadline).map_err(connect_error)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
        for addr in addrs {
            let attempt = match time_left(deadline) {
                Err(e) => Err(e),
                Ok(Some(left)) => TcpStream::connect_timeout(&addr, left),
                Ok(None) => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    // Requests are written whole; Nagle would only add latency.
                    stream.set_nodelay(true).map_err(connect_error)?;
                    set_keepalive(stream.inner(), config).map_err(connect_error)?;
                    return Ok(Socket::Tcp(stream));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => last = timed_out(),
                Err(e) => last = e,
            }
        }
        Err(connect_error(last))
    }

    /// Opens the unix socket `.s.PGSQL.<port>` in directory `dir`.
    pub(crate) fn connect_unix(dir: &Path, port: u16) -> Result<Socket, Error> {
        let path = dir.join(format!(".s.PGSQL.{port}"));
        UnixStream::connect(&path)
            .map(Socket::Unix)
            .map_err(|source| Error::Connect {
                target: path.display().to_string(),
                source,
            })
    }

    /// Sets (or with `None` clears) the read and write timeouts of the
    /// next socket calls. Must be cleared before [`Socket::split`], whose
    /// halves inherit them.
    pub(crate) fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Socket::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            #[cfg(feature = "tls")]
            Socket::Tls(s) => {
                s.tcp.set_read_timeout(timeout)?;
                s.tcp.set_write_timeout(timeout)
            }
        }
    }

    /// Whether this is a plain TCP stream (TLS negotiation only applies to
    /// TCP).
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Socket::Tcp(_))
    }

    /// Splits into halves that one reader and one writer coroutine may use
    /// at the same time, plus a handle that can shut the socket down; the
    /// socket is first moved to the least busy scheduler thread (see
    /// [`place`]), which the returned [`Placement`] counts it on.
    pub(crate) fn split(self) -> io::Result<(ReadHalf, WriteHalf, ShutdownHandle, Placement)> {
        match self {
            Socket::Tcp(s) => {
                let (s, placement) = place(s)?;
                let handle = ShutdownHandle::Tcp(s.inner().try_clone()?);
                let (r, w) = s.split()?;
                Ok((ReadHalf::Tcp(r), WriteHalf::Tcp(w), handle, placement))
            }
            Socket::Unix(s) => {
                let placement = count_in_place(s.as_raw_fd());
                let handle = ShutdownHandle::Unix(s.inner().try_clone()?);
                let (r, w) = s.split()?;
                Ok((ReadHalf::Unix(r), WriteHalf::Unix(w), handle, placement))
            }
            #[cfg(feature = "tls")]
            Socket::Tls(s) => {
                let TlsStream { tcp, session, .. } = *s;
                let (tcp, placement) = place(tcp)?;
                let session: SharedSession = std::sync::Arc::new(parking_lot::Mutex::new(session));
                let handle = ShutdownHandle::Tls(tcp.inner().try_clone()?, session.clone());
                let (r, w) = tcp.split()?;
                Ok((
                    ReadHalf::Tls(Box::new(TlsReadHalf::new(r, session.clone()))),
                    WriteHalf::Tls(TlsWriteHalf::new(w, session)),
                    handle,
                    placement,
                ))
            }
        }
    }
}

/// Resolves `host` to socket addresses. An IP address needs no lookup; a
/// name is looked up on a helper thread (`getaddrinfo` blocks its thread)
/// while the coroutine parks, for at most the time left before `deadline`.
fn resolve(host: &str, port: u16, deadline: Option<Instant>) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_owned();
    run_off_scheduler(
        "odm-dns",
        deadline,
        "host-name lookup took longer than connect_timeout",
        move || {
            (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect)
        },
    )?
}

/// TCP keepalive (libpq's `keepalives*` settings) and `tcp_user_timeout`,
/// so a peer that vanished is noticed by the kernel.
fn set_keepalive(stream: &std::net::TcpStream, config: &Config) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    if config.keepalives() {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(config.keepalives_idle())
            .with_interval(config.keepalives_interval())
            .with_retries(config.keepalives_count());
        socket.set_tcp_keepalive(&keepalive)?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(timeout) = config.tcp_user_timeout() {
        socket.set_tcp_user_timeout(Some(timeout))?;
    }
    Ok(())
}

/// A socket whose every read and write must finish before a deadline: the
/// startup phase, bounded as a whole by `connect_timeout`.
pub(crate) struct Bounded<'a> {
    pub(crate) socket: &'a mut Socket,
    pub(crate) deadline: Option<Instant>,
}

impl Bounded<'_> {
    fn arm(&self) -> io::Result<()> {
        if self.deadline.is_some() {
            self.socket.set_timeouts(time_left(self.deadline)?)?;
        }
        Ok(())
    }
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        deadline_named(self.socket.read(buf))
    }
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        deadline_named(self.socket.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading half, owned by the connection's reader coroutine.
pub(crate) enum ReadHalf {
    Tcp(SplitReader<TcpStream>),
    Unix(SplitReader<UnixStream>),
    #[cfg(feature = "tls")]
    Tls(Box<TlsReadHalf>),
}

impl ReadHalf {
    /// Appends what the next read brings to `buf` (through `chunk` for a
    /// plain stream, decrypted for TLS); `Ok(0)` at end of stream.
    pub(crate) fn read_into(&mut self, chunk: &mut [u8], buf: &mut BytesMut) -> io::Result<usize> {
        let n = match self {
            ReadHalf::Tcp(s) => s.read(chunk)?,
            ReadHalf::Unix(s) => s.read(chunk)?,
            #[cfg(feature = "tls")]
            ReadHalf::Tls(s) => return s.read_into(buf),
        };
        if buf.capacity() - buf.len() < n {
            buf.reserve(n.max(chunk.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

/// The writing half, used by whichever task is flushing the write queue.
pub(crate) enum WriteHalf {
    Tcp(SplitWriter<TcpStream>),
    Unix(SplitWriter<UnixStream>),
    #[cfg(feature = "tls")]
    Tls(TlsWriteHalf),
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Tcp(s) => s.write(buf),
            WriteHalf::Unix(s) => s.write(buf),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A duplicate of the socket's descriptor, used only to shut the socket down
/// (which wakes the reader with end-of-file) and for a last non-blocking
/// `Terminate` from `Drop` (encrypted, with a `close_notify`, over TLS).
pub(crate) enum ShutdownHandle {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
    #[cfg(feature = "tls")]
    Tls(std::net::TcpStream, SharedSession),
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShutdownHandle::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            ShutdownHandle::Unix(s) => f.debug_tuple("Unix").field(s).finish(),
            #[cfg(feature = "tls")]
            ShutdownHandle::Tls(s, _) => f.debug_tuple("Tls").field(s).finish(),
        }
    }
}

impl ShutdownHandle {
    /// Shuts both directions down; errors (already closed) are ignored.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            ShutdownHandle::Tcp(s) => s.shutdown(Shutdown::Both),
            ShutdownHandle::Unix(s) => s.shutdown(Shutdown::Both),
            #[cfg(feature = "tls")]
            ShutdownHandle::Tls(s, _) => s.shutdown(Shutdown::Both),
        };
    }

    /// One non-blocking write attempt (the descriptor is non-blocking).
    pub(crate) fn try_write(&self, buf: &[u8]) {
        let _ = match self {
            ShutdownHandle::Tcp(s) => {
                let mut s: &std::net::TcpStream = s;
                s.write(buf)
            }
            ShutdownHandle::Unix(s) => {
                let mut s: &std::os::unix::net::UnixStream = s;
                s.write(buf)
            }
            #[cfg(feature = "tls")]
            ShutdownHandle::Tls(s, session) => {
                let sealed = seal_last_words(session, buf);
                let mut s: &std::net::TcpStream = s;
                s.write(&sealed)
            }
        };
    }
}
