//! COPY: `COPY ... FROM STDIN` through a writer, `COPY ... TO STDOUT`
//! through a reader, both streaming.

use std::fmt;
use std::io;

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use std::sync::Arc;

use crate::connection::connection::Connection;
use crate::connection::slot::Slot;
use crate::connection::write_queue::Sending;
use crate::error::Error;
use crate::request::request;
use crate::request::response::Response;
use crate::request::statement_log::StatementLog;
use crate::wire::command_tag::rows_affected;
use crate::wire::server_error::db_error;

/// Data is sent in `CopyData` messages of about this size.
const COPY_CHUNK: usize = 64 * 1024;
const HEADER: usize = 5;

/// The writing end of `COPY ... FROM STDIN` (an [`io::Write`]).
///
/// While it is open, other requests on the same connection wait. Call
/// [`CopyInWriter::finish`] to complete the copy; dropping the writer
/// aborts it (`CopyFail`).
pub struct CopyInWriter<'a> {
    conn: &'a Arc<Connection>,
    response: Response,
    /// A `CopyData` message being filled: 5 header bytes, then data.
    buf: BytesMut,
    error: Option<Error>,
    open: bool,
    /// The copy's log entry, written when it ends.
    log: Option<StatementLog>,
}

impl fmt::Debug for CopyInWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyInWriter")
            .field("buffered", &(self.buf.len() - HEADER))
            .field("open", &self.open)
            .finish()
    }
}

impl<'a> CopyInWriter<'a> {
    pub(crate) fn start(conn: &'a Arc<Connection>, sql: &str) -> Result<CopyInWriter<'a>, Error> {
        let log = StatementLog::start(conn, sql);
        match CopyInWriter::start_unlogged(conn, sql) {
            Ok(mut writer) => {
                writer.log = log;
                Ok(writer)
            }
            Err(e) => {
                if let Some(log) = log {
                    log.finish(conn, Err(&e));
                }
                Err(e)
            }
        }
    }

    fn start_unlogged(conn: &'a Arc<Connection>, sql: &str) -> Result<CopyInWriter<'a>, Error> {
        conn.hold_writes(true)?;
        let mut query = BytesMut::new();
        if let Err(e) = frontend::query(sql, &mut query) {
            conn.release_writes();
            return Err(e.into());
        }
        let slot = Slot::new(true, false);
        if let Err(e) = conn.send(&query, Some(slot.clone()), Sending::ByWriteHolder) {
            conn.release_writes();
            return Err(e);
        }
        let mut response = Response::new(slot, request::deadline(conn));
        let first = response.next();
        match first {
            Ok(Message::CopyInResponse(_)) => {
                let mut buf = BytesMut::with_capacity(COPY_CHUNK + HEADER);
                buf.extend_from_slice(&[b'd', 0, 0, 0, 0]);
                Ok(CopyInWriter {
                    conn,
                    response,
                    buf,
                    error: None,
                    open: true,
                    log: None,
                })
            }
            Ok(Message::ErrorResponse(body)) => {
                conn.release_writes();
                let error = db_error(body.fields());
                response.drain().ok();
                Err(error)
            }
            Ok(_) => {
                conn.release_writes();
                response.drain().ok();
                Err(Error::Protocol(
                    "the statement given to copy_in is not COPY ... FROM STDIN".to_owned(),
                ))
            }
            Err(e) => {
                conn.release_writes();
                Err(e)
            }
        }
    }

    /// Sends the buffered data as one `CopyData` message.
    fn send_chunk(&mut self) -> Result<(), Error> {
        if self.buf.len() == HEADER {
            return Ok(());
        }
        let len = (self.buf.len() - 1) as u32;
        self.buf[1..HEADER].copy_from_slice(&len.to_be_bytes());
        let sent = self.conn.send(&self.buf, None, Sending::ByWriteHolder);
        self.buf.truncate(HEADER);
        sent?;
        // The server reports bad data as soon as it sees it.
        if self.response.has_buffered() {
            self.read_early_error()?;
        }
        Ok(())
    }

    fn read_early_error(&mut self) -> Result<(), Error> {
        match self.response.next()? {
            Message::ErrorResponse(body) => {
                let e = db_error(body.fields());
                self.response.drain().ok();
                Err(e)
            }
            _ => Err(Error::Protocol(
                "unexpected message during copy in".to_owned(),
            )),
        }
    }

    /// Sends the rest of the data and `CopyDone`; returns the number of
    /// rows copied.
    pub fn finish(mut self) -> Result<u64, Error> {
        let log = self.log.take();
        let outcome = self.finish_unlogged();
        if let Some(log) = log {
            log.finish(self.conn, outcome.as_ref().copied());
        }
        outcome
    }

    fn finish_unlogged(&mut self) -> Result<u64, Error> {
        if let Some(e) = self.error.take() {
            self.close(Some("copy aborted after an error"));
            return Err(e);
        }
        if let Err(e) = self.send_chunk() {
            self.close(Some("copy aborted after an error"));
            return Err(e);
        }
        self.close(None);
        let mut rows = 0;
        let mut error = None;
        while !self.response.is_finished() {
            match self.response.next()? {
                Message::CommandComplete(body) => rows = rows_affected(body.tag()?),
                Message::ErrorResponse(body) => {
                    error = error.or_else(|| Some(db_error(body.fields())))
                }
                _ => {}
            }
        }
        error.map_or(Ok(rows), Err)
    }

    /// Ends copy mode with `CopyDone` (no reason) or `CopyFail`, and lets
    /// other requests through again.
    fn close(&mut self, fail: Option<&str>) {
        if !self.open {
            return;
        }
        self.open = false;
        let mut msg = BytesMut::new();
        let encoded = match fail {
            None => {
                frontend::copy_done(&mut msg);
                Ok(())
            }
            Some(reason) => frontend::copy_fail(reason, &mut msg),
        };
        let conn = self.conn;
        if encoded.is_ok() && !self.response.is_finished() {
            // A failure here closes the connection, which the response reports.
            let _ = conn.send(&msg, None, Sending::ByWriteHolder);
        }
        conn.release_writes();
    }
}

impl io::Write for CopyInWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(io::Error::other(e.to_string()));
        }
        let room = COPY_CHUNK + HEADER - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= COPY_CHUNK + HEADER {
            if let Err(e) = self.send_chunk() {
                let message = e.to_string();
                self.error = Some(e);
                return Err(io::Error::other(message));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Err(e) = self.send_chunk() {
            let message = e.to_string();
            self.error = Some(e);
            return Err(io::Error::other(message));
        }
        Ok(())
    }
}

impl Drop for CopyInWriter<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        self.close(Some("copy aborted by the client"));
        if may::coroutine::is_coroutine() {
            // The server answers the CopyFail with an error; consume it so
            // the connection is clean for the next request.
            let _ = self.response.drain();
        }
    }
}

