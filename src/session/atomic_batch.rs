//! [`AtomicBatch`]: ORM writes that commit together without a connection
//! of their own — the unit-of-work flush of SQLAlchemy, sent as one
//! request.
//!
//! The writes are queued in memory (`add`, `add_all`, `delete`,
//! `execute`) and [`AtomicBatch::commit`] sends them all at once to a
//! shared, pipelined connection of the bind's pool as one atomic batch of
//! the driver ([`Client::atomic_batch`](crate::pg::Client::atomic_batch)):
//! one `Bind`/`Execute` per statement and one `Sync`, which PostgreSQL runs
//! as one implicit transaction. So the batch costs one round trip, takes no
//! connection exclusively, and is batched on the wire with other tasks'
//! statements, where a [`Mapper::begin`] transaction holds a connection
//! from its first write to its `COMMIT`.

use std::borrow::Cow;
use std::fmt;

use postgres_types::ToSql;

use crate::error::{Error, MapperError, Result};
use crate::mapper::Mapper;
use crate::model::{Model, Record, Table, DEFAULT_BIND};
use crate::query::sql::{self, insert_rows, insert_runs, InsertShape};
use green_postgres::Param;

/// Writes queued to commit together in one round trip on a shared
/// connection; made by [`Mapper::atomic_batch`].
///
/// What it guarantees, exactly:
///
/// * [`AtomicBatch::commit`] returning `Ok` means every queued write is
///   committed, together, in the order queued (durably, under the server's
///   `synchronous_commit`); generated keys and server defaults are then
///   read back into the objects given to `add` / `add_all`, as
///   [`Session::add`](crate::Session::add) does.
/// * `Err` with [`Error::RolledBack`] means nothing of the batch is
///   stored: a statement failed (a constraint violation, ...) or the
///   commit itself did (a deferred constraint, a serialization failure);
///   the cause is the server's error and [`Error::is_retryable`] follows
///   it. The objects are left as they were given, apart from `default_fn`
///   fields filled when queued.
/// * An error found before anything is sent (an invalid choice, a model of
///   an unknown bind or of another bind than the batch's, a child model,
///   raw SQL refused as below, the pool's errors) stores nothing either.
///   A broken connection or a passed `query_timeout` while the batch is
///   out leaves its outcome unknown, as for a `COMMIT`.
/// * It is one transaction on its own, never part of another: other tasks'
///   statements on the shared connection run before or after it, never
///   inside it. Its statements run under the server's default isolation,
///   each seeing the ones before it. A task inside a transaction of its
///   own on the bind gets [`Error::NestedAcquire`] (the batch would not be
///   part of that transaction).
/// * All writes go to one bind (that of the first write). Raw SQL is
///   checked as for [`Pool::execute`](crate::Pool::execute) (transaction
///   control, session `SET`, `LISTEN`, ... are refused with
///   [`Error::NotShareable`]), and statements PostgreSQL refuses inside a
///   transaction block (`VACUUM`, `CREATE DATABASE`, `... CONCURRENTLY`)
///   are refused too.
/// * Nothing is read back until the end, so an object's parent row cannot
///   be written first and its generated key handed down: child models
///   (`#[odm(parent)]`) are refused with
///   [`MapperError::ChildModelInAtomicBatch`]; add them in a
///   [`Mapper::begin`] transaction.
///
/// ```no_run
/// # fn demo(mapper: &odm::Mapper, order: &mut impl odm::Model, lines: &mut [impl odm::Model]) -> odm::Result<()> {
/// let mut batch = mapper.atomic_batch();
/// batch.add(order)?;
/// batch.add_all(lines)?;
/// batch.execute("UPDATE stock SET n = n - 1 WHERE id = $1", &[&7i32])?;
/// let counts = batch.commit()?; // one round trip; every write or none
/// # Ok(()) }
/// ```
pub struct AtomicBatch<'a> {
    mapper: Mapper,
    /// The bind of the first write; every later one must use it too.
    label: Option<&'static str>,
    writes: Vec<Write<'a>>,
}

