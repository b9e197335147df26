//! TechEmpower's database workloads (`db`, `queries`, `updates`,
//! `fortunes`), written once over an "executor": a closure that runs one
//! [`Op`] against some database client and answers with a [`Reply`].
//!
//! Every contender of the benchmark (odm's driver, odm's ORM, the peers) and
//! the green HTTP app run the very same request logic; only the executor
//! differs. Synchronous executors use [`request`] and the per-workload
//! functions; async ones (tokio-postgres) use [`request_async`].
//!
//! Requests are checked (the world asked for is the world returned, the
//! fortune table has its 12 rows), so a contender cannot win by answering
//! wrongly: a wrong answer is an error.

use std::fmt;
use std::future::Future;

/// Rows in `world`.
pub const WORLD_ROWS: i32 = 10_000;
/// Rows in `fortune` before the one added at request time.
pub const FORTUNE_ROWS: usize = 12;
/// Rows read (and written) per `queries` / `updates` request in the benchmark.
pub const ROWS_PER_REQUEST: usize = 20;

/// One world by primary key.
pub const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
/// All fortunes.
pub const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
/// The message of the fortune every `fortunes` request adds in memory.
pub const EXTRA_FORTUNE: &str = "Additional fortune added at request time.";

/// The batched update of `n` worlds: one statement with `2 n` parameters
/// (`id`, `randomnumber` pairs), as TechEmpower allows for `updates`.
///
/// Callers pass the pairs sorted by id ([`update_params`] does), so
/// concurrent batches lock rows in one order and cannot deadlock.
pub fn update_sql(n: usize) -> String {
    let mut sql = String::from("UPDATE world SET randomnumber = v.r FROM (VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}::int, ${}::int)", 2 * i + 1, 2 * i + 2));
    }
    sql.push_str(") AS v (id, r) WHERE world.id = v.id");
    sql
}

/// The parameters of [`update_sql`] for these worlds: `id, randomnumber`
/// pairs, sorted by id.
pub fn update_params(worlds: &[World]) -> Vec<i32> {
    let mut sorted: Vec<World> = worlds.to_vec();
    sorted.sort_by_key(|w| w.id);
    sorted.iter().flat_map(|w| [w.id, w.randomnumber]).collect()
}

/// A TechEmpower workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// One random world by primary key.
    Db,
    /// [`ROWS_PER_REQUEST`] random worlds, one query each.
    Queries,
    /// [`ROWS_PER_REQUEST`] random worlds read, then written back with new
    /// random numbers in one batched statement.
    Updates,
    /// All fortunes plus one added in memory, sorted by message.
    Fortunes,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 4] = [
        Workload::Db,
        Workload::Queries,
        Workload::Updates,
        Workload::Fortunes,
    ];

    /// The workload's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Db => "db",
            Workload::Queries => "queries",
            Workload::Updates => "updates",
            Workload::Fortunes => "fortunes",
        }
    }

    /// Statements one request runs (reads, plus one batched write for
    /// `updates`). Throughput is reported in these.
    pub fn queries_per_request(self) -> u64 {
        match self {
            Workload::Db | Workload::Fortunes => 1,
            Workload::Queries => ROWS_PER_REQUEST as u64,
            Workload::Updates => ROWS_PER_REQUEST as u64 + 1,
        }
    }

    /// Parses a comma-separated list of workload names (`all` for every one).
    pub fn parse_list(list: &str) -> Result<Vec<Workload>, String> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                out.extend(Workload::ALL);
                continue;
            }
            let workload = Workload::ALL
                .into_iter()
                .find(|w| w.name() == name)
                .ok_or_else(|| {
                    format!("unknown workload `{name}` (expected db, queries, updates, fortunes)")
                })?;
            out.push(workload);
        }
        out.dedup();
        if out.is_empty() {
            return Err("no workload given".into());
        }
        Ok(out)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A row of `world`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct World {
    /// Primary key, 1..=[`WORLD_ROWS`].
    pub id: i32,
    /// A number in 1..=10,000.
    pub randomnumber: i32,
}

impl World {
    /// TechEmpower's JSON for a world: `{"id":1,"randomNumber":42}`.
    pub fn to_json(self) -> String {
        format!(
            r#"{{"id":{},"randomNumber":{}}}"#,
            self.id, self.randomnumber
        )
    }
}

