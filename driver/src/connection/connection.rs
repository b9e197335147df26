//! The shared state of one server connection: the write queue, the queue of
//! answer slots, and the reader coroutine that routes backend messages.
//!
//! Requests are pipelined. A request is a run of frontend messages ending
//! with `Sync`; under one short lock its bytes are appended to the write
//! buffer and its [`Slot`] to the answer queue, so byte order and answer
//! order agree. Whoever finds the socket idle writes everything queued in
//! one go. The reader coroutine ([`super::reader`]) routes the answers.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use may::sync::mpsc::Receiver;
use may::sync::Blocker;
use parking_lot::Mutex;

use crate::config::Config;
use crate::connection::reader::Reader;
use crate::connection::slot::Slot;
use crate::connection::write_holds;
use crate::connection::write_queue::{Outgoing, Queue, Sending};
use crate::error::{DbError, Error};
use crate::net::placement::Placement;
use crate::net::socket::{ReadHalf, ShutdownHandle, WriteHalf};
use crate::startup::connect::StartupState;
use crate::wire::notification::Notification;
use crate::wire::transaction_status::TransactionStatus;

/// Stack of the reader coroutine, in machine words (`may`'s unit): 64 KiB.
/// Measured (debug build, error paths included): at most ~16 KiB used.
const READER_STACK_WORDS: usize = 0x2000;
/// Stack of the writer coroutine, in machine words: 32 KiB (measured:
/// at most ~4 KiB used).
const WRITER_STACK_WORDS: usize = 0x1000;
/// How long a request that passed its `query_timeout` may take to be
/// cancelled and answered before its connection is closed instead.
pub(crate) const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Why a connection is closed.
#[derive(Debug, Clone)]
pub(super) enum CloseReason {
    /// We closed it (`close`, `Drop`).
    ByClient,
    /// The server reported a fatal error, then hung up.
    Fatal(Box<DbError>),
    /// A socket error or end-of-file.
    Io(io::ErrorKind, String),
    /// The server broke the protocol.
    Protocol(String),
    /// A request on a shared client ended inside a transaction.
    SharedTransaction,
    /// A request passed its `query_timeout` and could not be cancelled
    /// cleanly.
    TimedOut,
}

/// One server connection, shared by the client handle, its reader
/// coroutine and its cancel tokens.
pub(crate) struct Connection {
    pub(super) queue: Mutex<Queue>,
    writer: may::sync::Mutex<WriteHalf>,
    /// Wakes the writer coroutine.
    flusher: Blocker,
    shutdown: ShutdownHandle,
    /// The scheduler thread whose event loop serves the socket, counted
    /// there while the connection lives.
    placement: Placement,
    closed: AtomicBool,
    pub(super) close_reason: Mutex<Option<CloseReason>>,
    pub(super) status: AtomicU8,
    /// How many answer slots the reader has taken from the queue and not
    /// completed yet (a hint for `send`: answers are outstanding).
    pub(super) reader_holds: AtomicUsize,
    pub(super) parameters: Mutex<HashMap<String, String>>,
    pub(super) notices: Mutex<VecDeque<DbError>>,
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
    /// The settings it was opened with (also where a `CancelRequest` for
    /// it goes).
    config: Config,
    /// Shared by several tasks at once (see `Client::set_shared`).
    shared: AtomicBool,
    /// Used by one task only (a pool's exclusive checkout): its requests
    /// are written by the task itself, never left to the writer coroutine.
    exclusive: AtomicBool,
    /// The last request queued ends the transaction (a `COMMIT` whose
    /// connection was handed on before its answer came): the transaction
    /// status is `Idle` whatever the last answer said. Cleared by the next
    /// request.
    ending_transaction: AtomicBool,
    /// The notifications the reader delivers, for whoever receives them.
    notifications: may::sync::Mutex<Receiver<Notification>>,
}

/// Shows neither the backend's secret key (it lets anyone who reaches the
/// server cancel this backend's queries) nor buffered request bytes.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("process_id", &self.process_id)
            .field("closed", &self.is_closed())
            .field("status", &self.transaction_status())
            .field("worker", &self.placement.worker())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHalf")
    }
}

