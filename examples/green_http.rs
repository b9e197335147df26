//! The green HTTP app: TechEmpower's endpoints on `may_minihttp`, with
//! handlers that are plain synchronous odm code (pulsar-odm's `GreenWSGI`
//! app, in Rust).
//!
//! ```text
//! cargo run --release --example green_http                    # throwaway cluster, port 8080
//! PORT=9000 DATABASE_URL=postgresql://u:p@host/db cargo run --release --example green_http
//! cargo run --release --example green_http -- --port 9000 --database-url postgresql://...
//! ```
//!
//! Endpoints: `/json`, `/plaintext`, `/db`, `/queries?queries=N` (N clamped
//! to 1..=500; missing or junk gives 1), `/updates?queries=N`, `/fortunes`
//! (HTML-escaped, with the extra fortune added at request time). Every
//! response carries `Server`, `Date`, `Content-Length` and `Content-Type`.
//! Without `DATABASE_URL` a throwaway cluster is started and `world` /
//! `fortune` are created in a fresh database; with it, they are created
//! only if `world` does not exist yet.
//!
//! # How the database work stays green
//!
//! `may_minihttp` runs every HTTP connection on its own `may` coroutine
//! and calls the handler there. odm's driver refuses to run anywhere but on
//! a coroutine, and there every socket wait parks the coroutine instead of
//! the OS thread: a handler blocked on PostgreSQL costs a parked coroutine,
//! and the two scheduler threads keep serving other connections. The
//! handler's database code is the same synchronous code a user writes in a
//! green pool task. The connection coroutines get a 128 KiB stack (set once
//! through `may::config()` before the server starts), enough for the
//! driver's deepest path.
//!
//! All connections share a few pipelined odm [`Client`](odm::pg::Client)s
//! (two per core by default, `--connections N`): single statements of
//! concurrent handlers are written together and answered in order, so a
//! handful of server connections serves any number of HTTP connections.

#[allow(dead_code)]
#[path = "bench/odm_raw.rs"]
mod odm_raw;
#[allow(dead_code)]
#[path = "bench/schema.rs"]
mod schema;
#[allow(dead_code)]
#[path = "bench/workload.rs"]
mod workload;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use may_minihttp::{HttpServer, HttpService, Request, Response};
use odm::pg::Config;
use odm::Error;

use odm_raw::RawExecutor;
use workload::{Op, Reply, Rng};

/// Coroutine stack of the HTTP connections, in machine words (128 KiB).
const CONNECTION_STACK_WORDS: usize = 16 * 1024;
/// The largest `queries` a request may ask for.
const MAX_QUERIES: usize = 500;

/// The database side of the app: shared pipelined connections.
#[derive(Debug)]
pub struct Database {
    executors: Vec<RawExecutor>,
    next: AtomicUsize,
}

impl Database {
    /// Opens `connections` connections to `url`; must run on a coroutine.
    pub fn connect(url: &str, connections: usize) -> Result<Database, Error> {
        let config = Config::parse(url)?;
        let executors = (0..connections.max(1))
            .map(|_| RawExecutor::connect(&config))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Database {
            executors,
            next: AtomicUsize::new(0),
        })
    }

    /// The next connection, round robin.
    fn executor(&self) -> &RawExecutor {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.executors[i % self.executors.len()]
    }

    fn exec(&self) -> impl FnMut(Op) -> Result<Reply, Error> + '_ {
        let executor = self.executor();
        move |op| executor.exec(op)
    }
}

/// The `queries` parameter of a query string: clamped to 1..=500, and 1
/// when missing or not a number.
pub fn queries_param(path: &str) -> usize {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("queries="))
        .unwrap_or("");
    match value.parse::<i64>() {
        Ok(n) => n.clamp(1, MAX_QUERIES as i64) as usize,
        Err(_) => 1,
    }
}

fn json_array(worlds: &[workload::World]) -> String {
    let mut out = String::with_capacity(worlds.len() * 32 + 2);
    out.push('[');
    for (i, world) in worlds.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&world.to_json());
    }
    out.push(']');
    out
}

/// The service: one clone per HTTP connection.
#[derive(Debug, Clone)]
pub struct Techempower {
    db: Arc<Database>,
}

