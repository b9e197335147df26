//! [`Pool`]: its constructors, the exclusive checkout and the shared
//! statements, and its statistics.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::connector::PgConnector;
use super::keeper::Keeper;
use super::lifecycle::Lifecycle;
use super::options::{parse_url, PoolOptions};
use super::task;
use super::{PoolStats, PooledConnection};
use crate::config::Config;
use crate::error::context::require_green;
use crate::error::Error;

/// A green connection pool for one database: a cheap, cloneable handle
/// (clones share the same connections). See the [module documentation](crate::pool).
#[derive(Clone)]
pub struct Pool {
    pub(super) keeper: Arc<Keeper<PgConnector>>,
    pub(super) options: Arc<PoolOptions>,
}

impl Pool {
    /// A pool for `config` with the default [`PoolOptions`]. Opens nothing
    /// yet: connections are opened on demand.
    pub fn new(config: Config) -> Pool {
        Pool::with_options(config, PoolOptions::new())
    }

    /// A pool for `config` with `options`. Opens nothing yet.
    ///
    /// ```
    /// use green_postgres::Config;
    /// use green_postgres::pool::{Pool, PoolOptions};
    ///
    /// let config = Config::builder().host("127.0.0.1").user("odm").build()?;
    /// let pool = Pool::with_options(config, PoolOptions::new().max_size(4));
    /// assert_eq!(pool.max_size(), 4);
    /// # Ok::<(), green_postgres::Error>(())
    /// ```
    pub fn with_options(config: Config, options: PoolOptions) -> Pool {
        let lifecycle = Lifecycle::from_options(&options);
        let mut keeper = Keeper::new(
            PgConnector { config },
            options.get_max_size(),
            options.get_timeout(),
            lifecycle,
        );
        keeper.state().set_max_shared(options.get_max_shared());
        keeper.fail_fast = options.get_fail_fast();
        Pool {
            keeper: Arc::new(keeper),
            options: Arc::new(options),
        }
    }

    /// A pool for a database URL, its pool settings (`pool_size`,
    /// `pool_timeout`, `max_lifetime`, `idle_timeout`) included; see
    /// [`parse_url`]. Opens nothing yet.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the bad part of the URL, never the password.
    pub fn from_url(url: &str) -> Result<Pool, Error> {
        let (config, options) = parse_url(url)?;
        Ok(Pool::with_options(config, options))
    }

    /// Checks out a connection for the calling task's exclusive use, parking
    /// until one is free.
    ///
    /// # Errors
    ///
    /// - [`Error::WrongContext`] at once when called off a green worker
    ///   (its message starts with `acquire in main greenlet`);
    /// - [`Error::NestedAcquire`] when this task already holds a connection
    ///   from this pool;
    /// - [`Error::PoolTimeout`] after [`timeout`](Pool::timeout) with no free
    ///   connection, carrying how long the caller waited;
    /// - [`Error::PoolClosed`] after [`close`](Pool::close);
    /// - the connect error when this task had to open a new connection and
    ///   could not (within what was left of its timeout), or a copy of the
    ///   last one when the connect backoff would not let it try before its
    ///   timeout.
    ///
    /// It never takes longer than [`timeout`](Pool::timeout) in total. A
    /// connection that sat idle for more than 500 ms is checked with an
    /// empty query first; see the [settings](crate::pool#settings).
    pub fn acquire(&self) -> Result<PooledConnection, Error> {
        require_green("pool acquire")?;
        let task = task::current_task();
        let checkout = self.keeper.acquire(task, false)?;
        checkout.conn.set_shared(false);
        Ok(PooledConnection::new(
            checkout,
            Arc::clone(&self.keeper),
            task,
        ))
    }

    /// Like [`Pool::acquire`], but a task that already holds connections of
    /// this pool may take one more (for an independent transaction beside
    /// its own, e.g. `odm::Mapper::begin_independent`).
    /// Deadlock-safe against the task itself: when its own holdings already
    /// fill the pool, it fails at once with [`Error::PoolHeldByTask`]
    /// instead of waiting for a connection only it could give back. When
    /// other tasks hold the rest, it waits as [`Pool::acquire`] does.
    ///
    /// # Errors
    ///
    /// As [`Pool::acquire`], and [`Error::PoolHeldByTask`].
    pub fn acquire_another(&self) -> Result<PooledConnection, Error> {
        require_green("pool acquire")?;
        let task = task::current_task();
        let checkout = self.keeper.acquire(task, true)?;
        checkout.conn.set_shared(false);
        Ok(PooledConnection::new(
            checkout,
            Arc::clone(&self.keeper),
            task,
        ))
    }

    /// The most connections this pool opens (`pool_size`, default 10).
    pub fn max_size(&self) -> usize {
        self.keeper.max_size
    }

    /// The most connections that carry shared statements at once
    /// (`pool_max_shared`, default one per `may` scheduler thread, never
    /// more than [`max_size`](Pool::max_size)); see
    /// [`PoolOptions::max_shared`].
    pub fn max_shared(&self) -> usize {
        self.keeper.state().shared_cap()
    }

    /// How long a caller waits for a connection (`pool_timeout`, default 30 s).
    pub fn timeout(&self) -> Duration {
        self.keeper.timeout
    }

    /// Connections open right now: idle, checked out or running shared
    /// statements (connections still being opened are not counted).
    pub fn size(&self) -> usize {
        self.keeper.state().size
    }

    /// Idle connections: open, in the pool, with no statement running.
    pub fn available(&self) -> usize {
        self.keeper.state().available()
    }

    /// Callers parked right now waiting for a connection (exclusive and
    /// shared).
    pub fn waiting(&self) -> usize {
        let state = self.keeper.state();
        state.exclusive_waiters.len() + state.shared_waiters.len()
    }

    /// `"size: N, available: M"`, read under one lock.
    pub fn status(&self) -> String {
        let state = self.keeper.state();
        format!("size: {}, available: {}", state.size, state.available())
    }

    /// Counters since the pool was created: checkouts, waits (count, total
    /// and longest wait), timeouts, connections opened, discarded, expired
    /// and idled out, failed liveness checks, and the connect backoff's
    /// waits and refusals.
    pub fn stats(&self) -> PoolStats {
        self.keeper.counters.snapshot()
    }

    /// The configuration connections are opened with.
    pub fn config(&self) -> &Config {
        &self.keeper.connector.config
    }

    /// The pool's settings.
    pub fn options(&self) -> &PoolOptions {
        &self.options
    }

    /// Closes the pool: parked callers get [`Error::PoolClosed`], idle
    /// connections are closed now, busy ones when they are handed back, and
    /// every later [`acquire`](Pool::acquire) or shared statement fails with
    /// [`Error::PoolClosed`]. Idempotent.
    pub fn close(&self) {
        self.keeper.close();
    }

    /// True once [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.keeper.state().closed
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.keeper.state();
        f.debug_struct("Pool")
            .field("config", &self.keeper.connector.config)
            .field("max_size", &self.keeper.max_size)
            .field("timeout", &self.keeper.timeout)
            .field("size", &state.size)
            .field("pending", &state.pending)
            .field("available", &state.available())
            .field("exclusive_waiters", &state.exclusive_waiters.len())
            .field("shared_waiters", &state.shared_waiters.len())
            .field("closed", &state.closed)
            .field("failed_connect_rounds", &state.backoff.rounds())
            .finish()
    }
}
