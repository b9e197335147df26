//! The requesting task's view of its answer ([`Response`]): the backend
//! messages its [`Slot`] received, parsed by the requester itself, so the
//! reader only frames bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use postgres_protocol::message::backend::Message;

use crate::connection::connection::Connection;
use crate::connection::slot::Slot;
use crate::error::Error;
use crate::wire::command_tag::{forgets_prepared_statements, tag_row_count};
use crate::wire::server_error;

/// A backend message as [`Response::next_frame`] returns it.
pub(crate) enum Frame {
    /// A message with nothing to read but its tag (`BindComplete`,
    /// `ParseComplete`, `NoData`, `CloseComplete`, `PortalSuspended`).
    Skip,
    /// `EmptyQueryResponse`: a statement of empty text completed.
    EmptyQuery,
    /// `CommandComplete` with the row count of its tag (except after
    /// `DISCARD ALL` and `DEALLOCATE ALL`, which come as a [`Frame::Message`]).
    CommandComplete(u64),
    /// `ReadyForQuery`: the answer is complete; the transaction status it
    /// reported (`I`, `T` or `E`).
    Ready(u8),
    /// Any other message, parsed.
    Message(Message),
}

/// A request's client-side deadline (`query_timeout`): how long each wait
/// for more of the answer may last, and the connection to clean up when
/// one does not end in time.
#[derive(Debug)]
pub(crate) struct QueryDeadline {
    pub(crate) timeout: Duration,
    pub(crate) connection: Arc<Connection>,
    /// Ask the server to cancel the request when it times out (else the
    /// connection is closed at once: right for a probe such as
    /// `check_alive`, where nothing is worth saving).
    pub(crate) cancel: bool,
}

/// The requesting task's reader of its answer, message by message.
#[derive(Debug)]
pub(crate) struct Response {
    slot: Arc<Slot>,
    data: BytesMut,
    received_all: bool,
    finished: bool,
    deadline: Option<QueryDeadline>,
}

impl Response {
    pub(crate) fn new(slot: Arc<Slot>, deadline: Option<QueryDeadline>) -> Response {
        Response {
            slot,
            data: BytesMut::new(),
            received_all: false,
            finished: false,
            deadline,
        }
    }

    /// The next backend message of this answer; `ReadyForQuery` is the last.
    pub(crate) fn next(&mut self) -> Result<Message, Error> {
        loop {
            if self.complete_frame()?.is_some() {
                return self.parse_frame();
            }
            if self.ends_grouped_read() {
                self.finished = true;
                return ready_for_query();
            }
            self.receive()?;
        }
    }

    /// Like [`Response::next`], but the messages that carry nothing a
    /// query result needs beyond their tag (`BindComplete`, `CommandComplete`,
    /// `ReadyForQuery`, ...) are consumed in place, without splitting them
    /// off the shared receive buffer (each split costs atomic reference
    /// counting on a buffer the reader and other tasks touch too).
    pub(crate) fn next_frame(&mut self) -> Result<Frame, Error> {
        loop {
            let Some((tag, total)) = self.complete_frame()? else {
                if self.ends_grouped_read() {
                    self.finished = true;
                    return Ok(Frame::Ready(b'I'));
                }
                self.receive()?;
                continue;
            };
            let bodyless = total == 5;
            let frame = match tag {
                b'1' | b'2' | b'3' | b'n' | b's' if bodyless => Frame::Skip,
                b'I' if bodyless => Frame::EmptyQuery,
                b'Z' if total == 6 => {
                    self.finished = true;
                    Frame::Ready(self.data[5])
                }
                b'C' => {
                    let body = &self.data[5..total];
                    let end = body.iter().position(|&b| b == 0).ok_or_else(|| {
                        Error::Protocol("malformed message: bad command tag".to_owned())
                    })?;
                    if forgets_prepared_statements(&body[..end]) {
                        // The requester must see the tag to empty its
                        // statement cache.
                        return self.parse_frame().map(Frame::Message);
                    }
                    Frame::CommandComplete(tag_row_count(&body[..end]))
                }
                _ => return self.parse_frame().map(Frame::Message),
            };
            self.data.advance(total);
            return Ok(frame);
        }
    }

