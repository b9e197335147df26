//! Cancelling the query a connection is running, from any coroutine.

use std::fmt;
use std::sync::Weak;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::connection::connection::Connection;
use crate::error::context::require_green;
use crate::error::Error;
use crate::net::cancel_request::send_cancel;

/// Sends a `CancelRequest` for one connection's backend on a fresh socket.
///
/// While the request is in flight, new requests on the connection are held
/// back, so a cancel that arrives after its target finished finds the
/// backend idle (and is ignored) instead of hitting a request sent later.
/// A cancel acts on the backend, not on one request: on a [`Client`]
/// shared by several tasks, a request already pipelined behind the target
/// can be the one cancelled (it then fails with 57014, never silently).
/// `query_timeout` is exact where this cannot be: it cancels only a request
/// alone on its connection and closes the connection otherwise.
///
/// [`Client`]: crate::Client
///
/// Its `Debug` form shows neither the backend's secret key (which lets
/// anyone who can reach the server cancel that backend's queries) nor the
/// password.
#[derive(Clone)]
pub struct CancelToken {
    config: Config,
    process_id: i32,
    secret_key: i32,
    connection: Weak<Connection>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("config", &self.config)
            .field("process_id", &self.process_id)
            .field("secret_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl CancelToken {
    pub(crate) fn new(
        config: Config,
        process_id: i32,
        secret_key: i32,
        connection: Weak<Connection>,
    ) -> CancelToken {
        CancelToken {
            config,
            process_id,
            secret_key,
            connection,
        }
    }

    /// The backend process this token cancels.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// Asks the server to cancel whatever the connection is executing. The
    /// cancelled request fails with SQLSTATE 57014; the connection stays
    /// usable. Returns once the server has taken the request, or with an
    /// error after `connect_timeout` (10 s when that is off) if it did not.
    pub fn cancel_query(&self) -> Result<(), Error> {
        require_green("cancel query")?;
        let connection = self.connection.upgrade();
        let held = match &connection {
            Some(c) => c.hold_writes(false).is_ok(),
            None => false,
        };
        let result = self.send_cancel();
        if let (true, Some(c)) = (held, &connection) {
            c.release_writes();
        }
        result
    }

    fn send_cancel(&self) -> Result<(), Error> {
        let timeout = self
            .config
            .connect_timeout()
            .unwrap_or(DEFAULT_CANCEL_TIMEOUT);
        send_cancel(
            &self.config,
            self.process_id,
            self.secret_key,
            Instant::now() + timeout,
        )
    }
}

/// How long a cancel may take when `connect_timeout` is off.
const DEFAULT_CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_form_of_a_cancel_token_hides_the_secret_key_and_the_password() {
        let config = Config::parse("postgres://u:pa55word@h/d").unwrap();
        let token = CancelToken::new(config, 4242, 918_273_645, Weak::new());
        let debug = format!("{token:?}");
        assert!(debug.contains("4242"), "{debug}");
        assert!(!debug.contains("918273645"), "{debug}");
        assert!(!debug.contains("pa55word"), "{debug}");
        assert!(debug.contains("secret_key: \"<redacted>\""), "{debug}");
    }
}
