//! The green connection pool.
//!
//! A [`Pool`] owns up to [`max_size`](Pool::max_size) connections to one
//! database and hands them to green tasks in two ways:
//!
//! - **Exclusive** — [`Pool::acquire`] checks out a [`PooledConnection`] that
//!   only the calling task uses until it drops it. Use it for transactions
//!   and for anything that changes session state.
//! - **Shared** — [`Pool::query`], [`Pool::query_one`], [`Pool::query_opt`]
//!   and [`Pool::execute`] run one autocommit statement on a connection that
//!   other tasks' statements use at the same time: the driver pipelines them
//!   (writes them in order, routes the answers back in order). This is what
//!   lets a handful of connections carry hundreds of tasks. See
//!   [the guarantees](#shared-mode-guarantees). [`Pool::atomic_batch`]
//!   runs several statements there as one request with one `Sync`: one
//!   implicit transaction that commits them together or stores none.
//!
//! # Settings
//!
//! The pool's own settings are [`PoolOptions`], built in code
//! (`PoolOptions::new().max_size(4)`) or read from the database URL
//! (`?pool_size=N&pool_timeout=S&…`) by [`parse_url`], [`Pool::from_url`],
//! `Engine::new` and `Mapper::new`; `connect_timeout` is the connection's
//! ([`Config`]). The last three rows are fixed policy, not settings:
//!
//! | setting | default | why |
//! |---|---|---|
//! | `pool_size` | 10 | The most connections the pool ever has open (opening ones included). Every PostgreSQL connection is a server process with its own memory, and a small server is fastest with few busy backends; 10 covers a busy application's concurrent transactions while shared mode needs only a few connections for any number of tasks. sqlx uses the same default. |
//! | `pool_max_shared` | one per `may` scheduler thread, at most `pool_size` | The most connections shared statements spread over at once; at the cap a shared statement joins the least-loaded connection already carrying shared statements instead of opening or waking another. One deep pipeline per scheduler thread answers more statements per packet, read and wake-up than many shallow ones, on the client and on the server. The trade-off: a slow statement on a shared connection delays those pipelined behind it, so raise it when long shared reports run beside short statements. Exclusive checkouts are not capped: they still use the rest of the pool. See [`PoolOptions::max_shared`]. |
//! | `pool_timeout` | 30 s | The longest [`Pool::acquire`] (or a shared statement) takes **in total**: parked in the queue, checking idle connections, waiting out the connect backoff and connecting, all count. Past it the caller gets [`Error::PoolTimeout`] (or the connect error, if it was connecting). Long enough to ride out a burst, short enough that a leaked connection or a deadlock surfaces as an error instead of a hang (SQLAlchemy's and sqlx's default as well). |
//! | `connect_timeout` | 10 s | Bounds opening one connection (TCP, startup, authentication); the pool cuts it to what is left of the caller's `pool_timeout`, so a server that accepts and never answers costs a caller at most `pool_timeout`, and an error cut short this way names `pool_timeout`. 10 s as in pgjdbc: a healthy server answers in milliseconds. |
//! | `max_lifetime` | 30 min | A connection older than this is closed instead of being handed out or taken back (`0` = never). Each connection's lifetime is shortened by a random 0–2.5 % so that connections opened together do not all reconnect together. Gives back server memory that long-lived backends accumulate and lets a load balancer or failover move connections. HikariCP's default, jitter included. |
//! | `idle_timeout` | 10 min | An idle connection unused for longer than this is closed (`0` = never), so a quiet application gives its server processes back. HikariCP's default. |
//! | liveness check | after 500 ms idle ([`PoolOptions::liveness_check_after`]) | Before [`Pool::acquire`] hands out a connection that sat idle for more than 500 ms, it sends an empty query (waiting at most 5 s, cut to `query_timeout` when set and to what is left of `pool_timeout`). A connection found closed is discarded and the next one tried; one that does not answer in time is discarded and the caller gets [`Error::QueryTimeout`] at once (the server or the path to it is not responding, and a fresh connect would only wait out `connect_timeout` as well). Catches a backend killed or a network path lost while idle, before the caller's first statement meets it; a busy pool never pays the round trip. HikariCP's 500 ms window and 5 s `validationTimeout`. Shared statements are not checked (a dead shared connection fails its statements with [`Error::is_closed`] and is replaced). |
//! | connect backoff | 50 ms doubling to 2 s, jittered | After a connect fails because the server is unreachable (refused, timed out) or cannot take a connection yet (SQLSTATE class 53 such as 53300 "too many connections", 57P03 "starting up", 57P01/57P02 shutting down), this pool's next connect waits 50 ms, then 100 ms, … up to 2 s, each delay drawn from its upper half. When it passes, one caller probes; others park until the delay ends, or fail at once with a copy of the last connect error if it ends after their own deadline. A caller refused with 57P03 or class 53 retries within its `pool_timeout`; one whose connect was refused or timed out fails at once. A success resets it; a login the server rejects (wrong password, missing database) neither arms nor waits for it, since the server is up. So a restarting server sees about one attempt per pool per delay instead of one per caller, and a recovered server is used within 2 s. |
//! | lifetime checks | when touched | There is no background thread: expiry, idleness and broken connections are checked whenever the pool is used (an acquire, a shared statement, a connection handed back). **An untouched pool closes nothing.** |
//!
//! [`Pool::stats`] counts what these did: connections expired and idled
//! out, failed liveness checks, callers held back or refused by the
//! backoff.
//!
//! # How waiting works
//!
//! A task that finds no free connection and no room to open one parks (its
//! coroutine is suspended; the worker thread runs other tasks) in a
//! first-in, first-out queue. A connection handed back goes straight to the
//! task at the front of the queue. Nobody spins or polls.
//!
//! Connections are opened lazily, by the task that needs one, outside every
//! lock, and counted before they are opened: a herd of tasks arriving at an
//! empty pool opens at most `pool_size` connections. If opening fails, that
//! task gets the error ([`Error::Connect`], or [`Error::Db`] for a rejected
//! login) and the next waiter gets the slot to try again, after the connect
//! backoff when the server looked down.
//!
//! A connection that broke (server restart, `pg_terminate_backend`, I/O
//! error) is dropped when the pool next sees it and a fresh one is opened on
//! demand, so a pool heals by itself after the server comes back. The
//! statement that met the broken connection fails with a typed error
//! ([`Error::is_closed`] is true); it is not retried, because it may have run.
//!
//! # Nested acquire
//!
//! A task that holds a [`PooledConnection`] and asks the same pool for
//! another one (or runs a shared statement on it) gets
//! [`Error::NestedAcquire`] at once: with a full pool that request could only
//! wait for the task itself, the classic pool deadlock, and a shared statement
//! would silently run outside the task's transaction. The task is the
//! calling coroutine (tracked in coroutine-local storage, not a thread-local);
//! a connection moved to another coroutine still counts for the one that
//! acquired it until it is dropped.
//! [`Pool::acquire_another`] is the deliberate exception, for a second,
//! independent transaction: it fails at once with [`Error::PoolHeldByTask`]
//! only when the task's own connections fill the pool.
//!
//! # Shared-mode guarantees
//!
//! - Each shared call runs exactly one statement in autocommit mode (an
//!   atomic batch: its statements in one implicit transaction): it is
//!   committed when the call returns `Ok`, and other tasks' statements on the
//!   same connection run before or after it, never inside it.
//! - Statements run in the order the connection received them; a task sees
//!   its own earlier writes (its previous call returned only after the server
//!   answered).
//! - There is no transaction across calls. Two shared calls of one task may
//!   run on different connections. Use [`Pool::acquire`] and a transaction
//!   when several statements must see one snapshot or commit together.
//! - A statement must not change session state. Transaction control
//!   (`BEGIN`, `START TRANSACTION`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, ...),
//!   `COPY`, `LISTEN`/`UNLISTEN`, session `SET`/`RESET`, `PREPARE`/
//!   `DEALLOCATE`, cursors (`DECLARE`, `FETCH`, ...), `DISCARD` and
//!   `CREATE TEMP TABLE` are refused with [`Error::NotShareable`] before
//!   anything is sent; the message names what to use instead. State changed
//!   through a function (`set_config(..., false)`, advisory locks) cannot
//!   be seen from the text and would leak: don't.
//! - Backstop: a shared statement whose answer leaves the connection inside
//!   a transaction fails, the connection is closed, and every statement
//!   pipelined behind it (which ran inside that transaction) fails too —
//!   none of them returns `Ok` for a write that was rolled back.
//! - When an exclusive caller waits, the least busy shared connection stops
//!   taking new statements and goes to it once its statements in flight are
//!   done, so shared traffic cannot starve [`Pool::acquire`] — except the
//!   last one open to shared statements in a pool of more than one
//!   connection, and a connection given back while shared statements are
//!   queued and none is open to them serves those first: a queue of
//!   transactions cannot take every connection away from the shared
//!   statements (an exclusive caller then waits for a transaction's
//!   connection instead).
//! - Shared statements count against the same `pool_size`, wait in their own
//!   first-in, first-out queue when every connection is checked out, and time
//!   out after `pool_timeout` like [`Pool::acquire`].
//! - Shared statements spread over at most `pool_max_shared` connections
//!   at once (default: one per `may` scheduler thread). Below that cap a
//!   shared statement takes an idle connection, or opens one (up to
//!   `pool_size`) when every open one already has a statement in flight; at
//!   the cap it joins the least-loaded connection already carrying shared
//!   statements, so each carries a deep pipeline. A connection reserved for
//!   an exclusive caller, retired or broken frees its place under the cap.
//!
//! [`Error::PoolTimeout`]: crate::Error::PoolTimeout
//! [`Error::Connect`]: crate::Error::Connect
//! [`Error::Db`]: crate::Error::Db
//! [`Error::is_closed`]: crate::Error::is_closed
//! [`Error::NestedAcquire`]: crate::Error::NestedAcquire
//! [`Error::NotShareable`]: crate::Error::NotShareable
//! [`Error::QueryTimeout`]: crate::Error::QueryTimeout
//! [`Error::PoolHeldByTask`]: crate::Error::PoolHeldByTask
//! [`Config`]: crate::Config

mod backoff;
mod connection;
mod connector;
mod jitter;
mod keeper;
mod lifecycle;
mod opening;
mod options;
#[allow(clippy::module_inception)]
mod pool;
mod shared_mode;
mod shared_placement;
mod shared_reads;
mod shared_statement_rules;
mod state;
mod stats;
mod task;
mod waiter;

pub use self::connection::PooledConnection;
pub use self::options::{parse_url, parse_url_with_env, PoolOptions};
pub use self::pool::Pool;
pub use self::shared_reads::SharedReads;
pub use self::stats::PoolStats;