/// A row of `fortune`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fortune {
    /// Primary key.
    pub id: i32,
    /// The fortune's text (unescaped).
    pub message: String,
}

/// What an executor is asked to do.
#[derive(Debug, Clone)]
pub enum Op {
    /// Read the world with this id ([`SELECT_WORLD`]).
    World(i32),
    /// Write these worlds' random numbers in one statement ([`update_sql`]).
    Update(Vec<World>),
    /// Read every fortune ([`SELECT_FORTUNES`]).
    Fortunes,
}

/// What an executor answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The world read (`None`: no such row).
    World(Option<World>),
    /// Rows the update changed.
    Updated(u64),
    /// The fortunes read, in any order.
    Fortunes(Vec<Fortune>),
}

/// Why a request failed.
#[derive(Debug)]
pub enum RequestError<E> {
    /// The executor failed (a database or connection error).
    Executor(E),
    /// The executor answered, but wrongly (a missing world, a mismatched
    /// reply, a fortune table of the wrong size).
    Wrong(String),
}

impl<E: fmt::Display> fmt::Display for RequestError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Executor(e) => write!(f, "{e}"),
            RequestError::Wrong(message) => write!(f, "wrong answer: {message}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RequestError<E> {}

type Outcome<T, E> = Result<T, RequestError<E>>;

/// A small, fast random number generator (xorshift64*), one per task.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator; different seeds give different sequences.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// A number in 1..=10,000: a world id, or a new random number.
    pub fn world_number(&mut self) -> i32 {
        1 + (self.next_u32() % WORLD_ROWS as u32) as i32
    }
}

fn expect_world<E>(id: i32, reply: Reply) -> Outcome<World, E> {
    match reply {
        Reply::World(Some(world)) if world.id == id => Ok(world),
        Reply::World(Some(world)) => Err(RequestError::Wrong(format!(
            "asked for world {id}, got world {}",
            world.id
        ))),
        Reply::World(None) => Err(RequestError::Wrong(format!("world {id} is missing"))),
        other => Err(RequestError::Wrong(format!(
            "a world read answered {other:?}"
        ))),
    }
}

/// The update must have changed each distinct world once.
fn expect_updated<E>(worlds: &[World], reply: Reply) -> Outcome<(), E> {
    let mut ids: Vec<i32> = worlds.iter().map(|w| w.id).collect();
    ids.sort_unstable();
    ids.dedup();
    match reply {
        Reply::Updated(n) if n == ids.len() as u64 => Ok(()),
        Reply::Updated(n) => Err(RequestError::Wrong(format!(
            "the update changed {n} rows instead of {}",
            ids.len()
        ))),
        other => Err(RequestError::Wrong(format!("an update answered {other:?}"))),
    }
}

/// Renders what a request read, as the HTTP app would (JSON for worlds,
/// HTML for fortunes): the same client work for every contender.
fn render_worlds(worlds: &[World]) -> usize {
    worlds.iter().map(|w| w.to_json().len()).sum()
}

/// Adds the extra fortune and sorts by message, checking the row count.
fn finish_fortunes<E>(reply: Reply) -> Outcome<Vec<Fortune>, E> {
    match reply {
        Reply::Fortunes(mut fortunes) => {
            if fortunes.len() != FORTUNE_ROWS {
                return Err(RequestError::Wrong(format!(
                    "expected {FORTUNE_ROWS} fortunes, got {}",
                    fortunes.len()
                )));
            }
            fortunes.push(Fortune {
                id: 0,
                message: EXTRA_FORTUNE.to_owned(),
            });
            fortunes.sort_by(|a, b| a.message.cmp(&b.message));
            Ok(fortunes)
        }
        other => Err(RequestError::Wrong(format!(
            "a fortune read answered {other:?}"
        ))),
    }
}

/// `db`: one random world.
pub fn db<E>(rng: &mut Rng, exec: &mut impl FnMut(Op) -> Result<Reply, E>) -> Outcome<World, E> {
    let id = rng.world_number();
    expect_world(id, exec(Op::World(id)).map_err(RequestError::Executor)?)
}