fn internal(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl Techempower {
    /// A service over this database.
    pub fn new(db: Arc<Database>) -> Techempower {
        Techempower { db }
    }

    fn rng() -> Rng {
        use std::time::{SystemTime, UNIX_EPOCH};
        static SEED: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        Rng::new(nanos ^ ((SEED.fetch_add(1, Ordering::Relaxed) as u64) << 32))
    }
}

impl HttpService for Techempower {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        let path = req.path();
        let route = path.split_once('?').map_or(path, |(route, _)| route);
        match route {
            "/json" => {
                rsp.header("Content-Type: application/json");
                rsp.body(r#"{"message":"Hello, World!"}"#);
            }
            "/plaintext" => {
                rsp.header("Content-Type: text/plain");
                rsp.body("Hello, World!");
            }
            "/db" => {
                let world =
                    workload::db(&mut Techempower::rng(), &mut self.db.exec()).map_err(internal)?;
                rsp.header("Content-Type: application/json");
                rsp.body_vec(world.to_json().into_bytes());
            }
            "/queries" => {
                let n = queries_param(path);
                let worlds = workload::queries(&mut Techempower::rng(), n, &mut self.db.exec())
                    .map_err(internal)?;
                rsp.header("Content-Type: application/json");
                rsp.body_vec(json_array(&worlds).into_bytes());
            }
            "/updates" => {
                let n = queries_param(path);
                let worlds = workload::updates(&mut Techempower::rng(), n, &mut self.db.exec())
                    .map_err(internal)?;
                rsp.header("Content-Type: application/json");
                rsp.body_vec(json_array(&worlds).into_bytes());
            }
            "/fortunes" => {
                let fortunes = workload::fortunes(&mut self.db.exec()).map_err(internal)?;
                rsp.header("Content-Type: text/html; charset=utf-8");
                rsp.body_vec(workload::fortunes_html(&fortunes).into_bytes());
            }
            _ => {
                rsp.status_code(404, "Not Found");
                rsp.header("Content-Type: text/plain");
                rsp.body("not found");
            }
        }
        Ok(())
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The accept loop's coroutine.
    pub server: may::coroutine::JoinHandle<()>,
    /// Where it listens.
    pub addr: String,
}

/// Runs `f` on a fresh coroutine and waits for it from this thread.
pub fn on_coroutine<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, String> {
    let builder = may::coroutine::Builder::new().stack_size(CONNECTION_STACK_WORDS);
    // SAFETY: the closure keeps no thread-local references across a park.
    // The trailing yield dodges may's Park-drop livelock (green/src/pool.rs).
    let handle = unsafe {
        builder.spawn(move || {
            let result = f();
            may::coroutine::yield_now();
            result
        })
    }
    .map_err(|e| format!("cannot spawn: {e}"))?;
    handle
        .join()
        .map_err(|_| "the setup coroutine panicked".to_string())?
        .map_err(|e| e.to_string())
}

/// Connects to `url`, creates the schema when `create_schema` is set or
/// `world` is missing, and starts serving on `addr`.
pub fn start(
    addr: &str,
    url: &str,
    connections: usize,
    create_schema: bool,
) -> Result<Running, String> {
    may::config().set_stack_size(CONNECTION_STACK_WORDS);
    let owned = url.to_owned();
    let db = on_coroutine(move || {
        let setup = odm::pg::Client::connect(&Config::parse(&owned)?)?;
        let exists = setup
            .query_one("SELECT to_regclass('world') IS NOT NULL", &[])?
            .try_get::<_, bool>(0)?;
        if create_schema || !exists {
            schema::create(|sql| setup.batch_execute(sql))?;
        }
        setup.close()?;
        Database::connect(&owned, connections)
    })?;
    let server = HttpServer(Techempower::new(Arc::new(db)))
        .start(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok(Running {
        server,
        addr: addr.to_owned(),
    })
}

fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = arg_value(&args, "--port")
        .or_else(|| std::env::var("PORT").ok())
        .unwrap_or_else(|| "8080".into());
    let port: u16 = match port.parse() {
        Ok(p) => p,
        Err(_) => {
            eprintln!("green_http: invalid port `{port}`");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let connections = match arg_value(&args, "--connections").map(|c| c.parse::<usize>()) {
        None => 2 * cores,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("green_http: --connections needs a positive integer");
            std::process::exit(2);
        }
    };
    let given = arg_value(&args, "--database-url")
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| !u.trim().is_empty());
    // Keep the throwaway database alive for as long as the server runs.
    let (url, database) = match given {
        Some(url) => (url, None),
        None => {
            eprintln!("green_http: no DATABASE_URL, starting a throwaway cluster...");
            match odm::testing::test_database() {
                Ok(db) => (db.url(), Some(db)),
                Err(e) => {
                    eprintln!("green_http: {e}");
                    std::process::exit(1);
                }
            }
        }
    };
    let fresh = database.is_some();
    match start(&format!("0.0.0.0:{port}"), &url, connections, fresh) {
        Ok(running) => {
            eprintln!(
                "green_http: listening on http://{} ({connections} database connections)",
                running.addr
            );
            let _ = running.server.join();
        }
        Err(e) => {
            eprintln!("green_http: {e}");
            std::process::exit(1);
        }
    }
}