impl Connection {
    /// Wraps a started connection and spawns its reader coroutine.
    pub(crate) fn start(
        read: ReadHalf,
        write: WriteHalf,
        shutdown: ShutdownHandle,
        placement: Placement,
        startup: StartupState,
        config: &Config,
    ) -> Result<Arc<Connection>, Error> {
        let (notifications, receiver) = may::sync::mpsc::channel();
        let conn = Arc::new(Connection {
            queue: Mutex::new(Queue::default()),
            writer: may::sync::Mutex::new(write),
            flusher: Blocker::new(true),
            shutdown,
            placement,
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            status: AtomicU8::new(startup.status as u8),
            reader_holds: AtomicUsize::new(0),
            parameters: Mutex::new(startup.parameters),
            notices: Mutex::new(VecDeque::new()),
            process_id: startup.process_id,
            secret_key: startup.secret_key,
            config: config.clone(),
            shared: AtomicBool::new(false),
            exclusive: AtomicBool::new(false),
            ending_transaction: AtomicBool::new(false),
            notifications: may::sync::Mutex::new(receiver),
        });
        let reader = Reader::new(conn.clone(), read, startup.leftover, notifications);
        let builder = may::coroutine::Builder::new()
            .name("odm-pg-reader".to_owned())
            .stack_size(READER_STACK_WORDS);
        // SAFETY: `may` marks spawning unsafe because a coroutine must not
        // keep thread-local references across a park; the reader touches no
        // thread-locals and owns everything it uses.
        // The trailing yield dodges a `may` livelock: a coroutine that ends
        // while resumed inside `Park::subscribe` spins forever in
        // `Park::drop` (see green's worker loop for the details).
        let spawned = unsafe {
            builder.spawn(move || {
                reader.run();
                may::coroutine::yield_now();
            })
        };
        spawned.map_err(Error::Io)?;
        let flusher = conn.clone();
        let builder = may::coroutine::Builder::new()
            .name("odm-pg-writer".to_owned())
            .stack_size(WRITER_STACK_WORDS);
        // SAFETY: as for the reader: no thread-locals, owns what it uses.
        let spawned = unsafe {
            builder.spawn(move || {
                flusher.run_writer();
                may::coroutine::yield_now();
            })
        };
        if let Err(e) = spawned {
            conn.shut(CloseReason::Io(e.kind(), e.to_string()));
            return Err(Error::Io(e));
        }
        Ok(conn)
    }

    /// The settings this connection was opened with.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Whether several tasks share the connection at once.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    /// Marks the connection shared (or not); a shared one is not exclusive.
    pub(crate) fn set_shared(&self, shared: bool) {
        self.shared.store(shared, Ordering::Relaxed);
        if shared {
            self.exclusive.store(false, Ordering::Relaxed);
        }
    }

    /// Marks the connection as used by one task only (or not): that task
    /// then writes its requests itself even while answers are outstanding,
    /// since no other task's request could share the system call.
    pub(crate) fn set_exclusive(&self, exclusive: bool) {
        self.exclusive.store(exclusive, Ordering::Relaxed);
    }

