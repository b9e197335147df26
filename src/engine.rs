//! [`Engine`]: one database's configuration and its connection pool.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::error::Error;
use crate::replicas::REPLICA_RECHECK;
use green_postgres::pool::{parse_url, Pool, PoolOptions};
use green_postgres::{self as pg, seam, Client, Config};

/// One database: its configuration and the [`Pool`] of connections to it.
///
/// A cheap, cloneable handle (clones share the pool). Creating one does no
/// I/O: the URL is parsed and the pool is empty until the first task needs a
/// connection.
///
/// ```
/// let engine = odm::Engine::new("postgresql+green://odm:secret@127.0.0.1:5432/app?pool_size=7&pool_timeout=15")?;
/// assert_eq!(engine.dialect(), "postgresql");
/// assert_eq!(engine.database(), "app");
/// assert_eq!(engine.pool().max_size(), 7);
/// assert_eq!(engine.pool().timeout(), std::time::Duration::from_secs(15));
/// assert_eq!(engine.pool().size(), 0);
/// # Ok::<(), odm::Error>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    config: Config,
    pool: Pool,
    /// Read replicas ([`Engine::with_replicas`]); empty for most engines.
    replicas: Vec<Replica>,
}

impl Engine {
    /// An engine for a database URL (`postgresql+green://`, `postgresql://`,
    /// `postgres://` or libpq's `key=value` form).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the malformed part of the URL (never the
    /// password).
    /// The URL's pool settings (`pool_size`, `pool_timeout`, ...) go to the
    /// pool ([`parse_url`]).
    pub fn new(url: &str) -> Result<Engine, Error> {
        let (config, options) = parse_url(url)?;
        Ok(Engine::with_options(config, options))
    }

    /// An engine for an already parsed configuration, with the default
    /// [`PoolOptions`].
    pub fn from_config(config: Config) -> Engine {
        Engine::with_options(config, PoolOptions::new())
    }

    /// An engine for a configuration and pool options, without a URL.
    ///
    /// ```
    /// use odm::pg::Config;
    /// use odm::pool::PoolOptions;
    ///
    /// let config = Config::builder().host("127.0.0.1").user("odm").dbname("app").build()?;
    /// let engine = odm::Engine::with_options(config, PoolOptions::new().max_size(7));
    /// assert_eq!(engine.pool().max_size(), 7);
    /// # Ok::<(), odm::Error>(())
    /// ```
    pub fn with_options(config: Config, options: PoolOptions) -> Engine {
        let pool = Pool::with_options(config.clone(), options);
        Engine::from_parts(config, pool, Vec::new())
    }

    pub(crate) fn from_parts(config: Config, pool: Pool, replicas: Vec<Replica>) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                config,
                pool,
                replicas,
            }),
        }
    }

    pub(crate) fn replica_list(&self) -> &[Replica] {
        &self.inner.replicas
    }

    /// The engine's connection pool.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The engine's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The SQL dialect spoken: always `"postgresql"`.
    pub fn dialect(&self) -> &'static str {
        "postgresql"
    }

    /// The name of the database the engine connects to.
    pub fn database(&self) -> &str {
        self.inner.config.dbname()
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("dialect", &self.dialect())
            .field("database", &self.database())
            .field("pool", &self.inner.pool)
            .field("replicas", &self.inner.replicas.len())
            .finish()
    }
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
