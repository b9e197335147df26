//! [`Session::add_all`]: many objects written with multi-row
//! `INSERT ... RETURNING` statements instead of one upsert each.
//!
//! Chosen by measurement against one-by-one [`Session::add`] (see the
//! `add_all` case of the bench): one statement per up to
//! [`MAX_ROWS_PER_INSERT`] objects needs no extra round trip to read back
//! keys and server defaults, which `COPY` cannot return.

use super::Session;
use crate::error::{Error, Result};
use crate::model::{Model, Record};
use crate::query::sql::{insert_rows, insert_runs, InsertShape};

impl Session {
    /// Adds every object as [`Session::add`] would (an insert, or an upsert
    /// when its key is set; `default_fn` fields filled first; a child
    /// model's parent rows first), with one multi-row statement per run of
    /// consecutive objects that write the same columns, up to
    /// 1000 rows and 65535 parameters a statement.
    /// Generated keys and server defaults are read back into each object,
    /// in order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidChoice`] for a code outside a `choices` list (before
    /// anything is written); the server's error (a constraint violation,
    /// or two objects with the same key in one statement); as with
    /// [`Session::add`], the transaction is then aborted.
    pub fn add_all<M: Model>(&mut self, objects: &mut [M]) -> Result<()> {
        let mut records: Vec<&mut dyn Record> =
            objects.iter_mut().map(|o| o as &mut dyn Record).collect();
        self.add_records(&mut records)
    }

    /// Writes `records`, all of one table, parents first.
    fn add_records(&mut self, records: &mut [&mut dyn Record]) -> Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let table = first.record_table();
        {
            let mut parents: Vec<&mut dyn Record> = records
                .iter_mut()
                .filter_map(|r| r.parent_record_mut())
                .collect();
            self.add_records(&mut parents)?;
        }
        for record in records.iter_mut() {
            record.apply_default_fns();
            record.validate()?;
        }
        let runs = insert_runs(records.len(), |i| {
            InsertShape::of(table, &records[i].values())
        });
        for (shape, run) in runs {
            let (start, end) = (run.start, run.end);
            let rows = {
                let values: Vec<_> = records[start..end].iter().map(|r| r.values()).collect();
                let statement = insert_rows(table, &shape, &values);
                self.write(table, |client| {
                    client.query(&statement.sql, &statement.params)
                })?
            };
            if rows.len() != end - start {
                return Err(Error::RowCount(rows.len()));
            }
            for (record, row) in records[start..end].iter_mut().zip(&rows) {
                record.read_back(row)?;
            }
        }
        Ok(())
    }
}
