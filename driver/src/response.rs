//! One request's place in the connection's answer queue ([`Slot`]) and the
//! requesting task's view of its answer ([`Response`]).
//!
//! The reader coroutine appends the backend messages that belong to a
//! request to its slot, up to and including the `ReadyForQuery` that ends
//! it, and wakes the requester: once at the end for ordinary requests, on
//! every arrival for streaming ones (COPY). The requester parses the
//! messages itself, so the reader only frames bytes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use may::sync::Blocker;
use parking_lot::Mutex;
use postgres_protocol::message::backend::Message;

use super::connection::Connection;
use super::statement_cache::forgets_prepared_statements;
use crate::Error;

thread_local! {
    /// Finished slots kept for the next requests on this thread: a slot is
    /// put here when its answer was read to the end and nobody else holds
    /// it, and taken out without parking in between, so nothing is held
    /// across a park.
    static SPARE_SLOTS: RefCell<Vec<Arc<Slot>>> = const { RefCell::new(Vec::new()) };
}

/// How many finished slots a thread keeps for reuse.
const SPARE_SLOTS_KEPT: usize = 64;

/// Where the reader puts one request's answer.
#[derive(Debug)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    blocker: Blocker,
    /// The request ran on a shared client: its `ReadyForQuery` must find
    /// the connection idle (no transaction left open). Set before the slot
    /// is queued, read by the reader without taking the state's lock.
    require_idle: AtomicBool,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Wake the requester on every arrival, not only at the end.
    streaming: bool,
    data: BytesMut,
    done: bool,
    failed: Option<Error>,
    abandoned: bool,
}

impl Slot {
    /// A slot for the calling task; `streaming` wakes it on every arrival;
    /// `require_idle` makes the connection fail the request (and close) if
    /// it ends inside a transaction.
    pub(crate) fn new(streaming: bool, require_idle: bool) -> Arc<Slot> {
        if may::coroutine::is_coroutine() {
            if let Some(mut slot) = SPARE_SLOTS.with(|spare| spare.borrow_mut().pop()) {
                if let Some(unique) = Arc::get_mut(&mut slot) {
                    *unique.state.get_mut() = SlotState {
                        streaming,
                        ..SlotState::default()
                    };
                    *unique.require_idle.get_mut() = require_idle;
                    // A wake-up left over from the last answer (it came
                    // before its requester parked) at worst makes the
                    // next wait loop once more.
                    return slot;
                }
            }
        }
        Arc::new(Slot {
            state: Mutex::new(SlotState {
                streaming,
                ..SlotState::default()
            }),
            blocker: Blocker::new(true),
            require_idle: AtomicBool::new(require_idle),
        })
    }

    /// A slot nobody waits for: its answer is read and thrown away.
    pub(crate) fn abandoned() -> Arc<Slot> {
        let slot = Slot::new(false, false);
        slot.state.lock().abandoned = true;
        slot
    }

    /// Called by the reader with whole messages; `last` ends the answer.
    /// `copy_in` says the server now waits for COPY data, so the requester
    /// must see the messages before the end (the slot streams from now on).
    pub(crate) fn push(&self, segment: BytesMut, last: bool, copy_in: bool) {
        let wake = {
            let mut state = self.state.lock();
            if !state.abandoned {
                state.data.unsplit(segment);
            }
            if last {
                state.done = true;
            }
            state.streaming |= copy_in;
            (last || state.streaming) && !state.abandoned
        };
        if wake {
            self.blocker.unpark();
        }
    }

    /// Whether this request must leave the connection outside a transaction.
    pub(crate) fn requires_idle(&self) -> bool {
        self.require_idle.load(Ordering::Relaxed)
    }

    /// The connection failed before the answer was complete.
    pub(crate) fn fail(&self, error: Error) {
        {
            let mut state = self.state.lock();
            if state.done || state.abandoned {
                return;
            }
            state.failed = Some(error);
        }
        self.blocker.unpark();
    }

