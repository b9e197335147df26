//! The contenders that do not use odm: what a user would pick instead, and
//! the server's own ceiling.
//!
//! - `pgbench` (plain and pipelined), the server's ceiling: see
//!   [`super::pgbench`].
//! - [`TokioPeer`]: `tokio-postgres` on a multi-threaded runtime (one worker
//!   per core), `level` tasks sharing 1, 2, 4 or 8 connections; the best of
//!   those is reported.
//! - [`SyncPeer`]: the blocking `postgres` crate on `level` OS threads, one
//!   connection per thread up to 64, then a shared pool of 64 connections
//!   behind a simple blocking queue (mutex + condition variable).
//!
//! All of them run the same statements as odm: [`SELECT_WORLD`],
//! [`SELECT_FORTUNES`] and the batched [`update_sql`] of 20 rows.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::measure::{time_boxed, time_boxed_with, Cell, Measurement, Probe, MAX_WARMUP_EXTENSION};
use super::workload::{
    request, request_async, update_params, update_sql, Fortune, Op, Reply, Rng, World,
    ROWS_PER_REQUEST, SELECT_FORTUNES, SELECT_WORLD,
};

/// Connections of the sync crate beyond which threads share a pool.
pub const SYNC_MAX_CONNECTIONS: usize = 64;
/// Connection counts tokio-postgres tries; the best is reported.
pub const TOKIO_CONNECTIONS: [usize; 4] = [1, 2, 4, 8];
/// Server connections left free for the rest of the run when pgbench
/// opens one per client.
pub const CONNECTION_RESERVE: usize = 40;
/// OS thread stack for the sync crate's threads.
const SYNC_THREAD_STACK: usize = 256 * 1024;

/// The server every contender talks to, in plain connection parameters.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address, or a unix socket directory (starting with `/`).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Role.
    pub user: String,
    /// Its password, if the server asks for one.
    pub password: Option<String>,
    /// Database holding `world` and `fortune`.
    pub dbname: String,
    /// The server's `max_connections`.
    pub max_connections: usize,
}

impl Target {
    /// Most connections a contender may open at once.
    pub fn connection_budget(&self) -> usize {
        self.max_connections
            .saturating_sub(CONNECTION_RESERVE)
            .max(1)
    }

    fn tokio_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("odm-bench-peer");
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }
}

// ---------------------------------------------------------- tokio-postgres

struct TokioClient {
    client: tokio_postgres::Client,
    world: tokio_postgres::Statement,
    fortunes: tokio_postgres::Statement,
    update: tokio_postgres::Statement,
}

impl TokioClient {
    async fn exec(&self, op: Op) -> Result<Reply, tokio_postgres::Error> {
        match op {
            Op::World(id) => {
                let row = self.client.query_opt(&self.world, &[&id]).await?;
                Ok(Reply::World(row.map(|r| World {
                    id: r.get(0),
                    randomnumber: r.get(1),
                })))
            }
            Op::Update(worlds) => {
                let values = update_params(&worlds);
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let changed = if worlds.len() == ROWS_PER_REQUEST {
                    self.client.execute(&self.update, &params).await?
                } else {
                    let sql = update_sql(worlds.len());
                    self.client.execute(sql.as_str(), &params).await?
                };
                Ok(Reply::Updated(changed))
            }
            Op::Fortunes => {
                let rows = self.client.query(&self.fortunes, &[]).await?;
                Ok(Reply::Fortunes(
                    rows.iter()
                        .map(|r| Fortune {
                            id: r.get(0),
                            message: r.get(1),
                        })
                        .collect(),
                ))
            }
        }
    }
}

/// `tokio-postgres` on a multi-threaded runtime with its connections open.
pub struct TokioPeer {
    runtime: tokio::runtime::Runtime,
    clients: Vec<Arc<TokioClient>>,
}

impl std::fmt::Debug for TokioPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioPeer")
            .field("connections", &self.clients.len())
            .finish()
    }
}

impl TokioPeer {
    /// The contender name.
    pub const NAME: &'static str = "tokio-postgres";