/// One queued write.
enum Write<'a> {
    /// Upserts of records of one table (one for `add`), read back after
    /// the commit.
    Add(Vec<&'a mut dyn Record>),
    /// Deletes by primary key, the model's own table first.
    Delete {
        lineage: Vec<&'static Table>,
        key: &'a (dyn ToSql + Sync),
    },
    /// Raw SQL.
    Execute {
        sql: &'a str,
        params: Vec<Param<'a>>,
    },
}

impl fmt::Debug for AtomicBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicBatch")
            .field("bind", &self.label)
            .field("writes", &self.writes.len())
            .finish()
    }
}

/// Atomic batches.
impl Mapper {
    /// A new, empty [`AtomicBatch`]: writes queued on it commit together in
    /// one round trip on a shared connection (see its docs for exactly what
    /// that guarantees). No I/O until [`AtomicBatch::commit`].
    pub fn atomic_batch<'a>(&self) -> AtomicBatch<'a> {
        AtomicBatch {
            mapper: self.clone(),
            label: None,
            writes: Vec::new(),
        }
    }
}

impl<'a> AtomicBatch<'a> {
    /// Queues an upsert of `object`, as [`Session::add`](crate::Session::add)
    /// writes it (an insert when its key is `None`); its generated values
    /// are read back into it by [`AtomicBatch::commit`]. `default_fn`
    /// fields are filled now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidChoice`]; [`MapperError::ChildModelInAtomicBatch`];
    /// the bind errors of [`AtomicBatch`].
    pub fn add<M: Model>(&mut self, object: &'a mut M) -> Result<()> {
        self.add_all(std::slice::from_mut(object))
    }

    /// Queues upserts of every object, written as
    /// [`Session::add_all`](crate::Session::add_all) writes them (one
    /// multi-row statement per run of objects writing the same columns).
    /// Two objects with the same key in one run fail the whole batch at the
    /// server.
    ///
    /// # Errors
    ///
    /// As [`AtomicBatch::add`].
    pub fn add_all<M: Model>(&mut self, objects: &'a mut [M]) -> Result<()> {
        let table = M::table();
        if table.parent().is_some() {
            return Err(MapperError::ChildModelInAtomicBatch { model: table.model }.into());
        }
        self.use_bind(table)?;
        for object in objects.iter_mut() {
            object.apply_default_fns();
            object.validate()?;
        }
        if !objects.is_empty() {
            let records = objects.iter_mut().map(|o| o as &mut dyn Record).collect();
            self.writes.push(Write::Add(records));
        }
        Ok(())
    }

    /// Queues a delete of `object`'s row by primary key (and, for a child
    /// model, its ancestors' rows).
    ///
    /// # Errors
    ///
    /// [`MapperError::KeyNotSet`] when the object has no key; the bind
    /// errors of [`AtomicBatch`].
    pub fn delete<M: Model>(&mut self, object: &'a M) -> Result<()> {
        let table = M::table();
        let key = object.key_param().ok_or(MapperError::KeyNotSet {
            model: table.model,
            column: table.primary_key().name,
        })?;
        self.use_bind(table)?;
        let mut lineage = table.lineage();
        lineage.reverse();
        self.writes.push(Write::Delete { lineage, key });
        Ok(())
    }

