//! The TLS session split between the connection's reader and writer
//! coroutines. rustls keeps no socket: its `ClientConnection` sits behind a
//! short `parking_lot` lock that is never held across socket I/O. The
//! reader reads ciphertext from its `may` half (parking), then under the
//! lock feeds it to rustls and drains the plaintext; the writer encrypts a
//! whole flushed batch under the lock into its own buffer and writes that
//! outside the lock (one lock and one write per batch, as the plain path).

use std::io::{self, BufRead, Write};
use std::sync::Arc;

use bytes::BytesMut;
use may::io::{SplitReader, SplitWriter};
use may::net::TcpStream;
use parking_lot::Mutex;
use rustls::ClientConnection;

/// The session both halves (and the shutdown handle) share.
pub(crate) type SharedSession = Arc<Mutex<ClientConnection>>;

/// Ciphertext read per socket call.
const CIPHER_CHUNK: usize = 64 * 1024;
/// A write buffer grown past this by one huge batch is not kept.
const MAX_KEPT_CIPHER: usize = 1 << 20;

/// The reading half of a TLS connection.
pub(crate) struct TlsReadHalf {
    read: SplitReader<TcpStream>,
    session: SharedSession,
    cipher: Vec<u8>,
}

impl TlsReadHalf {
    pub(crate) fn new(read: SplitReader<TcpStream>, session: SharedSession) -> TlsReadHalf {
        TlsReadHalf {
            read,
            session,
            cipher: vec![0u8; CIPHER_CHUNK],
        }
    }

    /// Appends the next plaintext to `buf`, parking for ciphertext when
    /// none is decrypted yet; `Ok(0)` when the server closed the stream.
    pub(crate) fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            match drain(&mut self.session.lock(), buf)? {
                Drained::Closed(0) => return Ok(0),
                Drained::Closed(n) | Drained::More(n) if n > 0 => return Ok(n),
                _ => {}
            }
            let n = std::io::Read::read(&mut self.read, &mut self.cipher)?;
            if n == 0 {
                return Ok(0);
            }
            let mut session = self.session.lock();
            let mut input = &self.cipher[..n];
            let mut total = 0;
            let mut closed = false;
            while !input.is_empty() {
                if session.read_tls(&mut input)? == 0 {
                    // rustls takes nothing after the server's close_notify.
                    closed = true;
                    break;
                }
                session
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                match drain(&mut session, buf)? {
                    Drained::More(got) => total += got,
                    Drained::Closed(got) => {
                        total += got;
                        closed = true;
                        break;
                    }
                }
            }
            if total > 0 || closed {
                return Ok(total);
            }
        }
    }
}

enum Drained {
    /// This many bytes; the stream goes on.
    More(usize),
    /// This many bytes, then the server's `close_notify`.
    Closed(usize),
}

/// Moves every decrypted byte into `buf`.
fn drain(session: &mut ClientConnection, buf: &mut BytesMut) -> io::Result<Drained> {
    let mut total = 0;
    let mut reader = session.reader();
    loop {
        match reader.fill_buf() {
            Ok([]) => return Ok(Drained::Closed(total)),
            Ok(chunk) => {
                let n = chunk.len();
                buf.extend_from_slice(chunk);
                reader.consume(n);
                total += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::More(total)),
            Err(e) => return Err(e),
        }
    }
}

/// The writing half of a TLS connection.
pub(crate) struct TlsWriteHalf {
    write: SplitWriter<TcpStream>,
    session: SharedSession,
    cipher: Vec<u8>,
}

impl TlsWriteHalf {
    pub(crate) fn new(write: SplitWriter<TcpStream>, session: SharedSession) -> TlsWriteHalf {
        TlsWriteHalf {
            write,
            session,
            cipher: Vec::new(),
        }
    }
}

impl Write for TlsWriteHalf {
    /// Encrypts all of `buf` and writes it; callers write whole batches.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        {
            let mut session = self.session.lock();
            session.writer().write_all(buf)?;
            while session.wants_write() {
                session.write_tls(&mut self.cipher)?;
            }
        }
        let written = self.write.write_all(&self.cipher);
        self.cipher.clear();
        if self.cipher.capacity() > MAX_KEPT_CIPHER {
            self.cipher = Vec::new();
        }
        written.map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypts `plain` (may be empty) and a `close_notify` for a last
/// non-blocking write from `Drop`.
pub(crate) fn seal_last_words(session: &SharedSession, plain: &[u8]) -> Vec<u8> {
    let mut session = session.lock();
    let mut out = Vec::new();
    if session.writer().write_all(plain).is_err() {
        return out;
    }
    session.send_close_notify();
    while session.wants_write() {
        if session.write_tls(&mut out).is_err() {
            break;
        }
    }
    out
}
