//! [`Engine`]: one database's configuration and its connection pool.

use std::fmt;
use std::sync::Arc;

use crate::pg::Config;
use crate::pool::{parse_url, Pool, PoolOptions};
use crate::replicas::Replica;
use crate::Error;

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
