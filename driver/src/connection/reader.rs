//! The reader coroutine of a connection: it parses message frames, handles
//! asynchronous messages (notices, notifications, parameter changes)
//! itself, and hands every other message to the oldest request's slot;
//! `ReadyForQuery` completes it. It also enforces what a request's answer
//! may not do: a shared request may not leave a transaction open, and the
//! client encoding must stay UTF8.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use may::sync::mpsc::Sender;
use postgres_protocol::message::backend::Message;

use crate::connection::connection::{CloseReason, Connection};
use crate::connection::slot::Slot;
use crate::net::socket::ReadHalf;
use crate::wire::frame::{next_message, FrameError, Framed, MessageOrder, Phase};
use crate::wire::notification::Notification;
use crate::wire::server_error::{log_notice, parse_fields};

/// How many recent notices a connection keeps for inspection.
const KEPT_NOTICES: usize = 16;
const READ_CHUNK: usize = 64 * 1024;
/// After a message larger than this the receive buffer starts afresh, so
/// a connection does not keep the largest answer it ever received.
const KEPT_BUFFER: usize = 256 * 1024;

/// A message [`next_message`] refused.
fn refused(error: FrameError) -> CloseReason {
    CloseReason::Protocol(error.to_string())
}

/// The per-connection reader coroutine.
pub(super) struct Reader {
    conn: Arc<Connection>,
    read: ReadHalf,
    buf: BytesMut,
    current: Option<Arc<Slot>>,
    /// Slots taken from the connection's queue in one batch (one lock for
    /// many answers), oldest first.
    taken: VecDeque<Arc<Slot>>,
    notifications: Sender<Notification>,
    /// The bounds of incoming messages (after login).
    phase: Phase,
    /// The order of the messages so far.
    order: MessageOrder,
}

impl Reader {
    pub(super) fn new(
        conn: Arc<Connection>,
        read: ReadHalf,
        buf: BytesMut,
        notifications: Sender<Notification>,
    ) -> Reader {
        let phase = Phase::Ready {
            max_message_bytes: conn.config().max_message_bytes(),
        };
        Reader {
            conn,
            read,
            buf,
            current: None,
            taken: VecDeque::new(),
            notifications,
            phase,
            order: MessageOrder::default(),
        }
    }

