//! The bytes a connection has queued to write and the answer slots they
//! await ([`Queue`]), how a request joins them ([`Sending`]), and groups of
//! read-only requests that share one `Sync`.
//!
//! # Groups of reads
//!
//! PostgreSQL flushes its output at every `ReadyForQuery`, that is once per
//! `Sync`: with each request ending in its own `Sync`, a connection that
//! pipelines many small reads costs the server one `send` system call per
//! read. A read the caller marks read-only ([`Sending::Coalescable`]) is
//! encoded without its `Sync`; when it is queued while answers to earlier
//! requests are still outstanding, it joins the open group instead of
//! getting its own `Sync`. Its bytes are written as usual — the server
//! runs it as soon as it reads it, and keeps its answer in its output
//! buffer — and the group is closed by one `Sync`: before anything else is
//! queued, once it holds [`MAX_GROUP`] reads, or as soon as the reader
//! finds that the group's reads are all that is still outstanding
//! (`Connection::close_group_if_alone`), when the server would otherwise
//! sit on their answers. The answers then come in one burst: each read's
//! answer ends with its own `CommandComplete` (or error), and the group's
//! `ReadyForQuery` goes to a slot nobody waits for. A read on a connection
//! with nothing outstanding gets its own `Sync` at once, so grouping never
//! delays a lone read.
//!
//! The server runs a group as one implicit transaction and, after an
//! error, skips the rest of the group up to the `Sync`: the reader marks
//! each skipped read ([`Slot::skip`]) and its requester sends it again,
//! with its own `Sync`. So every read gets exactly its own rows or its own
//! error, as without grouping.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use may::sync::Blocker;
use postgres_protocol::message::frontend;

use crate::connection::slot::Slot;

/// The most reads one group holds: an error in a group costs a resend of
/// every read behind it, and a slow read delays the answers of the reads
/// grouped behind it until the group's one flush.
pub(crate) const MAX_GROUP: usize = 32;

/// A write buffer larger than this is not kept for reuse, and a request
/// larger than this is queued as encoded instead of copied.
pub(super) const MAX_SPARE_BUFFER: usize = 256 * 1024;

/// What a connection has queued to write, and the slots awaiting answers.
#[derive(Debug, Default)]
pub(super) struct Queue {
    pub(super) buf: BytesMut,
    spare: BytesMut,
    pub(super) pending: VecDeque<Arc<Slot>>,
    pub(super) writing: bool,
    /// The writer coroutine was woken and will flush the queue soon.
    pub(super) flush_scheduled: bool,
    pub(super) closed: bool,
    /// Write holds (COPY IN in progress, cancel in flight): other requests
    /// wait until it drops to zero.
    pub(super) holds: usize,
    pub(super) gate_waiters: Vec<Arc<Blocker>>,
    /// `buf` holds a request queued to go out with the next one
    /// ([`Sending::Deferred`]) and nothing has written it yet.
    pub(super) deferred: bool,
    /// How many answered requests were ever queued (each slot records its
    /// number, [`Slot::queued`]).
    pub(super) queued: u64,
    /// The number of the last request whose bytes a flush took: it and
    /// every one before it may have reached the server.
    pub(super) written_through: u64,
    /// How many reads the open group holds (0: no group is open): they are
    /// queued without a `Sync`, which [`Queue::close_group`] adds.
    grouped: usize,
    /// The open group ends with a `ReadyForQuery` that must find the
    /// connection outside a transaction (a shared connection's group).
    group_requires_idle: bool,
}

impl Queue {
    /// Appends a request's bytes: a large owned buffer is taken as it is
    /// when nothing else is queued, anything else is copied.
    pub(super) fn append(&mut self, bytes: Outgoing<'_>) {
        match bytes {
            Outgoing::Owned(bytes) if self.buf.is_empty() && bytes.len() > MAX_SPARE_BUFFER => {
                std::mem::swap(&mut self.buf, bytes);
            }
            Outgoing::Owned(bytes) => self.buf.extend_from_slice(bytes),
            Outgoing::Borrowed(bytes) => self.buf.extend_from_slice(bytes),
        }
    }