/// `queries`: `n` random worlds, one query each.
pub fn queries<E>(
    rng: &mut Rng,
    n: usize,
    exec: &mut impl FnMut(Op) -> Result<Reply, E>,
) -> Outcome<Vec<World>, E> {
    let mut worlds = Vec::with_capacity(n);
    for _ in 0..n {
        worlds.push(db(rng, exec)?);
    }
    Ok(worlds)
}

/// `updates`: `n` random worlds read, given new random numbers, and written
/// back in one batched statement. Returns the worlds as written.
pub fn updates<E>(
    rng: &mut Rng,
    n: usize,
    exec: &mut impl FnMut(Op) -> Result<Reply, E>,
) -> Outcome<Vec<World>, E> {
    let mut worlds = queries(rng, n, exec)?;
    for world in &mut worlds {
        world.randomnumber = rng.world_number();
    }
    let reply = exec(Op::Update(worlds.clone())).map_err(RequestError::Executor)?;
    expect_updated(&worlds, reply)?;
    Ok(worlds)
}

/// `fortunes`: every fortune plus [`EXTRA_FORTUNE`], sorted by message.
pub fn fortunes<E>(exec: &mut impl FnMut(Op) -> Result<Reply, E>) -> Outcome<Vec<Fortune>, E> {
    finish_fortunes(exec(Op::Fortunes).map_err(RequestError::Executor)?)
}

/// Runs one benchmark request of `workload`; returns the statements it ran.
pub fn request<E>(
    workload: Workload,
    rng: &mut Rng,
    exec: &mut impl FnMut(Op) -> Result<Reply, E>,
) -> Outcome<u64, E> {
    let rendered = match workload {
        Workload::Db => render_worlds(&[db(rng, exec)?]),
        Workload::Queries => render_worlds(&queries(rng, ROWS_PER_REQUEST, exec)?),
        Workload::Updates => render_worlds(&updates(rng, ROWS_PER_REQUEST, exec)?),
        Workload::Fortunes => fortunes_html(&fortunes(exec)?).len(),
    };
    if rendered == 0 {
        return Err(RequestError::Wrong("nothing to render".into()));
    }
    Ok(workload.queries_per_request())
}

/// [`request`] for an async executor: the same logic, awaiting each op.
pub async fn request_async<E, F, Fut>(
    workload: Workload,
    rng: &mut Rng,
    mut exec: F,
) -> Outcome<u64, E>
where
    F: FnMut(Op) -> Fut,
    Fut: Future<Output = Result<Reply, E>>,
{
    let reads = match workload {
        Workload::Db => 1,
        Workload::Queries | Workload::Updates => ROWS_PER_REQUEST,
        Workload::Fortunes => 0,
    };
    let mut worlds = Vec::with_capacity(reads);
    for _ in 0..reads {
        let id = rng.world_number();
        let reply = exec(Op::World(id)).await.map_err(RequestError::Executor)?;
        worlds.push(expect_world(id, reply)?);
    }
    let rendered = match workload {
        Workload::Updates => {
            for world in &mut worlds {
                world.randomnumber = rng.world_number();
            }
            let reply = exec(Op::Update(worlds.clone()))
                .await
                .map_err(RequestError::Executor)?;
            expect_updated(&worlds, reply)?;
            render_worlds(&worlds)
        }
        Workload::Fortunes => {
            let reply = exec(Op::Fortunes).await.map_err(RequestError::Executor)?;
            fortunes_html(&finish_fortunes(reply)?).len()
        }
        Workload::Db | Workload::Queries => render_worlds(&worlds),
    };
    if rendered == 0 {
        return Err(RequestError::Wrong("nothing to render".into()));
    }
    Ok(workload.queries_per_request())
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// TechEmpower's fortunes page for these (already sorted) fortunes.
pub fn fortunes_html(fortunes: &[Fortune]) -> String {
    let mut html = String::with_capacity(1200);
    html.push_str(
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>\
         <table><tr><th>id</th><th>message</th></tr>",
    );
    for fortune in fortunes {
        html.push_str("<tr><td>");
        html.push_str(&fortune.id.to_string());
        html.push_str("</td><td>");
        escape_html(&fortune.message, &mut html);
        html.push_str("</td></tr>");
    }
    html.push_str("</table></body></html>");
    html
}
