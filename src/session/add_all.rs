//! [`Session::add_all`]: many objects written with multi-row
//! `INSERT ... RETURNING` statements instead of one upsert each.
//!
//! Chosen by measurement against one-by-one [`Session::add`] (see the
//! `add_all` case of the bench): one statement per up to
//! `MAX_ROWS_PER_INSERT` objects needs no extra round trip to read back
//! keys and server defaults, which `COPY` cannot return.

use super::Session;
use crate::error::{Error, Result};
use crate::model::{Model, Record};
use crate::query::sql::{insert_rows, insert_runs, InsertShape};

impl Session {
    pub(super) fn add_all_objects<M: Model>(&mut self, objects: &mut [M]) -> Result<()> {
        let mut records: Vec<&mut dyn Record> =
            objects.iter_mut().map(|o| o as &mut dyn Record).collect();
        self.add_records(&mut records, true)
    }

    /// Writes `records`, all of one table, parents first; `last`: the
    /// statement of its last run is the operation's last.
    fn add_records(&mut self, records: &mut [&mut dyn Record], last: bool) -> Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let table = first.record_table();
        {
            let mut parents: Vec<&mut dyn Record> = records
                .iter_mut()
                .filter_map(|r| r.parent_record_mut())
                .collect();
            self.add_records(&mut parents, false)?;
        }
        for record in records.iter_mut() {
            record.apply_default_fns();
            record.validate()?;
        }
        let runs = insert_runs(records.len(), |i| {
            InsertShape::of(table, &records[i].values())
        });
        let count = runs.len();
        for (i, (shape, run)) in runs.into_iter().enumerate() {
            let (start, end) = (run.start, run.end);
            let rows = {
                let values: Vec<_> = records[start..end].iter().map(|r| r.values()).collect();
                let statement = insert_rows(table, &shape, &values);
                self.write_ending(
                    table,
                    |client| client.query(&statement.sql, &statement.params),
                    last && i + 1 == count,
                )?
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