    /// Whether a group of reads is open (queued without their `Sync`).
    pub(super) fn has_open_group(&self) -> bool {
        self.grouped > 0
    }

    /// Adds `slot`'s read (queued without a `Sync`, next after this call)
    /// to the open group, opening one if none is.
    pub(super) fn join_group(&mut self, slot: &Slot, requires_idle: bool) {
        slot.set_grouped();
        self.grouped += 1;
        self.group_requires_idle |= requires_idle;
    }

    /// How many reads the open group holds.
    pub(super) fn grouped_reads(&self) -> usize {
        self.grouped
    }

    /// Whether the open group is full: it must be closed now.
    pub(super) fn group_is_full(&self) -> bool {
        self.grouped >= MAX_GROUP
    }

    /// Ends the open group, if any, with one `Sync`, whose `ReadyForQuery`
    /// goes to a slot nobody waits for.
    pub(super) fn close_group(&mut self) {
        if self.grouped == 0 {
            return;
        }
        frontend::sync(&mut self.buf);
        let end = Slot::abandoned();
        if self.group_requires_idle {
            end.set_requires_idle();
        }
        self.pending.push_back(end);
        self.grouped = 0;
        self.group_requires_idle = false;
    }

    /// Takes everything queued for one write (an open group's reads
    /// without their `Sync`, which comes later), leaving the spare buffer
    /// in its place; `None` when nothing is queued.
    pub(super) fn take_for_write(&mut self) -> Option<BytesMut> {
        if self.buf.is_empty() {
            return None;
        }
        self.deferred = false;
        self.written_through = self.queued;
        let spare = std::mem::take(&mut self.spare);
        Some(std::mem::replace(&mut self.buf, spare))
    }

    /// Gives back a buffer a write used, kept for the next one unless it
    /// grew large.
    pub(super) fn give_back(&mut self, mut used: BytesMut) {
        if used.capacity() <= MAX_SPARE_BUFFER {
            used.clear();
            self.spare = used;
        }
    }
}

/// A request's bytes, as [`Connection::send`] (borrowed, copied) or
/// [`Connection::send_owned`] (may be taken as they are) hand them over.
///
/// [`Connection::send`]: crate::connection::connection::Connection::send
/// [`Connection::send_owned`]: crate::connection::connection::Connection::send_owned
pub(super) enum Outgoing<'a> {
    Borrowed(&'a [u8]),
    Owned(&'a mut BytesMut),
}

/// How [`Connection::send`] treats a request.
///
/// [`Connection::send`]: crate::connection::connection::Connection::send
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sending {
    /// Written now, or by the writer coroutine soon when the server is busy
    /// with earlier requests anyway.
    Now,
    /// A read the caller promises changes nothing, encoded *without* its
    /// `Sync`: sent as [`Sending::Now`] with a `Sync` added, or, when the
    /// connection is busy, outside a transaction and `coalesce_reads` is
    /// on, in a group of reads that share one `Sync` (see the module
    /// docs). Its slot must expect to be skipped ([`Slot::was_skipped`]).
    Coalescable,
    /// Not written yet: it goes out in the same system call as the next
    /// request sent on the connection (how a session's `BEGIN` rides in
    /// front of its first statement). Only for a caller that sends another
    /// request right after, or hands the connection back (a deferred
    /// request counts as an open transaction there).
    Deferred,
    /// Written now, and it ends the transaction whatever its answer (a
    /// `COMMIT`): until another request is queued, the transaction status
    /// reads `Idle`, so a task the connection is handed to before the
    /// answer comes sees it as the server will be when it reads that
    /// task's first request.
    EndingTransaction,
    /// Written before this returns, past any write hold: for the holder of
    /// the hold (COPY data), so a large COPY feels the socket's
    /// back-pressure.
    ByWriteHolder,
}