/// The reading end of `COPY ... TO STDOUT` (an [`io::Read`]). Dropping it
/// early discards the rest of the data; the connection stays usable.
pub struct CopyOutReader<'a> {
    conn: &'a Connection,
    response: Response,
    chunk: Bytes,
    error: Option<Error>,
    rows: u64,
    /// The copy's log entry, written when it ends.
    log: Option<StatementLog>,
}

impl fmt::Debug for CopyOutReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOutReader")
            .field("finished", &self.response.is_finished())
            .finish()
    }
}

impl<'a> CopyOutReader<'a> {
    pub(crate) fn start(conn: &'a Arc<Connection>, sql: &str) -> Result<CopyOutReader<'a>, Error> {
        let log = StatementLog::start(conn, sql);
        match CopyOutReader::start_unlogged(conn, sql) {
            Ok(mut reader) => {
                reader.log = log;
                Ok(reader)
            }
            Err(e) => {
                if let Some(log) = log {
                    log.finish(conn, Err(&e));
                }
                Err(e)
            }
        }
    }

    fn start_unlogged(conn: &'a Arc<Connection>, sql: &str) -> Result<CopyOutReader<'a>, Error> {
        let mut response = request::request(conn, true, |buf| {
            frontend::query(sql, buf)?;
            Ok(())
        })?;
        match response.next()? {
            Message::CopyOutResponse(_) => Ok(CopyOutReader {
                conn,
                response,
                chunk: Bytes::new(),
                error: None,
                rows: 0,
                log: None,
            }),
            Message::ErrorResponse(body) => {
                let error = db_error(body.fields());
                response.drain().ok();
                Err(error)
            }
            other => {
                if matches!(other, Message::CopyInResponse(_)) && !conn.refuse_copy(false) {
                    // The server waited for data that will never come, and
                    // the connection had to be closed to end that.
                    return Err(conn.closed_error());
                }
                response.drain().ok();
                Err(Error::Protocol(
                    "the statement given to copy_out is not COPY ... TO STDOUT".to_owned(),
                ))
            }
        }
    }

    /// The number of rows the server reported, once all data was read.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Fetches the next chunk; false at the end of the data. The copy is
    /// logged when it ends.
    fn fill(&mut self) -> Result<bool, Error> {
        let outcome = self.fill_unlogged();
        if !matches!(outcome, Ok(true)) {
            if let Some(log) = self.log.take() {
                log.finish(self.conn, outcome.as_ref().map(|_| self.rows));
            }
        }
        outcome
    }

    fn fill_unlogged(&mut self) -> Result<bool, Error> {
        while !self.response.is_finished() {
            match self.response.next()? {
                Message::CopyData(body) => {
                    self.chunk = body.into_bytes();
                    if !self.chunk.is_empty() {
                        return Ok(true);
                    }
                }
                Message::CommandComplete(body) => self.rows = rows_affected(body.tag()?),
                Message::ErrorResponse(body) => {
                    let e = db_error(body.fields());
                    self.response.drain().ok();
                    return Err(e);
                }
                _ => {}
            }
        }
        Ok(false)
    }
}

impl io::Read for CopyOutReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(io::Error::other(e.to_string()));
        }
        if self.chunk.is_empty() {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    let message = e.to_string();
                    self.error = Some(e);
                    return Err(io::Error::other(message));
                }
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}
