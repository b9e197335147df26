//! How the pool opens, inspects and cleans the connections it manages.
//!
//! The slot logic ([`super::state`], [`super::keeper`]) only needs these five
//! operations, so it is written once against this trait and does not depend
//! on the wire protocol; [`PgConnector`] is the one implementation, for
//! [`crate::Client`].

use std::io;
use std::time::Duration;

use crate::client::client::Client;
use crate::client::host_choice::{asked_whether_it_fits, must_ask_whether_it_fits};
use crate::config::Config;
use crate::error::Error;
use crate::net::open_socket::target_of;

/// Opens and inspects connections for the pool.
pub(crate) trait Connector: Send + Sync + 'static {
    /// A connection.
    type Conn: Send + Sync + std::fmt::Debug + 'static;
    /// Opens a new connection within `within` at most (network I/O; called
    /// outside every lock).
    fn connect(&self, within: Duration) -> Result<Self::Conn, Error>;
    /// True when the connection can no longer be used.
    fn is_broken(conn: &Self::Conn) -> bool;
    /// True when whether the connection is still usable can only be learnt
    /// by asking the server: it is then vetted ([`Connector::check_alive`])
    /// at every checkout, not only after sitting idle.
    fn must_ask(_conn: &Self::Conn) -> bool {
        false
    }
    /// Asks the server whether the connection still works, waiting at most
    /// `timeout` for an answer (network I/O; called outside every lock).
    fn check_alive(conn: &Self::Conn, timeout: Duration) -> Result<(), Error>;
    /// True when the connection is inside a transaction (open or failed).
    fn in_transaction(conn: &Self::Conn) -> bool;
    /// Ends the open transaction (network I/O; called outside every lock).
    fn roll_back(conn: &Self::Conn) -> Result<(), Error>;
}

/// Opens [`Client`]s from one [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct PgConnector {
    pub(crate) config: Config,
}

impl Connector for PgConnector {
    type Conn = Client;

    /// Connects with the configured `connect_timeout`, or with `within` if
    /// that is shorter (what is left of the caller's `pool_timeout`).
    fn connect(&self, within: Duration) -> Result<Client, Error> {
        match self.config.connect_timeout() {
            Some(timeout) if timeout <= within => Client::connect(&self.config),
            _ => {
                let mut config = self.config.clone();
                config.set_connect_timeout(Some(within));
                Client::connect(&config).map_err(|err| cut_short(err, within))
            }
        }
    }

    /// Closed, or no longer on a server `target_session_attrs` accepts
    /// (after a failover: a primary turned standby).
    fn is_broken(conn: &Client) -> bool {
        conn.is_closed() || !conn.fits_target_session_attrs()
    }

    /// A `standby` or `read-only` connection to a server that does not
    /// report `in_hot_standby` (PostgreSQL 13): a promotion would go
    /// unnoticed otherwise.
    fn must_ask(conn: &Client) -> bool {
        must_ask_whether_it_fits(conn)
    }

    /// The empty query; then, when [`PgConnector::must_ask`], whether the
    /// server is still in recovery (a connection that no longer fits is
    /// refused with [`Error::Connect`], and the pool discards it).
    fn check_alive(conn: &Client, timeout: Duration) -> Result<(), Error> {
        conn.check_alive(timeout)?;
        if must_ask_whether_it_fits(conn) && !asked_whether_it_fits(conn)? {
            return Err(Error::Connect {
                target: target_of(conn.config()),
                source: io::Error::other(format!(
                    "no longer fits target_session_attrs={}",
                    conn.config().target_session_attrs().as_str()
                )),
            });
        }
        Ok(())
    }

    fn in_transaction(conn: &Client) -> bool {
        conn.may_be_in_transaction()
    }

    fn roll_back(conn: &Client) -> Result<(), Error> {
        conn.batch_execute("ROLLBACK")
    }
}

/// A connect that timed out because the caller's `pool_timeout` ran out
/// says so, rather than blaming `connect_timeout`.
fn cut_short(err: Error, within: Duration) -> Error {
    match err {
        Error::Connect { target, source }
            if matches!(
                source.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            Error::Connect {
                target,
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer within {} ms (what was left of pool_timeout)",
                        within.as_millis()
                    ),
                ),
            }
        }
        other => other,
    }
}