    /// Queues raw SQL with bound parameters for the default bind.
    ///
    /// # Errors
    ///
    /// [`Error::NotShareable`] for SQL an atomic batch refuses (see
    /// [`AtomicBatch`]); the bind errors.
    pub fn execute(&mut self, sql: &'a str, params: &[Param<'a>]) -> Result<()> {
        green_postgres::seam::check_batch_statement(sql)?;
        self.use_label(DEFAULT_BIND)?;
        self.writes.push(Write::Execute {
            sql,
            params: params.to_vec(),
        });
        Ok(())
    }

    /// How many writes are queued.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether no write is queued.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    fn use_bind(&mut self, table: &'static Table) -> Result<()> {
        self.mapper.engine_for(table)?;
        self.use_label(table.bind_label())
    }

    fn use_label(&mut self, label: &'static str) -> Result<()> {
        match self.label {
            None => {
                self.label = Some(label);
                Ok(())
            }
            Some(first) if first == label => Ok(()),
            Some(first) => Err(MapperError::AtomicBatchAcrossBinds {
                first: first.to_owned(),
                other: label.to_owned(),
            }
            .into()),
        }
    }

    /// Sends every queued write as one atomic batch on a shared connection
    /// of the bind's pool and waits for the answer (one round trip); then
    /// reads generated values back into the added objects. Returns one
    /// count per queued write, in order: rows written by `add` / `add_all`,
    /// rows deleted from the model's own table by `delete`, rows affected by
    /// `execute`. An empty batch sends nothing.
    ///
    /// # Errors
    ///
    /// [`Error::RolledBack`] when nothing was stored (see [`AtomicBatch`]);
    /// the wrong-context error off a green worker; the pool's errors
    /// ([`Error::NestedAcquire`] inside a transaction of this task on the
    /// bind, a pool timeout, ...); a decoding error reading generated
    /// values back, which comes after the commit.
    pub fn commit(mut self) -> Result<Vec<u64>> {
        let Some(label) = self.label else {
            return Ok(Vec::new());
        };
        let engine = self
            .mapper
            .engine(Some(label))
            .ok_or_else(|| MapperError::UnknownBind {
                label: label.to_owned(),
            })?;
        // Per write, the statements it was split into.
        let mut split = Vec::with_capacity(self.writes.len());
        let answers = {
            let mut statements = Vec::new();
            for write in &self.writes {
                let before = statements.len();
                write.statements(&mut statements);
                split.push(statements.len() - before);
            }
            let batch: Vec<(&str, &[Param<'_>])> = statements
                .iter()
                .map(|(sql, params)| (&**sql, params.as_slice()))
                .collect();
            engine.pool().atomic_batch(&batch)?
        };
        let mut answers = answers.into_iter();
        let mut counts = Vec::with_capacity(self.writes.len());
        for (write, statements) in self.writes.iter_mut().zip(split) {
            let mine: Vec<_> = answers.by_ref().take(statements).collect();
            counts.push(match write {
                Write::Add(records) => {
                    let rows = mine.iter().flat_map(|a| &a.rows);
                    let mut read = 0;
                    for (record, row) in records.iter_mut().zip(rows) {
                        record.read_back(row)?;
                        read += 1;
                    }
                    if read != records.len() {
                        return Err(Error::RowCount(read));
                    }
                    read as u64
                }
                Write::Delete { .. } | Write::Execute { .. } => {
                    mine.first().map_or(0, |a| a.rows_affected)
                }
            });
        }
        Ok(counts)
    }
}

impl<'a> Write<'a> {
    /// Appends the statements of this write (SQL and parameters) to `out`.
    fn statements<'s>(&'s self, out: &mut Vec<(Cow<'s, str>, Vec<Param<'s>>)>)
    where
        'a: 's,
    {
        let mut push = |st: sql::Statement<'s>| out.push((st.sql, st.params));
        match self {
            Write::Add(records) if records.len() == 1 => {
                let record = &records[0];
                push(sql::upsert(record.record_table(), &record.values()));
            }
            Write::Add(records) => {
                let table = records[0].record_table();
                let values: Vec<_> = records.iter().map(|r| r.values()).collect();
                for (shape, run) in
                    insert_runs(values.len(), |i| InsertShape::of(table, &values[i]))
                {
                    push(insert_rows(table, &shape, &values[run]));
                }
            }
            Write::Delete { lineage, key } => {
                for table in lineage {
                    push(sql::delete_by_key(table, *key));
                }
            }
            Write::Execute { sql, params } => out.push((Cow::Borrowed(*sql), params.clone())),
        }
    }
}
