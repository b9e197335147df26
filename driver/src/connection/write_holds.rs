//! Holding back other requests on a connection while one needs the wire
//! to itself — a `COPY ... FROM STDIN` streaming its data, a `COPY` that
//! reached a query method and must be ended, a cancel after a request
//! passed its `query_timeout` — and the clean-ups that need it.
//! [`Connection`] delegates here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use may::sync::Blocker;

use crate::connection::connection::{CloseReason, Connection, CANCEL_GRACE};
use crate::connection::slot::Slot;
use crate::connection::write_queue::Sending;
use crate::error::Error;
use crate::net::cancel_request::send_cancel;

/// Holds back other requests (not the holder's): for COPY IN, waits
/// until no one else holds; for a cancel, `wait` is false.
pub(crate) fn hold_writes(conn: &Connection, wait: bool) -> Result<(), Error> {
    let mut queue = conn.queue.lock();
    loop {
        if queue.closed {
            drop(queue);
            return Err(conn.closed_error());
        }
        if queue.holds == 0 || !wait {
            queue.holds += 1;
            return Ok(());
        }
        let waiter = Arc::new(Blocker::new(true));
        queue.gate_waiters.push(waiter.clone());
        drop(queue);
        let _ = waiter.park(None);
        queue = conn.queue.lock();
    }
}

/// Ends a `COPY ... FROM STDIN` (or `COPY BOTH`) that reached a query
/// method. The server ignores everything but COPY messages now, and a
/// `Sync` sent with the request was swallowed, so `CopyFail` goes out
/// with a fresh `Sync` when the request used the extended protocol
/// (`extended`). That keeps the connection in step only if no other
/// request was queued behind this one — their messages would abort the
/// copy themselves and their `Sync` would answer for ours — so with
/// anything queued behind, the connection is closed instead and every
/// request on it fails (none is answered wrongly). Returns whether the
/// connection is still usable.
pub(crate) fn refuse_copy(conn: &Connection, extended: bool) -> bool {
    let mut queue = conn.queue.lock();
    if queue.closed {
        return false;
    }
    // While the refused request is the reader's current answer, the
    // reader takes nothing new from `pending`, so this count is exact.
    let alone = queue.pending.is_empty() && conn.reader_holds.load(Ordering::Acquire) <= 1;
    if !alone {
        drop(queue);
        conn.shut(CloseReason::Protocol(
            "a COPY reached a query method while other requests were pipelined behind it"
                .to_owned(),
        ));
        return false;
    }
    // No new request may be written before CopyFail (and Sync).
    queue.holds += 1;
    drop(queue);
    let mut buf = BytesMut::new();
    let encoded =
        postgres_protocol::message::frontend::copy_fail("COPY needs the COPY API", &mut buf);
    if extended {
        postgres_protocol::message::frontend::sync(&mut buf);
    }
    let sent = encoded.is_ok() && conn.send(&buf, None, Sending::ByWriteHolder).is_ok();
    release_writes(conn);
    sent
}

/// Cleans up after `slot`'s request passed its `query_timeout`, so that
/// its late answer can never reach another request and no cancel can hit
/// one: when `cancel` is asked for and it is the only request in flight,
/// new requests are held back, the server is asked to cancel it, and its
/// answer is awaited for at most [`CANCEL_GRACE`]; otherwise — no
/// cancel wanted, other requests pipelined behind it, or no answer in
/// time — the connection is closed and every request on it fails.
pub(crate) fn time_out(conn: &Connection, slot: &Arc<Slot>, cancel: bool) {
    let alone = cancel && {
        let mut queue = conn.queue.lock();
        if queue.closed {
            return;
        }
        let alone = queue.pending.len() + conn.reader_holds.load(Ordering::Acquire) <= 1;
        if alone {
            queue.holds += 1;
        }
        alone
    };
    let answered = alone && {
        let deadline = Instant::now() + CANCEL_GRACE;
        let cancelled =
            send_cancel(conn.config(), conn.process_id, conn.secret_key, deadline).is_ok();
        let answered = cancelled && slot.wait_done(deadline);
        release_writes(conn);
        answered
    };
    if !answered {
        slot.abandon();
        conn.shut(CloseReason::TimedOut);
    }
}

/// Ends a hold taken by [`hold_writes`].
pub(crate) fn release_writes(conn: &Connection) {
    let waiters = {
        let mut queue = conn.queue.lock();
        queue.holds = queue.holds.saturating_sub(1);
        if queue.holds > 0 {
            return;
        }
        std::mem::take(&mut queue.gate_waiters)
    };
    for waiter in waiters {
        waiter.unpark();
    }
}
