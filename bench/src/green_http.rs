//! The green HTTP app: TechEmpower's endpoints on `may_minihttp`, with
//! handlers that are plain synchronous odm code (pulsar-odm's `GreenWSGI`
//! app, in Rust).
//!
//! ```text
//! cargo run --release --example green_http                    # throwaway cluster, port 8080
//! PORT=9000 DATABASE_URL=postgresql://u:p@host/db cargo run --release --example green_http
//! cargo run --release --example green_http -- --port 9000 --connections 4 --workers 1024 \
//!     --database-url postgresql://...
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
//! `may_minihttp` runs every HTTP connection on its own `may` coroutine and
//! calls the handler there. Like pulsar's `GreenWSGI`, the handler does not
//! run the request's database code itself: it submits a plain synchronous
//! closure to a [`green::GreenPool`] and waits with
//! [`Submitted::join`](green::Submitted::join), which *parks* the
//! connection's coroutine (it does not block the scheduler thread). The
//! closure runs on a green worker, with the pool's measured stack size,
//! where every database socket wait parks the worker in turn. Two scheduler
//! threads thus serve thousands of HTTP connections and their queries.
//!
//! The closure is plain ORM code: `World` and `Fortune` models
//! (`odm_orm.rs`), an [`odm::Mapper`] whose pool holds
//! `--connections` connections (default two per core), and one
//! [`odm::Session`] per request, as pulsar-odm's app does: `session.get`,
//! `session.query().all()`, and for `/updates` the request's rows written in
//! one batched statement (`session.execute`), sorted by id so that
//! concurrent batches cannot deadlock; then `commit`.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{odm_orm, schema, workload};
use green::GreenPool;
use may_minihttp::{HttpServer, HttpService, Request, Response};
use odm::pg::Client;
use odm::{Error, Mapper, Session};

use workload::{RequestError, Rng};

/// The largest `queries` a request may ask for.
const MAX_QUERIES: usize = 500;

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
    green: GreenPool,
    mapper: Mapper,
}

fn internal(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl Techempower {
    /// A service running its database work on `green` through `mapper`.
    pub fn new(green: GreenPool, mapper: Mapper) -> Techempower {
        Techempower { green, mapper }
    }

    fn rng() -> Rng {
        use std::time::{SystemTime, UNIX_EPOCH};
        static SEED: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        Rng::new(nanos ^ ((SEED.fetch_add(1, Ordering::Relaxed) as u64) << 32))
    }

    /// Runs `work` in a new session on a green worker (committed if it
    /// succeeds); parks the calling connection coroutine until it is done.
    fn on_green<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Rng, &mut Session) -> Result<T, RequestError<Error>> + Send + 'static,
    ) -> io::Result<T> {
        let mapper = self.mapper.clone();
        self.green
            .run(move || {
                odm_orm::in_session(&mapper, |session| work(&mut Techempower::rng(), session))
            })
            .map_err(internal)?
            .map_err(internal)
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
                    self.on_green(|rng, s| workload::db(rng, &mut |op| odm_orm::exec(s, op)))?;
                rsp.header("Content-Type: application/json");
                rsp.body_vec(world.to_json().into_bytes());
            }
            "/queries" => {
                let n = queries_param(path);
                let worlds = self.on_green(move |rng, s| {
                    workload::queries(rng, n, &mut |op| odm_orm::exec(s, op))
                })?;
                rsp.header("Content-Type: application/json");
                rsp.body_vec(json_array(&worlds).into_bytes());
            }
            "/updates" => {
                let n = queries_param(path);
                let worlds = self.on_green(move |rng, s| {
                    workload::updates(rng, n, &mut |op| odm_orm::exec(s, op))
                })?;
                rsp.header("Content-Type: application/json");
                rsp.body_vec(json_array(&worlds).into_bytes());
            }
            "/fortunes" => {
                let fortunes =
                    self.on_green(|_, s| workload::fortunes(&mut |op| odm_orm::exec(s, op)))?;
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

/// Creates the schema when `create_schema` is set or `world` is missing,
/// and starts serving on `addr` with a pool of `connections` connections
/// and a green pool of `workers` workers.
pub fn start(
    addr: &str,
    url: &str,
    connections: usize,
    workers: usize,
    create_schema: bool,
) -> Result<Running, String> {
    let (config, _) = odm::pool::parse_url(url).map_err(|e| e.to_string())?;
    let green = GreenPool::with_max_workers(workers.max(1));
    let setup_config = config.clone();
    crate::on_green(&green, move || {
        let setup = Client::connect(&setup_config)?;
        let exists = setup
            .query_one("SELECT to_regclass('world') IS NOT NULL", &[])?
            .try_get::<_, bool>(0)?;
        if create_schema || !exists {
            schema::create(|sql| setup.batch_execute(sql))?;
        }
        Ok(setup.close()?)
    })?;
    let mapper = odm_orm::mapper(&config, connections).map_err(|e| e.to_string())?;
    let server = HttpServer(Techempower::new(green, mapper))
        .start(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok(Running {
        server,
        addr: addr.to_owned(),
    })
}
