//! The executor of odm's ORM, through the public API the README shows:
//! `World` and `Fortune` models, a [`Mapper`], and one [`Session`] per
//! request (as pulsar-odm's TechEmpower app does): `get` by primary key,
//! `query().all()`, and the batched update as one raw statement of the
//! session (TechEmpower allows batching the updates of a request).
//! [`request`] runs each request in a transaction ([`Mapper::begin`]'s
//! kind of session) or, for the `odm-orm-autocommit` contender, in an
//! autocommit session ([`Mapper::autocommit`]), whose writes run on shared
//! connections like its reads.

use odm::pg::Param;
use odm::{Error, Mapper, Session};

use super::workload::{self, update_params, update_sql, Op, Reply, RequestError, Rng, Workload};

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
    let options = odm::pool::PoolOptions::new().max_size(connections.max(1));
    let mapper = Mapper::with_options(config.clone(), options)?;
    mapper.register::<World>()?;
    mapper.register::<Fortune>()?;
    Ok(mapper)
}

/// Runs one workload operation inside `session`.
pub fn exec(session: &mut Session, op: Op) -> Result<Reply, Error> {
    match op {
        Op::World(id) => Ok(Reply::World(session.get::<World>(id)?.map(|w| {
            workload::World {
                id: w.id,
                randomnumber: w.randomnumber,
            }
        }))),
        Op::Update(worlds) => {
            let values = update_params(&worlds);
            let params: Vec<Param<'_>> = values.iter().map(|v| v as Param<'_>).collect();
            Ok(Reply::Updated(
                session.execute(&update_sql(worlds.len()), &params)?,
            ))
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

/// One benchmark request of `workload` in its own session (an autocommit
/// one when `autocommit`); `done` is called after each statement that
/// succeeded.
pub fn request(
    mapper: &Mapper,
    workload: Workload,
    rng: &mut Rng,
    done: &dyn Fn(),
    autocommit: bool,
) -> Result<u64, RequestError<Error>> {
    let work = |session: &mut Session| {
        workload::request(workload, rng, &mut |op| {
            let reply = exec(session, op);
            if reply.is_ok() {
                done();
            }
            reply
        })
    };
    if autocommit {
        in_autocommit_session(mapper, work)
    } else {
        in_session(mapper, work)
    }
}