    /// The notification queue, for a receiver that parks until one comes
    /// (the lock is held while it waits).
    pub(crate) fn notification_receiver(
        &self,
    ) -> Result<may::sync::MutexGuard<'_, Receiver<Notification>>, Error> {
        self.notifications.lock().map_err(|_| Error::Closed)
    }

    /// The notification queue unless another task is waiting on it.
    pub(crate) fn try_notification_receiver(
        &self,
    ) -> Option<may::sync::MutexGuard<'_, Receiver<Notification>>> {
        self.notifications.try_lock().ok()
    }

    /// Whether the connection is closed (by either side).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The error a request on this closed connection gets.
    pub(crate) fn closed_error(&self) -> Error {
        match &*self.close_reason.lock() {
            // Session-ending codes that `Error::is_closed` recognises keep
            // their details; any other fatal error (logged when it came)
            // becomes a plain `Closed`, so `is_closed()` always holds.
            Some(CloseReason::Fatal(e)) if e.is_session_ending() => Error::Db(e.clone()),
            Some(CloseReason::Fatal(_)) => Error::Closed,
            Some(CloseReason::Io(kind, message)) => {
                Error::Io(io::Error::new(*kind, message.clone()))
            }
            Some(CloseReason::Protocol(message)) => Error::Protocol(message.clone()),
            Some(CloseReason::TimedOut) => Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was closed after a request passed its query_timeout",
            )),
            Some(CloseReason::SharedTransaction) => Error::Io(io::Error::other(
                "a statement on a shared connection left a transaction open: the connection \
                 was closed, and the statements pipelined behind it were rolled back",
            )),
            Some(CloseReason::ByClient) | None => Error::Closed,
        }
    }

    /// The error a request gets when the connection closed before its
    /// answer was complete: [`Error::CommitOutcomeUnknown`] when it commits
    /// and had left the client (`written_through`), unless the connection
    /// was closed because a shared request left a transaction open (the
    /// requests behind it ran inside that transaction, which died with the
    /// connection); else [`Connection::closed_error`].
    pub(super) fn failure_of(&self, slot: &Slot, written_through: u64) -> Error {
        let error = self.closed_error();
        let rolled_back = matches!(
            *self.close_reason.lock(),
            Some(CloseReason::SharedTransaction)
        );
        if !rolled_back && slot.outcome_unknown(written_through) {
            Error::CommitOutcomeUnknown {
                cause: Box::new(error),
            }
        } else {
            error
        }
    }

    /// The number of the last request that may have reached the server.
    pub(super) fn written_through(&self) -> u64 {
        self.queue.lock().written_through
    }

    /// The transaction status of the last `ReadyForQuery`, or `Idle` when
    /// the last request queued is a `COMMIT` sent by
    /// [`Sending::EndingTransaction`]: whatever its answer, the
    /// server is outside a transaction when it reads the next request.
    pub(crate) fn transaction_status(&self) -> TransactionStatus {
        if self.ending_transaction.load(Ordering::Acquire) {
            return TransactionStatus::Idle;
        }
        self.answered_transaction_status()
    }

    /// The transaction status of the last `ReadyForQuery` itself.
    pub(crate) fn answered_transaction_status(&self) -> TransactionStatus {
        TransactionStatus::from_byte(self.status.load(Ordering::Acquire))
    }

    /// Whether a request queued as [`Sending::Deferred`] is still
    /// waiting for the next request to take it out.
    pub(crate) fn has_deferred_request(&self) -> bool {
        self.queue.lock().deferred
    }

    /// A server parameter (`server_version`, `TimeZone`, ...).
    pub(crate) fn parameter(&self, name: &str) -> Option<String> {
        self.parameters.lock().get(name).cloned()
    }

    /// The most recent notices, oldest first.
    pub(crate) fn notices(&self) -> Vec<DbError> {
        self.notices.lock().iter().cloned().collect()
    }

    /// Queues a request (its bytes, and the slot for its answer, `None`
    /// for COPY data and messages nobody answers) and gets it written as
    /// `sending` says (see [`Sending`]).
    ///
    /// When the connection is idle the caller writes at once (lowest
    /// latency). When answers to earlier requests are still outstanding the
    /// server is busy anyway, so the write is left to the writer coroutine,
    /// which runs after the tasks woken in the same round have queued their
    /// requests too: many requests then share one system call.
    pub(crate) fn send(
        &self,
        bytes: &[u8],
        slot: Option<Arc<Slot>>,
        sending: Sending,
    ) -> Result<(), Error> {
        self.queue_request(Outgoing::Borrowed(bytes), slot, sending)
    }

    /// [`Connection::send`] for a request encoded in a buffer the caller
    /// gives up: a large one (over 256 KiB) is queued as it is when nothing
    /// else is queued, instead of copied (a large value then exists once on
    /// the client, not twice). `bytes` is left empty or holding anything.
    pub(crate) fn send_owned(
        &self,
        bytes: &mut BytesMut,
        slot: Option<Arc<Slot>>,
        sending: Sending,
    ) -> Result<(), Error> {
        self.queue_request(Outgoing::Owned(bytes), slot, sending)
    }

    fn queue_request(
        &self,
        bytes: Outgoing<'_>,
        slot: Option<Arc<Slot>>,
        sending: Sending,
    ) -> Result<(), Error> {
        let by_holder = sending == Sending::ByWriteHolder;
        let mut queue = self.queue.lock();
        loop {
            if queue.closed {
                drop(queue);
                return Err(self.closed_error());
            }
            if queue.holds == 0 || by_holder {
                break;
            }
            let waiter = Arc::new(Blocker::new(true));
            queue.gate_waiters.push(waiter.clone());
            drop(queue);
            let _ = waiter.park(None);
            queue = self.queue.lock();
        }
        let busy = !self.exclusive.load(Ordering::Relaxed)
            && (!queue.pending.is_empty() || self.reader_holds.load(Ordering::Relaxed) > 0);
        // A read joins a group while earlier answers are outstanding: the
        // group's `Sync` waits until they are in (`close_group_if_alone`).
        let grouped = sending == Sending::Coalescable
            && slot.is_some()
            && (queue.has_open_group()
                || (busy
                    && self.config.coalesce_reads()
                    && !queue.deferred
                    && self.transaction_status() == TransactionStatus::Idle));
        if !grouped {
            // Whatever follows a group goes after its `Sync`.
            queue.close_group();
        }
        queue.append(bytes);
        if sending == Sending::Coalescable && !grouped {
            postgres_protocol::message::frontend::sync(&mut queue.buf);
        }
        if let Some(slot) = slot {
            if grouped {
                queue.join_group(&slot, self.is_shared());
            }
            queue.queued += 1;
            let outside = sending == Sending::EndingTransaction
                || (!queue.deferred && self.transaction_status() == TransactionStatus::Idle);
            slot.queued(queue.queued, outside);
            queue.pending.push_back(slot);
            if queue.group_is_full() {
                queue.close_group();
            }
        }
        // Under the queue lock, so the flag always describes the last
        // request queued.
        self.ending_transaction
            .store(sending == Sending::EndingTransaction, Ordering::Release);
        if sending == Sending::Deferred {
            queue.deferred = !queue.writing && !queue.flush_scheduled;
            return Ok(());
        }
        if queue.writing || (queue.flush_scheduled && !by_holder) {
            return Ok(());
        }
        if busy && !by_holder {
            queue.flush_scheduled = true;
            drop(queue);
            self.flusher.unpark();
            return Ok(());
        }
        queue.writing = true;
        drop(queue);
        self.flush()
    }

    /// Closes the open group of reads (see `write_queue`) and gets its
    /// `Sync` written, when its reads are all that is still outstanding:
    /// the server has answered everything before them, and would sit on
    /// their answers until the `Sync` comes. Called by the reader before it
    /// waits for more, with the number of answers it still holds.
    pub(super) fn close_group_if_alone(&self, reader_holds: usize) {
        let mut queue = self.queue.lock();
        if !queue.has_open_group()
            || queue.closed
            || reader_holds + queue.pending.len() != queue.grouped_reads()
        {
            return;
        }
        queue.close_group();
        if queue.writing || queue.flush_scheduled {
            return;
        }
        queue.flush_scheduled = true;
        drop(queue);
        self.flusher.unpark();
    }

    /// The writer coroutine: flushes the queue whenever woken, until the
    /// connection closes.
    fn run_writer(self: Arc<Connection>) {
        loop {
            let _ = self.flusher.park(None);
            let mut queue = self.queue.lock();
            queue.flush_scheduled = false;
            if queue.closed {
                return;
            }
            if queue.writing || queue.buf.is_empty() {
                continue;
            }
            queue.writing = true;
            drop(queue);
            if self.flush().is_err() {
                return;
            }
        }
    }

    /// Writes the queue until it is empty. Only the task that set
    /// `writing` calls this, so the writer lock is never contended.
    fn flush(&self) -> Result<(), Error> {
        let mut writer = self.writer.lock().map_err(|_| Error::Closed)?;
        let mut done: Option<BytesMut> = None;
        loop {
            let (taken, closed) = {
                let mut queue = self.queue.lock();
                if let Some(used) = done.take() {
                    queue.give_back(used);
                }
                let taken = if queue.closed {
                    None
                } else {
                    queue.take_for_write()
                };
                if taken.is_none() {
                    queue.writing = false;
                }
                (taken, queue.closed)
            };
            let Some(out) = taken else {
                return if closed {
                    Err(self.closed_error())
                } else {
                    Ok(())
                };
            };
            if let Err(e) = writer.write_all(&out) {
                drop(writer);
                self.shut(CloseReason::Io(e.kind(), e.to_string()));
                self.queue.lock().writing = false;
                return Err(self.closed_error());
            }
            done = Some(out);
        }
    }

    /// Holds back other requests (not the holder's): for COPY IN, waits
    /// until no one else holds; for a cancel, `wait` is false.
    pub(crate) fn hold_writes(&self, wait: bool) -> Result<(), Error> {
        write_holds::hold_writes(self, wait)
    }

    /// Ends a hold taken by [`Connection::hold_writes`].
    pub(crate) fn release_writes(&self) {
        write_holds::release_writes(self)
    }

    /// Ends a `COPY ... FROM STDIN` that reached a query method, or closes
    /// the connection when that cannot be done cleanly; whether the
    /// connection is still usable (see [`write_holds::refuse_copy`]).
    pub(crate) fn refuse_copy(&self, extended: bool) -> bool {
        write_holds::refuse_copy(self, extended)
    }

    /// Cleans up after `slot`'s request passed its `query_timeout`: a
    /// cancel when it is alone, else the connection is closed (see
    /// [`write_holds::time_out`]).
    pub(crate) fn time_out(&self, slot: &Arc<Slot>, cancel: bool) {
        write_holds::time_out(self, slot, cancel)
    }

    /// Marks the connection closed, fails every queued request and shuts
    /// the socket down (which also stops the reader).
    pub(super) fn shut(&self, reason: CloseReason) {
        let (pending, waiters, written_through) = {
            let mut queue = self.queue.lock();
            {
                let mut current = self.close_reason.lock();
                // A fatal error from the server explains the end-of-file
                // that follows it better than the end-of-file itself.
                if current.is_none() {
                    *current = Some(reason);
                }
            }
            queue.closed = true;
            self.closed.store(true, Ordering::Release);
            (
                std::mem::take(&mut queue.pending),
                std::mem::take(&mut queue.gate_waiters),
                queue.written_through,
            )
        };
        for slot in pending {
            slot.fail(self.failure_of(&slot, written_through));
        }
        for waiter in waiters {
            waiter.unpark();
        }
        self.flusher.unpark();
        self.shutdown.shutdown();
    }

    /// Closes from our side: queued bytes and a `Terminate` are written
    /// with one non-blocking attempt, then the socket is shut down.
    pub(crate) fn terminate(&self) {
        let tail = {
            let mut queue = self.queue.lock();
            if queue.closed {
                return;
            }
            queue.deferred = false;
            let mut tail = std::mem::take(&mut queue.buf);
            if queue.writing {
                // A writer is mid-flush (only possible if a request was
                // abandoned mid-write); do not interleave bytes with it.
                tail.clear();
            } else {
                // Whatever is queued goes out with the Terminate: it may
                // reach the server.
                queue.written_through = queue.queued;
                postgres_protocol::message::frontend::terminate(&mut tail);
            }
            tail
        };
        if !tail.is_empty() {
            self.shutdown.try_write(&tail);
        }
        self.shut(CloseReason::ByClient);
    }

    pub(super) fn record_fatal(&self, error: DbError) {
        log::warn!(target: "odm::pg", "the server is ending the session: {error}");
        let mut reason = self.close_reason.lock();
        if reason.is_none() {
            *reason = Some(CloseReason::Fatal(Box::new(error)));
        }
    }
}
