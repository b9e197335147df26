//! [`Engine`]: one database URL and its connection pool.

use std::fmt;
use std::sync::Arc;

use crate::pg::Config;
use crate::pool::Pool;
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
}

impl Engine {
    /// An engine for a database URL (`postgresql+green://`, `postgresql://`,
    /// `postgres://` or libpq's `key=value` form).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the malformed part of the URL (never the
    /// password).
    pub fn new(url: &str) -> Result<Engine, Error> {
        Ok(Engine::from_config(Config::parse(url)?))
    }

    /// An engine for an already parsed configuration.
    pub fn from_config(config: Config) -> Engine {
        let pool = Pool::new(config.clone());
        Engine {
            inner: Arc::new(EngineInner { config, pool }),
        }
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
            .finish()
    }
}
