//! The executor of odm's ORM, through the public API the README shows:
//! `World` and `Fortune` models, a [`Mapper`], and one [`Session`] per
//! request (as pulsar-odm's TechEmpower app does): `get` by primary key,
//! `query().all()`, and the update of a request's worlds written back
//! through the ORM, [`Session::add_all`] (one multi-row upsert;
//! TechEmpower allows batching the updates of a request).
//! [`request`] runs each request as its [`OrmMode`] says: in a transaction
//! (`odm-orm`), in a transaction whose write carries the `COMMIT` behind it
//! (`odm-orm-commit-with`, [`Session::commit_behind_next_write`]), in an
//! autocommit session (`odm-orm-autocommit`), or with reads on the shared
//! path and the write as an atomic batch (`odm-orm-batch`,
//! [`Mapper::atomic_batch`]).

use odm::{Error, Mapper, Session};

use super::workload::{self, Op, Reply, RequestError, Rng, Workload};

/// How a request's statements run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrmMode {
    /// A session per request, in a transaction: reads before the first
    /// write on shared connections, the write and `COMMIT` on a connection
    /// of its own (`odm-orm`).
    Transaction,
    /// An autocommit session per request: every statement on shared
    /// connections, each committing on its own (`odm-orm-autocommit`).
    Autocommit,
    /// An autocommit session for the reads, the write as one atomic batch
    /// on a shared connection (`odm-orm-batch`).
    AtomicBatch,
    /// As [`OrmMode::Transaction`], with the `COMMIT` sent behind the write
    /// ([`Session::commit_behind_next_write`]): the write and the commit in
    /// one round trip (`odm-orm-commit-with`).
    CommitWith,
}

impl OrmMode {
    /// The mode of an ORM contender, by its name.
    pub fn of(contender: &str) -> Option<OrmMode> {
        match contender {
            "odm-orm" => Some(OrmMode::Transaction),
            "odm-orm-autocommit" => Some(OrmMode::Autocommit),
            "odm-orm-batch" => Some(OrmMode::AtomicBatch),
            "odm-orm-commit-with" => Some(OrmMode::CommitWith),
            _ => None,
        }
    }
}

/// A row of `world` as an odm model.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "world")]
pub struct World {
    /// Primary key.
    #[odm(primary_key)]
    pub id: i32,
    /// A number in 1..=10,000.
    pub randomnumber: i32,
}

/// A row of `fortune` as an odm model.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(table = "fortune")]
pub struct Fortune {
    /// Primary key.
    #[odm(primary_key)]
    pub id: i32,
    /// The fortune's text.
    #[odm(max_length = 2048)]
    pub message: String,
}

/// A mapper on `config` with a pool of `connections`, both models
/// registered (no I/O).
pub fn mapper(config: &odm::pg::Config, connections: usize) -> Result<Mapper, Error> {
    mapper_capped(config, connections, None)
}

/// [`mapper`] with `pool_max_shared` set (`None`: the pool's default, one
/// per scheduler thread).
pub fn mapper_capped(
    config: &odm::pg::Config,
    connections: usize,
    max_shared: Option<usize>,
) -> Result<Mapper, Error> {
    let mut options = odm::pool::PoolOptions::new().max_size(connections.max(1));
    if let Some(max_shared) = max_shared {
        options = options.max_shared(max_shared);
    }
    let mapper = Mapper::with_options(config.clone(), options)?;
    mapper.register::<World>()?;
    mapper.register::<Fortune>()?;
    Ok(mapper)
}

/// The worlds of an update as models, one per id (the last value given
/// for it), sorted by id so that concurrent upserts lock rows in one order
/// and cannot deadlock.
fn world_models(worlds: &[workload::World]) -> Vec<World> {
    let mut models: Vec<World> = Vec::with_capacity(worlds.len());
    let mut sorted = worlds.to_vec();
    sorted.sort_by_key(|w| w.id);
    for w in sorted {
        match models.last_mut() {
            Some(last) if last.id == w.id => last.randomnumber = w.randomnumber,
            _ => models.push(World {
                id: w.id,
                randomnumber: w.randomnumber,
            }),
        }
    }
    models
}

/// Runs one workload operation inside `session`; an update is written
/// with [`Session::add_all`].
pub fn exec(session: &mut Session, op: Op) -> Result<Reply, Error> {
    exec_in(session, op, OrmMode::Transaction)
}

/// Runs one workload operation inside `session` as `mode` says: with
/// [`OrmMode::AtomicBatch`] an update is written as an atomic batch of the
/// session's mapper instead; with [`OrmMode::CommitWith`] the update (a
/// request's last statement) carries the session's `COMMIT` behind it.
pub fn exec_in(session: &mut Session, op: Op, mode: OrmMode) -> Result<Reply, Error> {
    let batched = mode == OrmMode::AtomicBatch;
    match op {
        Op::World(id) => Ok(Reply::World(session.get::<World>(id)?.map(|w| {
            workload::World {
                id: w.id,
                randomnumber: w.randomnumber,
            }
        }))),
        Op::Update(worlds) => {
            let mut models = world_models(&worlds);
            if batched {
                let mut batch = session.mapper().atomic_batch();
                batch.add_all(&mut models)?;
                let counts = batch.commit()?;
                return Ok(Reply::Updated(counts.iter().sum()));
            }
            if mode == OrmMode::CommitWith {
                session.commit_behind_next_write();
            }
            session.add_all(&mut models)?;
            Ok(Reply::Updated(models.len() as u64))
        }
        Op::Fortunes => Ok(Reply::Fortunes(
            session
                .query::<Fortune>()
                .all()?
                .into_iter()
                .map(|f| workload::Fortune {
                    id: f.id,
                    message: f.message,
                })
                .collect(),
        )),
    }
}

/// Runs `work` in a new session of `mapper`: commits when it succeeds,
/// rolls back (by dropping the session) when it fails.
pub fn in_session<T>(
    mapper: &Mapper,
    work: impl FnOnce(&mut Session) -> Result<T, RequestError<Error>>,
) -> Result<T, RequestError<Error>> {
    let mut session = mapper.session().map_err(RequestError::Executor)?;
    let value = work(&mut session)?;
    session.commit().map_err(RequestError::Executor)?;
    Ok(value)
}

/// Runs `work` in a new autocommit session of `mapper`: each statement
/// commits on its own, on a shared connection.
pub fn in_autocommit_session<T>(
    mapper: &Mapper,
    work: impl FnOnce(&mut Session) -> Result<T, RequestError<Error>>,
) -> Result<T, RequestError<Error>> {
    let mut session = mapper
        .autocommit_session()
        .map_err(RequestError::Executor)?;
    work(&mut session)
}

/// One benchmark request of `workload` in its own session, run as `mode`
/// says; `done` is called after each statement that succeeded.
pub fn request(
    mapper: &Mapper,
    workload: Workload,
    rng: &mut Rng,
    done: &dyn Fn(),
    mode: OrmMode,
) -> Result<u64, RequestError<Error>> {
    let work = |session: &mut Session| {
        workload::request(workload, rng, &mut |op| {
            let reply = exec_in(session, op, mode);
            if reply.is_ok() {
                done();
            }
            reply
        })
    };
    match mode {
        OrmMode::Transaction | OrmMode::CommitWith => in_session(mapper, work),
        OrmMode::Autocommit | OrmMode::AtomicBatch => in_autocommit_session(mapper, work),
    }
}
