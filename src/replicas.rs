//! Read replicas of a bind: [`Engine::with_replicas`] names streaming
//! standbys of the bind's primary, and [`ReadRoute`] says whether a
//! session's ORM reads before its first write go to one of them.
//!
//! # What is routed
//!
//! With [`ReadRoute::Replica`] (per mapper, [`Mapper::set_read_route`], or
//! per session, [`Session::set_read_route`]), an ORM read (`get`, queries,
//! `related`) that comes *before* the session's first write on the table's
//! bind runs as one autocommit statement on a shared connection of one of
//! the bind's replicas. Everything else stays on the primary: writes, raw
//! SQL, and every statement after the first write on that bind, reads
//! included (they run in the session's transaction there). A bind without
//! replicas reads from its primary.
//!
//! A session picks one replica (round robin over the sessions of the
//! mapper) and keeps it, so its reads do not go back in time by moving
//! between standbys that have replayed different amounts of WAL.
//!
//! # Staleness
//!
//! A standby serves what it has replayed: a commit on the primary is
//! visible there after the replication delay — milliseconds on a healthy
//! local network, but unbounded when the standby is disconnected, its
//! replay is paused, or replay waits for a long query on the standby (up
//! to `max_standby_streaming_delay`, 30 s by default). odm does not measure
//! the lag; monitor `now() - pg_last_xact_replay_timestamp()` on the
//! standby. To read your own writes:
//!
//! * inside a session, read after the first write: the read then runs on
//!   the primary, in the transaction;
//! * in a later session, pin it to the primary
//!   ([`Session::pin_to_primary`]), or have the primary's commits wait for
//!   the standbys to apply them (`synchronous_commit = remote_apply` with
//!   `synchronous_standby_names`), which makes every committed write
//!   visible on those standbys at the cost of a round trip to them per
//!   commit.
//!
//! # When a replica is down
//!
//! Reads fall back: when a replica cannot give a connection (refused,
//! unreachable, authentication or TLS failure, the server shutting down:
//! [`Error::is_connection_error`]), the read goes to the next replica and,
//! when none is left, to the primary. The failed replica is skipped by
//! every session for [`REPLICA_RECHECK`] and then tried again by one read.
//! A read that was already sent when its replica broke is not repeated: it
//! fails with the connection error, as on the primary. A standby may also
//! cancel a read that conflicts with replay (SQLSTATE 40001, retryable with
//! [`Mapper::begin_with_retry`]).
//!
//! [`Engine::with_replicas`]: crate::Engine::with_replicas
//! [`Mapper::set_read_route`]: crate::Mapper::set_read_route
//! [`Mapper::begin_with_retry`]: crate::Mapper::begin_with_retry
//! [`Session::set_read_route`]: crate::Session::set_read_route
//! [`Session::pin_to_primary`]: crate::Session::pin_to_primary
//! [`Error::is_connection_error`]: crate::Error::is_connection_error

use std::time::Duration;

/// How long a replica that failed to give a connection is skipped before a
/// read tries it again: the pool's longest connect backoff, so the retry
/// finds its pool ready to connect.
pub const REPLICA_RECHECK: Duration = Duration::from_secs(2);

/// Where a session's ORM reads before its first write on a bind go (see
/// the [module docs](crate::replicas)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadRoute {
    /// To the bind's primary (the default).
    #[default]
    Primary,
    /// To one of the bind's replicas, falling back to the primary when none
    /// is up or the bind has none.
    Replica,
}
