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

use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::pg::{self, seam, Client};
use crate::{Engine, Error};

#[cfg(doc)]
use crate::{Mapper, Session};

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

/// One replica of a bind and whether it is being skipped.
pub(crate) struct Replica {
    engine: Engine,
    /// While `Some`, the replica is skipped until then.
    down_until: Mutex<Option<Instant>>,
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("engine", &self.engine)
            .field("down_until", &*self.down_until.lock())
            .finish()
    }
}

impl Replica {
    fn new(engine: Engine) -> Replica {
        Replica {
            engine,
            down_until: Mutex::new(None),
        }
    }

    /// Whether a read may use this replica now. The first read after the
    /// skip period has passed is let through and holds the others off for
    /// another period while it tries.
    fn claim(&self, now: Instant) -> bool {
        let mut down_until = self.down_until.lock();
        match *down_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) => {
                *down_until = Some(now + REPLICA_RECHECK);
                true
            }
        }
    }

    fn mark_down(&self, now: Instant) {
        *self.down_until.lock() = Some(now + REPLICA_RECHECK);
    }

    fn mark_up(&self) {
        let mut down_until = self.down_until.lock();
        if down_until.is_some() {
            *down_until = None;
        }
    }
}

/// The read replicas of a bind.
impl Engine {
    /// This engine (the primary) with read replicas, one engine per URL
    /// (each URL's pool settings size that replica's pool). The returned
    /// engine shares this one's pool. No I/O.
    ///
    /// ```
    /// let engine = odm::Engine::new("postgresql://odm@primary/app")?
    ///     .with_replicas(["postgresql://odm@standby1/app", "postgresql://odm@standby2/app?pool_size=20"])?;
    /// assert_eq!(engine.replicas().len(), 2);
    /// assert_eq!(engine.replicas()[1].pool().max_size(), 20);
    /// # Ok::<(), odm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a malformed URL.
    pub fn with_replicas<I, S>(self, urls: I) -> Result<Engine, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut replicas = Vec::new();
        for url in urls {
            replicas.push(Engine::new(url.as_ref())?);
        }
        Ok(self.with_replica_engines(replicas))
    }

    /// This engine (the primary) with read replicas given as engines.
    pub fn with_replica_engines(self, replicas: Vec<Engine>) -> Engine {
        let replicas = replicas.into_iter().map(Replica::new).collect();
        Engine::from_parts(self.config().clone(), self.pool().clone(), replicas)
    }

    /// The replicas' engines, in the order given.
    pub fn replicas(&self) -> Vec<&Engine> {
        self.replica_list().iter().map(|r| &r.engine).collect()
    }

    /// Runs an ORM read on a replica: the one `seed` picks, else the next
    /// one up, else the primary, each as one autocommit statement on a
    /// shared connection.
    pub(crate) fn read_on_replica<R>(
        &self,
        seed: usize,
        read: impl FnOnce(&Client) -> pg::Result<R>,
    ) -> pg::Result<R> {
        let replicas = self.replica_list();
        let mut read = Some(read);
        for step in 0..replicas.len() {
            let index = (seed + step) % replicas.len();
            let replica = &replicas[index];
            if !replica.claim(Instant::now()) {
                continue;
            }
            let outcome = seam::shared(replica.engine.pool(), "session read", |client| {
                let read = read.take().expect("a pool runs a shared statement once");
                read(client)
            });
            match outcome {
                Err(e) if e.is_connection_error() => {
                    replica.mark_down(Instant::now());
                    log::warn!("replica {index} skipped for {REPLICA_RECHECK:?}: {e}");
                    if read.is_none() {
                        return Err(e);
                    }
                }
                outcome => {
                    replica.mark_up();
                    return outcome;
                }
            }
        }
        let read = read.expect("a read that was sent has returned");
        seam::shared(self.pool(), "session read", read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica() -> Replica {
        Replica::new(Engine::new("postgresql://odm@127.0.0.1:1/app").unwrap())
    }

    #[test]
    fn a_replica_marked_down_is_skipped_until_the_recheck_period_has_passed() {
        let replica = replica();
        let now = Instant::now();
        assert!(replica.claim(now));
        replica.mark_down(now);
        assert!(!replica.claim(now + REPLICA_RECHECK / 2));
        assert!(replica.claim(now + REPLICA_RECHECK));
    }

    #[test]
    fn only_one_read_retries_a_down_replica_until_it_answers() {
        let replica = replica();
        let now = Instant::now();
        replica.mark_down(now);
        let later = now + REPLICA_RECHECK;
        assert!(replica.claim(later));
        assert!(!replica.claim(later));
        replica.mark_up();
        assert!(replica.claim(later));
    }
}
