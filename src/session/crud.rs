//! The session's object operations (CRUD): [`Session::add`] (an upsert
//! that reads generated values back), [`Session::get`] by primary key,
//! [`Session::delete`], and [`Session::related`], which follows a foreign
//! key found by [`Table::foreign_key_to`] under the session's N+1 policy.

use super::query::decode_each;
use super::Session;
use crate::error::{Error, MapperError, Result};
use crate::model::{Model, Record, Table};
use crate::query::sql;

/// The bodies of [`Session::add`], [`Session::get`], [`Session::delete`]
/// and [`Session::related`], whose docs are in `session.rs`.
impl Session {
    pub(super) fn add_object<M: Model>(&mut self, object: &mut M) -> Result<()> {
        self.add_record(object, true)
    }

    /// Writes `record` (its parents first); `last`: its own statement is
    /// the operation's last.
    fn add_record(&mut self, record: &mut dyn Record, last: bool) -> Result<()> {
        if let Some(parent) = record.parent_record_mut() {
            self.add_record(parent, false)?;
        }
        record.apply_default_fns();
        record.validate()?;
        let table = record.record_table();
        let row = {
            let values = record.values();
            let statement = sql::upsert(table, &values);
            self.write_ending(
                table,
                |client| client.query_one(&statement.sql, &statement.params),
                last,
            )?
        };
        record.read_back(&row)
    }

    pub(super) fn get_object<M: Model>(&mut self, key: impl Into<M::Key>) -> Result<Option<M>> {
        let key: M::Key = key.into();
        let table = M::table();
        let sql = sql::get_by_key_sql(table);
        let row = self.read(table, |client| client.query_opt(sql, &[&key]))?;
        row.map(|r| M::from_row(&r)).transpose()
    }

    pub(super) fn delete_object<M: Model>(&mut self, object: &M) -> Result<bool> {
        let table = M::table();
        let key = object.key_param().ok_or_else(|| {
            Error::from(MapperError::KeyNotSet {
                model: table.model,
                column: table.primary_key().name,
            })
        })?;
        let mut deleted = None;
        let mut lineage = table.lineage();
        lineage.reverse();
        let tables = lineage.len();
        for (i, t) in lineage.into_iter().enumerate() {
            let statement = sql::delete_by_key(t, key);
            let n = self.write_ending(
                t,
                |client| client.execute(&statement.sql, &statement.params),
                i + 1 == tables,
            )?;
            deleted.get_or_insert(n);
        }
        Ok(deleted.unwrap_or(0) > 0)
    }

    pub(super) fn related_objects<M: Model>(&mut self, owner: &dyn Record) -> Result<Vec<M>> {
        let table = M::table();
        // the owner's record chain: its own record, then its ancestors'
        let mut records = vec![owner];
        while let Some(parent) = records[records.len() - 1].parent_record() {
            records.push(parent);
        }
        let targets: Vec<&'static Table> = records.iter().map(|r| r.record_table()).collect();
        let relation = table.foreign_key_to(&targets)?;
        let record = records
            .iter()
            .find(|r| r.record_table().name == relation.target.name)
            .ok_or(MapperError::NoForeignKey {
                model: table.model,
                target: targets[0].name,
            })?;
        let values = record.values();
        let value = values[relation.target_index].ok_or(MapperError::ReferencedValueNotSet {
            table: relation.target.name,
            column: relation.target.columns[relation.target_index].name,
        })?;
        self.related_loads
            .note(table.model, relation.table.name, relation.column.name)?;
        let statement = sql::select_related(table, relation.table, relation.column, value);
        self.read(table, |client| {
            decode_each(client, &statement.sql, &statement.params, M::from_row)
        })?
    }
}
