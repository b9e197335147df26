//! The executor of odm's pool in shared mode: every operation is one
//! autocommit statement on a pooled connection that other tasks' statements
//! share (pipelined), as [`Pool::query`] documents; the reads go through
//! [`Pool::read_only`], so they may share a `Sync`.

use odm::pg::Param;
use odm::{Error, Pool};

use super::odm_raw::{fortune_from, world_from};
use super::workload::{
    update_params, update_sql, Op, Reply, ROWS_PER_REQUEST, SELECT_FORTUNES, SELECT_WORLD,
};

/// A pool and the benchmark's update statement text; `Clone` shares the pool.
#[derive(Debug, Clone)]
pub struct PoolExecutor {
    pool: Pool,
    update: String,
}

impl PoolExecutor {
    /// An executor over `pool` (no I/O).
    pub fn new(pool: Pool) -> PoolExecutor {
        PoolExecutor {
            pool,
            update: update_sql(ROWS_PER_REQUEST),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs one workload operation as one shared statement.
    pub fn exec(&self, op: Op) -> Result<Reply, Error> {
        match op {
            Op::World(id) => {
                let row = self.pool.read_only().query_opt(SELECT_WORLD, &[&id])?;
                Ok(Reply::World(row.as_ref().map(world_from).transpose()?))
            }
            Op::Update(worlds) => {
                let values = update_params(&worlds);
                let params: Vec<Param<'_>> = values.iter().map(|v| v as Param<'_>).collect();
                let changed = if worlds.len() == ROWS_PER_REQUEST {
                    self.pool.execute(&self.update, &params)?
                } else {
                    self.pool.execute(&update_sql(worlds.len()), &params)?
                };
                Ok(Reply::Updated(changed))
            }
            Op::Fortunes => {
                let rows = self.pool.read_only().query(SELECT_FORTUNES, &[])?;
                Ok(Reply::Fortunes(
                    rows.iter().map(fortune_from).collect::<Result<_, _>>()?,
                ))
            }
        }
    }
}
