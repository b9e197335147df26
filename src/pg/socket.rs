//! The byte stream to the server: TCP or a unix socket, both from `may`, so
//! every wait parks the calling coroutine instead of its OS thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use may::io::{SplitIo, SplitReader, SplitWriter};
use may::net::TcpStream;
use may::os::unix::net::UnixStream;

use crate::Error;

/// A connected stream, before it is split into its reading and writing halves.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    /// Opens a TCP connection, trying every address `host` resolves to.
    pub(crate) fn connect_tcp(
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<Socket, Error> {
        let target = || format!("{host}:{port}");
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|source| Error::Connect {
                target: target(),
                source,
            })?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
        for addr in addrs {
            let attempt = match timeout {
                Some(t) => TcpStream::connect_timeout(&addr, t),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    // Requests are written whole; Nagle would only add latency.
                    let configured = stream.set_nodelay(true).and_then(|()| {
                        stream.set_read_timeout(timeout)?;
                        stream.set_write_timeout(timeout)
                    });
                    configured.map_err(|source| Error::Connect {
                        target: target(),
                        source,
                    })?;
                    return Ok(Socket::Tcp(stream));
                }
                Err(e) => last = e,
            }
        }
        Err(Error::Connect {
            target: target(),
            source: last,
        })
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

    /// Sets (or with `None` clears) the read and write timeouts, which
    /// bound the startup phase by `connect_timeout`. Must be cleared before
    /// [`Socket::split`], whose halves inherit them.
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
        }
    }

    /// Whether this is a TCP stream (TLS negotiation only applies to TCP).
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Socket::Tcp(_))
    }

    /// Splits into halves that one reader and one writer coroutine may use
    /// at the same time, plus a handle that can shut the socket down.
    pub(crate) fn split(self) -> io::Result<(ReadHalf, WriteHalf, ShutdownHandle)> {
        match self {
            Socket::Tcp(s) => {
                let handle = ShutdownHandle::Tcp(s.inner().try_clone()?);
                let (r, w) = s.split()?;
                Ok((ReadHalf::Tcp(r), WriteHalf::Tcp(w), handle))
            }
            Socket::Unix(s) => {
                let handle = ShutdownHandle::Unix(s.inner().try_clone()?);
                let (r, w) = s.split()?;
                Ok((ReadHalf::Unix(r), WriteHalf::Unix(w), handle))
            }
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
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
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadHalf::Tcp(s) => s.read(buf),
            ReadHalf::Unix(s) => s.read(buf),
        }
    }
}

/// The writing half, used by whichever task is flushing the write queue.
pub(crate) enum WriteHalf {
    Tcp(SplitWriter<TcpStream>),
    Unix(SplitWriter<UnixStream>),
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Tcp(s) => s.write(buf),
            WriteHalf::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A duplicate of the socket's descriptor, used only to shut the socket down
/// (which wakes the reader with end-of-file) and for a last non-blocking
/// `Terminate` from `Drop`.
#[derive(Debug)]
pub(crate) enum ShutdownHandle {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl ShutdownHandle {
    /// Shuts both directions down; errors (already closed) are ignored.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            ShutdownHandle::Tcp(s) => s.shutdown(Shutdown::Both),
            ShutdownHandle::Unix(s) => s.shutdown(Shutdown::Both),
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
        };
    }
}
