//! One request's place in the connection's answer queue ([`Slot`]).
//!
//! The reader coroutine appends the backend messages that belong to a
//! request to its slot, up to and including the `ReadyForQuery` that ends
//! it, and wakes the requester: once at the end for ordinary requests, on
//! every arrival for streaming ones (COPY). The requester parses the
//! messages itself (`request::response`), so the reader only frames bytes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use may::sync::Blocker;
use parking_lot::Mutex;

use crate::error::Error;
use crate::net::deadline::whole_millis;

thread_local! {
    /// Finished slots kept for the next requests on this thread: a slot is
    /// put here when its answer was read to the end and nobody else holds
    /// it, and taken out without parking in between, so nothing is held
    /// across a park.
    static SPARE_SLOTS: RefCell<Vec<Arc<Slot>>> = const { RefCell::new(Vec::new()) };
}

/// How many finished slots a thread keeps for reuse.
const SPARE_SLOTS_KEPT: usize = 64;

/// What a request may do to stored data: whether a break after it left the
/// client leaves its outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing: it describes statements or probes the connection.
    Nothing,
    /// It runs statements: they commit when run outside a transaction.
    Statements,
    /// Its text may end the transaction it runs in (`COMMIT`, `END`).
    EndsTransaction,
}

/// Where the reader puts one request's answer.
#[derive(Debug)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    blocker: Blocker,
    /// The request ran on a shared client: its `ReadyForQuery` must find
    /// the connection idle (no transaction left open). Set before the slot
    /// is queued, read by the reader without taking the state's lock.
    require_idle: AtomicBool,
    /// What the request may do to stored data (an [`Effect`] as a byte).
    /// Set before the slot is queued.
    effect: AtomicU8,
    /// Decided when queued: the request commits (a `COMMIT`, or statements
    /// run outside a transaction), so a break after it left the client
    /// leaves its outcome unknown.
    commits: AtomicBool,
    /// The connection's count of queued requests when this one was
    /// queued: it left the client once the writer took everything up to it.
    seq: AtomicU64,
    /// A read in a group of reads that share one `Sync` (see
    /// `connection::write_queue`): its answer ends with its statement's
    /// completion (or error), not with `ReadyForQuery`, and the server
    /// skips it when an earlier read of the group failed. Set under the
    /// queue's lock before the slot is queued.
    grouped: AtomicBool,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Wake the requester on every arrival, not only at the end.
    streaming: bool,
    data: BytesMut,
    done: bool,
    failed: Option<Error>,
    abandoned: bool,
    /// The server skipped this grouped read (an earlier read of its group
    /// failed): the requester sends it again.
    skipped: bool,
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
                    *unique.effect.get_mut() = Effect::Statements as u8;
                    *unique.commits.get_mut() = false;
                    *unique.grouped.get_mut() = false;
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
            effect: AtomicU8::new(Effect::Statements as u8),
            commits: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            grouped: AtomicBool::new(false),
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

    /// Says what the request may do to stored data (by default it runs
    /// statements).
    pub(crate) fn set_effect(&self, effect: Effect) {
        self.effect.store(effect as u8, Ordering::Relaxed);
    }

    /// Records, when the request is queued (under the queue's lock), its
    /// place in the connection's order and whether it commits: `outside`
    /// says it runs outside a transaction or ends one.
    pub(crate) fn queued(&self, seq: u64, outside: bool) {
        self.seq.store(seq, Ordering::Relaxed);
        let effect = self.effect.load(Ordering::Relaxed);
        let commits = effect == Effect::EndsTransaction as u8
            || (outside && effect == Effect::Statements as u8);
        self.commits.store(commits, Ordering::Relaxed);
    }

    /// Whether the connection breaking leaves this request's outcome
    /// unknown, `written_through` being the last request that left the
    /// client: it commits and it had left.
    pub(crate) fn outcome_unknown(&self, written_through: u64) -> bool {
        self.commits.load(Ordering::Relaxed) && self.seq.load(Ordering::Relaxed) <= written_through
    }

    /// Makes this request a read in a group sharing one `Sync` (under the
    /// queue's lock, before it is queued).
    pub(crate) fn set_grouped(&self) {
        self.grouped.store(true, Ordering::Relaxed);
    }

    /// Whether this request is a read in a group sharing one `Sync`: its
    /// answer ends with its statement's completion or error.
    pub(crate) fn is_grouped(&self) -> bool {
        self.grouped.load(Ordering::Relaxed)
    }

    /// The server skipped this grouped read, because an earlier read of
    /// its group failed: it got no answer, and its requester sends it again.
    pub(crate) fn skip(&self) {
        {
            let mut state = self.state.lock();
            if state.done || state.abandoned || state.failed.is_some() {
                return;
            }
            state.skipped = true;
            state.failed = Some(Error::Protocol(
                "a grouped read was skipped by the server".to_owned(),
            ));
        }
        self.blocker.unpark();
    }

    /// Whether the server skipped this grouped read ([`Slot::skip`]).
    pub(crate) fn was_skipped(&self) -> bool {
        self.state.lock().skipped
    }

    /// Makes this request one that must leave the connection outside a
    /// transaction (before it is queued).
    pub(crate) fn set_requires_idle(&self) {
        self.require_idle.store(true, Ordering::Relaxed);
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
            // The part of the answer that came is of no use now.
            state.data = BytesMut::new();
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
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<(BytesMut, bool)>, Error> {
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

    /// Empties a finished slot that nobody else holds: whatever it still
    /// holds (the rest of an answer that failed part-way) is freed now,
    /// never cached with it.
    pub(crate) fn empty(&mut self) {
        *self.state.get_mut() = SlotState::default();
    }

    /// Keeps a finished slot, which nobody else holds and which was
    /// [emptied](Slot::empty), for the next request on this thread.
    pub(crate) fn keep_for_reuse(slot: Arc<Slot>) {
        SPARE_SLOTS.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_SLOTS_KEPT {
                spare.push(slot);
            }
        });
    }
}