    /// The requester gave up on the answer: the reader discards the rest.
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        state.abandoned = true;
        state.data = BytesMut::new();
    }

    /// Whether an error has already arrived in this (streaming) answer,
    /// without waiting.
    pub(crate) fn has_data(&self) -> bool {
        let state = self.state.lock();
        !state.data.is_empty() || state.done || state.failed.is_some()
    }

    /// Parks until messages (or the end, or a failure) are there; `None`
    /// when `deadline` passed first.
    fn wait(&self, deadline: Option<Instant>) -> Result<Option<(BytesMut, bool)>, Error> {
        loop {
            {
                let mut state = self.state.lock();
                if let Some(error) = state.failed.take() {
                    return Err(error);
                }
                if state.done || (!state.data.is_empty() && state.streaming) {
                    return Ok(Some((std::mem::take(&mut state.data), state.done)));
                }
            }
            // A park error means the wait timed out or was interrupted
            // (cancelled coroutine); the loop re-checks the state either way.
            let left = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            let _ = self.blocker.park(left.map(whole_millis));
        }
    }

    /// Waits (throwing the data away) until the answer is complete; false
    /// when `deadline` passed or the connection failed first.
    pub(crate) fn wait_done(&self, deadline: Instant) -> bool {
        loop {
            match self.wait(Some(deadline)) {
                Ok(Some((_, true))) => return true,
                Ok(Some((_, false))) => {}
                Ok(None) | Err(_) => return false,
            }
        }
    }
}

/// `d` rounded up to whole milliseconds: `may` keeps park timeouts in
/// whole milliseconds, and a timeout that rounds down to zero never fires.
pub(crate) fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000).max(1) as u64)
}

/// The row count at the end of a command tag (`INSERT 0 5`, `SELECT 1`),
/// 0 when the tag has none: as [`super::request::rows_affected`], on bytes.
fn tag_row_count(tag: &[u8]) -> u64 {
    let last = tag.rsplit(|&b| b == b' ').next().unwrap_or_default();
    if last.is_empty() {
        return 0;
    }
    last.iter()
        .try_fold(0u64, |count, &b| {
            if b.is_ascii_digit() {
                count.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        })
        .unwrap_or(0)
}

/// A backend message as [`Response::next_light`] returns it.
pub(crate) enum Frame {
    /// A message with nothing to read but its tag (`BindComplete`,
    /// `ParseComplete`, `NoData`, `EmptyQueryResponse`, ...).
    Skip,
    /// `CommandComplete` with the row count of its tag (except after
    /// `DISCARD ALL` and `DEALLOCATE ALL`, which come as a [`Frame::Message`]).
    CommandComplete(u64),
    /// `ReadyForQuery`: the answer is complete.
    Ready,
    /// Any other message, parsed.
    Message(Message),
}

/// A request's client-side deadline (`query_timeout`): how long each wait
/// for more of the answer may last, and the connection to clean up when
/// one does not end in time.
#[derive(Debug)]
pub(crate) struct Deadline {
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
    deadline: Option<Deadline>,
}

impl Response {
    pub(crate) fn new(slot: Arc<Slot>, deadline: Option<Deadline>) -> Response {
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
            self.receive()?;
        }
    }

    /// Like [`Response::next`], but the messages that carry nothing a
    /// query result needs beyond their tag (`BindComplete`, `CommandComplete`,
    /// `ReadyForQuery`, ...) are consumed in place, without splitting them
    /// off the shared receive buffer (each split costs atomic reference
    /// counting on a buffer the reader and other tasks touch too).
    pub(crate) fn next_light(&mut self) -> Result<Frame, Error> {
        loop {
            let Some((tag, total)) = self.complete_frame()? else {
                self.receive()?;
                continue;
            };
            let bodyless = total == 5;
            let frame = match tag {
                b'1' | b'2' | b'3' | b'n' | b'I' | b's' if bodyless => Frame::Skip,
                b'Z' if total == 6 => {
                    self.finished = true;
                    Frame::Ready
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
                        first_error = Some(super::server_error::db_error(body.fields()));
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
        if Arc::get_mut(&mut self.slot).is_some() && may::coroutine::is_coroutine() {
            let slot = self.slot.clone();
            SPARE_SLOTS.with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() < SPARE_SLOTS_KEPT {
                    spare.push(slot);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tag_row_count;
    use crate::request::rows_affected;

    #[test]
    fn tag_row_counts_agree_with_the_string_parser() {
        for tag in [
            "SELECT 1",
            "INSERT 0 5",
            "UPDATE 20",
            "BEGIN",
            "",
            "COPY 18446744073709551615",
            "COPY 18446744073709551616",
            "DELETE -1",
            "SELECT 1 ",
        ] {
            assert_eq!(tag_row_count(tag.as_bytes()), rows_affected(tag), "{tag:?}");
        }
    }
}