    pub(super) fn run(mut self) {
        let mut chunk = vec![0u8; READ_CHUNK];
        let reason = loop {
            if let Err(reason) = self.route() {
                break reason;
            }
            match self.read.read_into(&mut chunk, &mut self.buf) {
                Ok(0) => {
                    break CloseReason::Io(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection".to_owned(),
                    )
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break CloseReason::Io(e.kind(), e.to_string()),
            }
        };
        if let CloseReason::Protocol(message) = &reason {
            log::error!(target: "odm::pg", "closing the connection: {message}");
        }
        self.conn.shut(reason);
        let written_through = self.conn.written_through();
        if let Some(slot) = self.current.take() {
            slot.fail(self.conn.failure_of(&slot, written_through));
        }
        for slot in self.taken.drain(..) {
            slot.fail(self.conn.failure_of(&slot, written_through));
        }
    }

    /// Routes every complete message in the buffer. Each message is
    /// checked by [`next_message`] as soon as its 5-byte header is in (its
    /// type and length, before anything of its body is buffered) and again
    /// when it is complete (its shape and its place in the order): a bad
    /// one closes the connection at once, failing every request on it.
    fn route(&mut self) -> Result<(), CloseReason> {
        let mut pos = 0;
        let mut large = false;
        loop {
            let (tag, total) = match next_message(&self.buf[pos..], self.phase, &mut self.order)
                .map_err(refused)?
            {
                Framed::NeedHeader => break,
                Framed::Partial { total } => {
                    // Room for the rest of this message in one allocation
                    // (its size is bounded now), instead of doubling up
                    // to it.
                    self.buf.reserve(total - (self.buf.len() - pos));
                    break;
                }
                Framed::Message { tag, total } => (tag, total),
            };
            large |= total > KEPT_BUFFER;
            match tag {
                b'A' | b'N' | b'S' => {
                    if pos > 0 {
                        let segment = self.buf.split_to(pos);
                        self.deliver(segment, false, false)?;
                        pos = 0;
                    }
                    let message = self.buf.split_to(total);
                    self.handle_async(message)?;
                }
                b'Z' => {
                    self.conn.status.store(self.buf[pos + 5], Ordering::Release);
                    self.skip_grouped_reads();
                    pos += total;
                    let segment = self.buf.split_to(pos);
                    pos = 0;
                    self.deliver(segment, true, false)?;
                }
                b'G' | b'W' => {
                    // CopyInResponse / CopyBothResponse: the server now
                    // waits for the client, so hand the messages over now.
                    pos += total;
                    let segment = self.buf.split_to(pos);
                    pos = 0;
                    self.deliver(segment, false, true)?;
                }
                b'C' | b'I' | b'E' => {
                    if tag == b'E' {
                        self.check_fatal(pos, total);
                    }
                    pos += total;
                    if self.current_is_grouped() {
                        // A grouped read's answer ends with its statement.
                        let segment = self.buf.split_to(pos);
                        pos = 0;
                        self.deliver(segment, true, false)?;
                    }
                }
                _ => pos += total,
            }
        }
        if pos > 0 {
            let segment = self.buf.split_to(pos);
            self.deliver(segment, false, false)?;
        }
        let held = self.taken.len() + usize::from(self.current.is_some());
        self.conn.close_group_if_alone(held);
        if large {
            // The buffer is a view into the allocation of a large message
            // (which would otherwise be reused, and stay resident, for the
            // connection's life): start a small one, so the large one is
            // freed as soon as its request is done with it.
            let mut fresh = BytesMut::with_capacity(READ_CHUNK.max(self.buf.len()));
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
        Ok(())
    }

    /// Makes the oldest request without a complete answer the current
    /// one, when there is none.
    fn load_current(&mut self) {
        if self.current.is_some() {
            return;
        }
        if self.taken.is_empty() {
            let mut queue = self.conn.queue.lock();
            std::mem::swap(&mut self.taken, &mut queue.pending);
            // Published under the lock, so that `pending` plus the
            // reader's holds never undercounts what is in flight.
            self.conn
                .reader_holds
                .store(self.taken.len(), Ordering::Release);
        }
        self.current = self.taken.pop_front();
        self.publish_holds();
    }

    /// Whether the current answer is a grouped read's, which ends with its
    /// statement's completion or error.
    fn current_is_grouped(&mut self) -> bool {
        self.load_current();
        self.current.as_ref().is_some_and(|slot| slot.is_grouped())
    }

    /// At a `ReadyForQuery`: the grouped reads still waiting for an answer
    /// were skipped by the server, because a read before them in their
    /// group failed; their requesters send them again.
    fn skip_grouped_reads(&mut self) {
        while self.current_is_grouped() {
            if let Some(slot) = self.current.take() {
                slot.skip();
            }
            self.publish_holds();
        }
    }

    /// Hands whole messages to the request they answer.
    fn deliver(&mut self, segment: BytesMut, last: bool, copy_in: bool) -> Result<(), CloseReason> {
        self.load_current();
        match &self.current {
            Some(slot) => {
                if last
                    && !slot.is_grouped()
                    && self.conn.status.load(Ordering::Acquire) != b'I'
                    && slot.requires_idle()
                {
                    // Every request behind it ran inside that transaction,
                    // which dies with the connection: all of them fail.
                    return Err(CloseReason::SharedTransaction);
                }
                slot.push(segment, last, copy_in);
                if last {
                    self.current = None;
                    self.publish_holds();
                }
                Ok(())
            }
            None => self.unsolicited(segment),
        }
    }

    /// Tells `send` how many answers the reader still owes.
    fn publish_holds(&self) {
        let holds = self.taken.len() + usize::from(self.current.is_some());
        self.conn.reader_holds.store(holds, Ordering::Release);
    }

    /// Messages nobody asked for: a fatal error before the server hangs up
    /// (e.g. `pg_terminate_backend`) is kept as the reason; anything else
    /// breaks the protocol.
    fn unsolicited(&mut self, mut segment: BytesMut) -> Result<(), CloseReason> {
        while let Some(message) = Message::parse(&mut segment)
            .map_err(|e| CloseReason::Protocol(format!("malformed message: {e}")))?
        {
            match message {
                Message::ErrorResponse(body) => {
                    let error = parse_fields(body.fields())
                        .map_err(|e| CloseReason::Protocol(e.to_string()))?;
                    log::warn!(target: "odm::pg", "server error outside any request: {error}");
                }
                _ => {
                    return Err(CloseReason::Protocol(
                        "unexpected message outside any request".to_owned(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Remembers a FATAL/PANIC error as the reason the connection ends.
    fn check_fatal(&self, pos: usize, total: usize) {
        let mut copy = BytesMut::from(&self.buf[pos..pos + total]);
        if let Ok(Some(Message::ErrorResponse(body))) = Message::parse(&mut copy) {
            if let Ok(error) = parse_fields(body.fields()) {
                if matches!(error.severity.as_str(), "FATAL" | "PANIC") {
                    self.conn.record_fatal(error);
                }
            }
        }
    }

    fn handle_async(&mut self, mut message: BytesMut) -> Result<(), CloseReason> {
        let protocol = |e: io::Error| CloseReason::Protocol(format!("malformed message: {e}"));
        match Message::parse(&mut message).map_err(protocol)? {
            Some(Message::NoticeResponse(body)) => {
                let notice = parse_fields(body.fields())
                    .map_err(|e| CloseReason::Protocol(e.to_string()))?;
                log_notice(&notice);
                let mut notices = self.conn.notices.lock();
                if notices.len() == KEPT_NOTICES {
                    notices.pop_front();
                }
                notices.push_back(notice);
            }
            Some(Message::NotificationResponse(body)) => {
                let notification = Notification::new(
                    body.process_id(),
                    body.channel().map_err(protocol)?.to_owned(),
                    body.message().map_err(protocol)?.to_owned(),
                );
                // Nobody listening any more is fine.
                let _ = self.notifications.send(notification);
            }
            Some(Message::ParameterStatus(body)) => {
                let name = body.name().map_err(protocol)?.to_owned();
                let value = body.value().map_err(protocol)?.to_owned();
                if name == "client_encoding" && !value.eq_ignore_ascii_case("UTF8") {
                    // Text would now arrive in another encoding and be
                    // decoded as UTF-8: wrong strings, not errors.
                    return Err(CloseReason::Protocol(format!(
                        "the server switched client_encoding to {value}; odm needs UTF8"
                    )));
                }
                self.conn.parameters.lock().insert(name, value);
            }
            _ => {
                return Err(CloseReason::Protocol(
                    "malformed asynchronous message".to_owned(),
                ))
            }
        }
        Ok(())
    }
}
