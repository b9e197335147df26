//! The executor of odm's raw driver: a shared [`Client`] with the
//! workloads' statements prepared once. Many green tasks share one
//! `RawExecutor`; their requests are pipelined on its connection.

use std::sync::Arc;

use odm::pg::{Client, Config, Param, Row, Statement};
use odm::Error;

use super::workload::{
    update_params, update_sql, Fortune, Op, Reply, World, ROWS_PER_REQUEST, SELECT_FORTUNES,
    SELECT_WORLD,
};

/// One connection and its prepared statements; `Clone` shares both.
#[derive(Debug, Clone)]
pub struct RawExecutor {
    client: Arc<Client>,
    world: Statement,
    fortunes: Statement,
    update: Statement,
}

/// A world from a `SELECT id, randomnumber` row.
pub fn world_from(row: &Row) -> Result<World, Error> {
    Ok(World {
        id: row.try_get(0)?,
        randomnumber: row.try_get(1)?,
    })
}

/// A fortune from a `SELECT id, message` row.
pub fn fortune_from(row: &Row) -> Result<Fortune, Error> {
    Ok(Fortune {
        id: row.try_get(0)?,
        message: row.try_get(1)?,
    })
}

impl RawExecutor {
    /// Connects (on a coroutine) and prepares the statements.
    pub fn connect(config: &Config) -> Result<RawExecutor, Error> {
        let client = Client::connect(config)?;
        let world = client.prepare(SELECT_WORLD)?;
        let fortunes = client.prepare(SELECT_FORTUNES)?;
        let update = client.prepare(&update_sql(ROWS_PER_REQUEST))?;
        Ok(RawExecutor {
            client: Arc::new(client),
            world,
            fortunes,
            update,
        })
    }

    /// Runs one workload operation.
    pub fn exec(&self, op: Op) -> Result<Reply, Error> {
        match op {
            Op::World(id) => {
                let rows = self
                    .client
                    .read_only()
                    .query_statement(&self.world, &[&id])?;
                Ok(Reply::World(rows.first().map(world_from).transpose()?))
            }
            Op::Update(worlds) => {
                let values = update_params(&worlds);
                let params: Vec<Param<'_>> = values.iter().map(|v| v as Param<'_>).collect();
                let changed = if worlds.len() == ROWS_PER_REQUEST {
                    self.client.execute_statement(&self.update, &params)?
                } else {
                    // Other sizes (the HTTP app's `?queries=N`) go through
                    // the connection's statement cache.
                    self.client.execute(&update_sql(worlds.len()), &params)?
                };
                Ok(Reply::Updated(changed))
            }
            Op::Fortunes => {
                let rows = self
                    .client
                    .read_only()
                    .query_statement(&self.fortunes, &[])?;
                Ok(Reply::Fortunes(
                    rows.iter().map(fortune_from).collect::<Result<_, _>>()?,
                ))
            }
        }
    }
}
