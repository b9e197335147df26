//! How the pool opens, inspects and cleans the connections it manages.
//!
//! The slot logic ([`super::state`], [`super::core`]) only needs these four
//! operations, so it is written once against this trait and does not depend
//! on the wire protocol; [`PgConnector`] is the one implementation, for
//! [`crate::pg::Client`].

use crate::pg::{Client, Config, TransactionStatus};
use crate::Error;

/// Opens and inspects connections for the pool.
pub(crate) trait Connector: Send + Sync + 'static {
    /// A connection.
    type Conn: Send + Sync + std::fmt::Debug + 'static;
    /// Opens a new connection (network I/O; called outside every lock).
    fn connect(&self) -> Result<Self::Conn, Error>;
    /// True when the connection can no longer be used.
    fn is_broken(conn: &Self::Conn) -> bool;
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

    fn connect(&self) -> Result<Client, Error> {
        Client::connect(&self.config)
    }

    fn is_broken(conn: &Client) -> bool {
        conn.is_closed()
    }

    fn in_transaction(conn: &Client) -> bool {
        !matches!(conn.transaction_status(), TransactionStatus::Idle)
    }

    fn roll_back(conn: &Client) -> Result<(), Error> {
        conn.batch_execute("ROLLBACK")
    }
}