    /// Whether the answer of a grouped read (see
    /// `connection::write_queue`) was read to its end: it ends with its
    /// statement's completion or error, not with `ReadyForQuery` (which
    /// answers the whole group), so the end counts as one.
    fn ends_grouped_read(&self) -> bool {
        self.received_all && !self.finished && self.data.is_empty() && self.slot.is_grouped()
    }

    /// Whether the server skipped this grouped read (an earlier read of
    /// its group failed) and it got no answer: it may be sent again.
    pub(crate) fn was_skipped(&self) -> bool {
        self.slot.was_skipped()
    }

    /// The tag and total length of the first buffered message, when it is
    /// complete.
    fn complete_frame(&self) -> Result<Option<(u8, usize)>, Error> {
        if self.data.len() < 5 {
            return Ok(None);
        }
        let len =
            u32::from_be_bytes([self.data[1], self.data[2], self.data[3], self.data[4]]) as usize;
        if len < 4 {
            return Err(Error::Protocol(format!(
                "malformed message: invalid message length {len}"
            )));
        }
        Ok((self.data.len() > len).then_some((self.data[0], len + 1)))
    }

    /// Parses the first buffered message, known to be complete.
    fn parse_frame(&mut self) -> Result<Message, Error> {
        match Message::parse(&mut self.data)
            .map_err(|e| Error::Protocol(format!("malformed message: {e}")))?
        {
            Some(message) => {
                if matches!(message, Message::ReadyForQuery(_)) {
                    self.finished = true;
                }
                Ok(message)
            }
            None => Err(Error::Protocol(
                "malformed message: incomplete frame".to_owned(),
            )),
        }
    }

    /// Waits for more of the answer; an error when it already ended.
    fn receive(&mut self) -> Result<(), Error> {
        if self.received_all || self.finished {
            self.finished = true;
            return Err(Error::Protocol(
                "the answer ended without ReadyForQuery".to_owned(),
            ));
        }
        let deadline = self.deadline.as_ref().map(|d| Instant::now() + d.timeout);
        match self.slot.wait(deadline) {
            Ok(Some((data, last))) => {
                self.data.unsplit(data);
                self.received_all = last;
                Ok(())
            }
            Ok(None) => {
                // Only a wait with a deadline ends without an answer.
                self.finished = true;
                let timeout = self.deadline.take().map_or(Duration::ZERO, |d| {
                    d.connection.time_out(&self.slot, d.cancel);
                    d.timeout
                });
                Err(Error::QueryTimeout { timeout })
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }

    /// True once `ReadyForQuery` (or a failure) was returned.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether more messages can be read without waiting.
    pub(crate) fn has_buffered(&self) -> bool {
        !self.data.is_empty() || self.slot.has_data()
    }

    /// Reads and drops messages up to `ReadyForQuery`, returning the first
    /// server error seen on the way, if any.
    pub(crate) fn drain(&mut self) -> Result<(), Error> {
        let mut first_error = None;
        while !self.finished {
            match self.next() {
                Ok(Message::ErrorResponse(body)) => {
                    if first_error.is_none() {
                        first_error = Some(server_error::db_error(body.fields()));
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(first_error.unwrap_or(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        if !self.finished {
            self.slot.abandon();
            return;
        }
        // Keep the slot for the next request when nobody else (the reader)
        // still holds it, saving two allocations and two frees per request.
        if !may::coroutine::is_coroutine() {
            return;
        }
        if let Some(slot) = Arc::get_mut(&mut self.slot) {
            slot.empty();
            Slot::keep_for_reuse(self.slot.clone());
        }
    }
}

/// The `ReadyForQuery` that ends a grouped read's answer for a caller that
/// reads whole messages.
fn ready_for_query() -> Result<Message, Error> {
    let mut bytes = BytesMut::from(&b"Z\0\0\0\x05I"[..]);
    match Message::parse(&mut bytes) {
        Ok(Some(message)) => Ok(message),
        _ => Err(Error::Protocol(
            "malformed message: bad ReadyForQuery".to_owned(),
        )),
    }
}