    /// Starts the runtime and opens `connections` connections.
    pub fn connect(target: &Target, connections: usize) -> Result<TokioPeer, String> {
        let cores = thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
        let config = target.tokio_config();
        let clients = runtime.block_on(async {
            let mut clients = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("tokio-postgres cannot connect: {e}"))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                let prepare = |sql: String| {
                    let client = &client;
                    async move {
                        client
                            .prepare(&sql)
                            .await
                            .map_err(|e| format!("tokio-postgres cannot prepare: {e}"))
                    }
                };
                let world = prepare(SELECT_WORLD.to_owned()).await?;
                let fortunes = prepare(SELECT_FORTUNES.to_owned()).await?;
                let update = prepare(update_sql(ROWS_PER_REQUEST)).await?;
                clients.push(Arc::new(TokioClient {
                    client,
                    world,
                    fortunes,
                    update,
                }));
            }
            Ok::<_, String>(clients)
        })?;
        Ok(TokioPeer { runtime, clients })
    }

    /// Runs `cell.level` tasks over the first `connections` connections,
    /// warming up for `warmup` to `max_warmup` (see [`time_boxed_with`]).
    pub fn run(
        &self,
        cell: &Cell,
        connections: usize,
        (warmup, max_warmup): (Duration, Duration),
        duration: Duration,
    ) -> Result<Measurement, String> {
        let connections = connections.clamp(1, self.clients.len()).min(cell.level);
        time_boxed_with(cell, warmup, max_warmup, duration, |probe| {
            self.runtime.block_on(async {
                let mut tasks = Vec::with_capacity(cell.level);
                for task in 0..cell.level {
                    let client = Arc::clone(&self.clients[task % connections]);
                    let probe = probe.clone();
                    let workload = cell.workload;
                    tasks.push(tokio::spawn(async move {
                        let mut tally = probe.tally();
                        let mut rng = Rng::new(task as u64);
                        while probe.running() {
                            let started = Instant::now();
                            let outcome = request_async(workload, &mut rng, |op| {
                                let reply = client.exec(op);
                                async {
                                    let reply = reply.await;
                                    if reply.is_ok() {
                                        probe.statement_done();
                                    }
                                    reply
                                }
                            })
                            .await;
                            tally.record(started, outcome);
                        }
                    }));
                }
                for task in tasks {
                    task.await
                        .map_err(|e| format!("a tokio task failed: {e}"))?;
                }
                Ok(format!("{connections} conn, {} tasks", cell.level))
            })
        })
    }

    /// The best of [`TOKIO_CONNECTIONS`]: each count is tried for `trial`
    /// (after a short warm-up, not extended), then the best one is measured
    /// properly. Ties (such as no request finishing in a trial) go to the
    /// larger count.
    pub fn run_best(
        &self,
        cell: &Cell,
        trial: Duration,
        warmup: Duration,
        duration: Duration,
    ) -> Result<Measurement, String> {
        let mut best: Option<(f64, usize)> = None;
        for connections in TOKIO_CONNECTIONS {
            if connections > cell.level.max(1) || connections > self.clients.len() {
                continue;
            }
            let tried = self.run(cell, connections, (trial / 2, trial / 2), trial)?;
            if best.is_none_or(|(qps, _)| tried.qps() >= qps) {
                best = Some((tried.qps(), connections));
            }
        }
        let connections = best.map_or(1, |(_, c)| c);
        let mut measured = self.run(
            cell,
            connections,
            (warmup, warmup + MAX_WARMUP_EXTENSION),
            duration,
        )?;
        measured.setup = format!("best of 1-8 conn: {}", measured.setup);
        Ok(measured)
    }
}

// ------------------------------------------------------------ postgres (sync)

struct SyncClient {
    client: postgres::Client,
    world: postgres::Statement,
    fortunes: postgres::Statement,
    update: postgres::Statement,
}

impl SyncClient {
    fn connect(target: &Target) -> Result<SyncClient, String> {
        let config: postgres::Config = target.tokio_config().into();
        let mut client = config
            .connect(postgres::NoTls)
            .map_err(|e| format!("postgres cannot connect: {e}"))?;
        let mut prepare = |sql: &str| {
            client
                .prepare(sql)
                .map_err(|e| format!("postgres cannot prepare: {e}"))
        };
        let world = prepare(SELECT_WORLD)?;
        let fortunes = prepare(SELECT_FORTUNES)?;
        let update = prepare(&update_sql(ROWS_PER_REQUEST))?;
        Ok(SyncClient {
            client,
            world,
            fortunes,
            update,
        })
    }

