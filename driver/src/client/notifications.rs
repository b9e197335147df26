//! LISTEN/NOTIFY: notifications delivered by the reader coroutine, received
//! by blocking (parking) calls.

use std::time::Duration;

use std::sync::mpsc::{RecvTimeoutError, TryRecvError};

use crate::connection::connection::Connection;
use crate::error::context::require_green;
use crate::error::Error;
use crate::wire::notification::Notification;

/// The notifications arriving on one connection (after `LISTEN channel`).
///
/// Notifications are queued by the connection as soon as they arrive, also
/// while nobody is receiving. As an [`Iterator`] it blocks (parks) for the
/// next one and ends when the connection closes.
#[derive(Debug)]
pub struct Notifications<'a> {
    conn: &'a Connection,
}

impl<'a> Notifications<'a> {
    pub(crate) fn new(conn: &'a Connection) -> Notifications<'a> {
        Notifications { conn }
    }

    /// Parks until a notification arrives; an error once the connection
    /// is closed and every queued notification was received.
    pub fn recv(&self) -> Result<Notification, Error> {
        require_green("receive notifications")?;
        let receiver = self.conn.notification_receiver()?;
        receiver.recv().map_err(|_| self.conn.closed_error())
    }

    /// Like [`Notifications::recv`], giving up with `Ok(None)` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Notification>, Error> {
        require_green("receive notifications")?;
        let receiver = self.conn.notification_receiver()?;
        match receiver.recv_timeout(timeout) {
            Ok(n) => Ok(Some(n)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(self.conn.closed_error()),
        }
    }

    /// A notification if one is queued, without waiting (also `Ok(None)`
    /// while another task is blocked in [`Notifications::recv`]).
    pub fn try_recv(&self) -> Result<Option<Notification>, Error> {
        let Some(receiver) = self.conn.try_notification_receiver() else {
            return Ok(None);
        };
        match receiver.try_recv() {
            Ok(n) => Ok(Some(n)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(self.conn.closed_error()),
        }
    }
}

impl Iterator for Notifications<'_> {
    type Item = Notification;

    fn next(&mut self) -> Option<Notification> {
        self.recv().ok()
    }
}