    fn exec(&mut self, op: Op) -> Result<Reply, postgres::Error> {
        match op {
            Op::World(id) => {
                let row = self.client.query_opt(&self.world, &[&id])?;
                Ok(Reply::World(row.map(|r| World {
                    id: r.get(0),
                    randomnumber: r.get(1),
                })))
            }
            Op::Update(worlds) => {
                let values = update_params(&worlds);
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let changed = if worlds.len() == ROWS_PER_REQUEST {
                    self.client.execute(&self.update, &params)?
                } else {
                    self.client
                        .execute(update_sql(worlds.len()).as_str(), &params)?
                };
                Ok(Reply::Updated(changed))
            }
            Op::Fortunes => {
                let rows = self.client.query(&self.fortunes, &[])?;
                Ok(Reply::Fortunes(
                    rows.iter()
                        .map(|r| Fortune {
                            id: r.get(0),
                            message: r.get(1),
                        })
                        .collect(),
                ))
            }
        }
    }
}

/// A blocking pool: a stack of idle clients and a condition variable.
struct BlockingPool {
    idle: Mutex<Vec<SyncClient>>,
    available: Condvar,
}

impl BlockingPool {
    fn take(&self) -> SyncClient {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(client) = idle.pop() {
                return client;
            }
            idle = self.available.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give(&self, client: SyncClient) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(client);
        self.available.notify_one();
    }
}

/// The sync `postgres` crate on OS threads.
pub struct SyncPeer {
    pool: Arc<BlockingPool>,
    connections: usize,
}

impl std::fmt::Debug for SyncPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncPeer")
            .field("connections", &self.connections)
            .finish()
    }
}

impl SyncPeer {
    /// The contender name.
    pub const NAME: &'static str = "postgres-sync";

    /// Opens the connections `level` threads need: one each up to
    /// [`SYNC_MAX_CONNECTIONS`], then that many, shared.
    pub fn connect(target: &Target, level: usize) -> Result<SyncPeer, String> {
        let connections = level
            .min(SYNC_MAX_CONNECTIONS)
            .min(target.connection_budget())
            .max(1);
        // Open them in parallel: authentication dominates.
        let opened: Vec<Result<SyncClient, String>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..connections)
                .map(|_| scope.spawn(|| SyncClient::connect(target)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a connecting thread panicked".into()))
                })
                .collect()
        });
        let idle = opened.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(SyncPeer {
            pool: Arc::new(BlockingPool {
                idle: Mutex::new(idle),
                available: Condvar::new(),
            }),
            connections,
        })
    }

    /// Runs `cell.level` threads; each takes a connection per request from
    /// the shared pool when there are more threads than connections, else
    /// keeps its own for the whole run.
    pub fn run(
        &self,
        cell: &Cell,
        warmup: Duration,
        duration: Duration,
    ) -> Result<Measurement, String> {
        let shared = cell.level > self.connections;
        time_boxed(cell, warmup, duration, |probe| {
            thread::scope(|scope| {
                let mut handles = Vec::with_capacity(cell.level);
                for task in 0..cell.level {
                    let probe: Probe = probe.clone();
                    let pool = &self.pool;
                    let workload = cell.workload;
                    let spawned = thread::Builder::new()
                        .stack_size(SYNC_THREAD_STACK)
                        .spawn_scoped(scope, move || {
                            let mut tally = probe.tally();
                            let mut rng = Rng::new(task as u64);
                            let mut own = (!shared).then(|| pool.take());
                            while probe.running() {
                                let started = Instant::now();
                                let outcome = match own.as_mut() {
                                    Some(client) => request(
                                        workload,
                                        &mut rng,
                                        &mut probe.counting(|op| client.exec(op)),
                                    ),
                                    None => {
                                        let mut client = pool.take();
                                        let outcome = request(
                                            workload,
                                            &mut rng,
                                            &mut probe.counting(|op| client.exec(op)),
                                        );
                                        pool.give(client);
                                        outcome
                                    }
                                };
                                tally.record(started, outcome);
                            }
                            if let Some(client) = own {
                                pool.give(client);
                            }
                        })
                        .map_err(|e| format!("cannot start thread {task}: {e}"))?;
                    handles.push(spawned);
                }
                for handle in handles {
                    handle
                        .join()
                        .map_err(|_| "a benchmark thread panicked".to_string())?;
                }
                Ok(if shared {
                    format!("{} threads, pool of {}", cell.level, self.connections)
                } else {
                    format!("{} threads, 1 conn each", cell.level)
                })
            })
        })
    }
}
