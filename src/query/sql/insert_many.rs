//! Multi-row `INSERT ... VALUES (...), (...) RETURNING` for
//! [`Session::add_all`](crate::Session::add_all): records of one table that
//! write the same columns share one statement, up to the protocol's limit
//! of 65535 parameters and [`MAX_ROWS_PER_INSERT`] rows.

use std::ops::Range;

use postgres_protocol::escape::escape_identifier;
use postgres_types::ToSql;

use super::Statement;
use crate::model::Table;

/// The most rows one multi-row insert carries (fewer when the rows have so
/// many columns that 65535 parameters run out first). Measured with
/// `cargo run --release --example bench -- --bulk --no-matrix`: past a few hundred
/// rows a statement, larger statements gain nothing.
pub(crate) const MAX_ROWS_PER_INSERT: usize = 1000;

/// The most parameters one statement may bind (the protocol counts them in
/// 16 bits).
const MAX_PARAMS: usize = 65535;

/// What one record's insert writes: the columns listed and whether it is an
/// upsert. Records of equal shape can share one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InsertShape {
    /// The positions of the columns listed in the statement.
    written: Vec<usize>,
    /// Whether the key is set, so the row may exist already
    /// (`ON CONFLICT (key) DO UPDATE` the written columns).
    upsert: bool,
}

impl InsertShape {
    /// The shape of a record with `values` (its own columns, in order).
    /// Without a key every column is listed: a `None` the server fills
    /// becomes `DEFAULT`, so such records share one shape whatever is
    /// unset. With a key, a `None` the server fills is left out, as in
    /// [`upsert`](super::upsert), so that an existing row keeps its value.
    pub(crate) fn of(table: &'static Table, values: &[Option<&(dyn ToSql + Sync)>]) -> InsertShape {
        let upsert = values[table.primary_key].is_some();
        let written = (0..table.columns.len())
            .filter(|&i| !upsert || values[i].is_some() || !table.columns[i].server_fills())
            .collect();
        InsertShape { written, upsert }
    }

    /// How many records of this shape one statement takes.
    pub(crate) fn rows_per_statement(&self) -> usize {
        (MAX_PARAMS / self.written.len().max(1)).clamp(1, MAX_ROWS_PER_INSERT)
    }
}

/// Splits `count` records into runs that can each be one statement: the
/// longest runs of consecutive records of the same shape (`shape_of(i)` is
/// record `i`'s), each at most [`InsertShape::rows_per_statement`] long,
/// in order.
pub(crate) fn insert_runs(
    count: usize,
    shape_of: impl Fn(usize) -> InsertShape,
) -> Vec<(InsertShape, Range<usize>)> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < count {
        let shape = shape_of(start);
        let limit = shape.rows_per_statement();
        let mut end = start + 1;
        while end < count && end - start < limit && shape_of(end) == shape {
            end += 1;
        }
        runs.push((shape, start..end));
        start = end;
    }
    runs
}

/// `INSERT INTO "table" (...) VALUES (...), (...) [ON CONFLICT ...]
/// RETURNING <own columns>` for `rows` (each a record's values in column
/// order) of one `shape`; the server returns the rows in `VALUES` order.
pub(crate) fn insert_rows<'a>(
    table: &'static Table,
    shape: &InsertShape,
    rows: &[Vec<Option<&'a (dyn ToSql + Sync)>>],
) -> Statement<'a> {
    let mut st = Statement::default();
    st.push("INSERT INTO ");
    st.push_ident(table.name);
    let names: Vec<String> = shape
        .written
        .iter()
        .map(|&i| escape_identifier(table.columns[i].name))
        .collect();
    st.push(&format!(" ({}) VALUES ", names.join(", ")));
    for (r, values) in rows.iter().enumerate() {
        st.push(if r == 0 { "(" } else { ", (" });
        for (n, &i) in shape.written.iter().enumerate() {
            if n > 0 {
                st.push(", ");
            }
            match values[i] {
                Some(v) => st.push_param(v),
                None if table.columns[i].server_fills() => st.push("DEFAULT"),
                None => st.push("NULL"),
            }
        }
        st.push(")");
    }
    if shape.upsert {
        super::push_upsert(&mut st, table, &shape.written);
    }
    super::push_returning_read_back(&mut st, table);
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::derived_table::SqlCache;
    use crate::model::ColumnDef;

    const fn column(
        name: &'static str,
        primary_key: bool,
        default: Option<&'static str>,
    ) -> ColumnDef {
        ColumnDef {
            field: name,
            name,
            sql_type: "INTEGER",
            nullable: true,
            primary_key,
            identity: primary_key,
            default,
            unique: false,
            index: false,
            foreign_key: None,
            choices: None,
        }
    }

    static ITEM: Table = Table {
        model: "Item",
        name: "item",
        columns: &[
            column("id", true, None),
            column("name", false, None),
            column("stock", false, Some("0")),
        ],
        primary_key: 0,
        bind: None,
        create_sql: None,
        drop_sql: None,
        parent: None,
        cache: SqlCache::new(),
    };

    #[test]
    fn new_rows_share_one_statement_with_default_for_unset_server_values() {
        let (a, b, five) = ("a".to_owned(), "b".to_owned(), 5i32);
        let first = vec![None, Some(&a as &(dyn ToSql + Sync)), None];
        let second = vec![None, Some(&b as &(dyn ToSql + Sync)), Some(&five as _)];
        let shape = InsertShape::of(&ITEM, &first);
        assert_eq!(shape, InsertShape::of(&ITEM, &second));
        let st = insert_rows(&ITEM, &shape, &[first, second]);
        assert_eq!(
            st.sql,
            "INSERT INTO \"item\" (\"id\", \"name\", \"stock\") VALUES (DEFAULT, $1, DEFAULT), \
             (DEFAULT, $2, $3) RETURNING \"id\", \"stock\""
        );
        assert_eq!(st.params.len(), 3);
    }

    #[test]
    fn rows_with_a_key_are_upserts_that_leave_unset_server_values_alone() {
        let (id, name) = (7i32, "a".to_owned());
        let row = vec![Some(&id as &(dyn ToSql + Sync)), Some(&name as _), None];
        let shape = InsertShape::of(&ITEM, &row);
        let st = insert_rows(&ITEM, &shape, &[row]);
        assert_eq!(
            st.sql,
            "INSERT INTO \"item\" (\"id\", \"name\") VALUES ($1, $2) ON CONFLICT (\"id\") \
             DO UPDATE SET \"name\" = EXCLUDED.\"name\" RETURNING \"id\", \"stock\""
        );
    }

    #[test]
    fn runs_break_at_a_change_of_shape_and_at_the_statement_limit() {
        let narrow = InsertShape {
            written: vec![0],
            upsert: false,
        };
        let wide = InsertShape {
            written: vec![0, 1],
            upsert: true,
        };
        let limit = narrow.rows_per_statement();
        let count = limit + 3;
        // narrow for all but record 1, which is wide
        let runs = insert_runs(
            count,
            |i| if i == 1 { wide.clone() } else { narrow.clone() },
        );
        let ranges: Vec<_> = runs.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(ranges, vec![0..1, 1..2, 2..2 + limit, 2 + limit..count]);
        assert_eq!(runs[1].0, wide);
        assert!(insert_runs(0, |_| narrow.clone()).is_empty());
    }

    #[test]
    fn a_statement_never_binds_more_than_65535_parameters() {
        let shape = InsertShape {
            written: (0..100).collect(),
            upsert: false,
        };
        assert_eq!(shape.rows_per_statement(), 655);
        let narrow = InsertShape {
            written: vec![0],
            upsert: false,
        };
        assert_eq!(narrow.rows_per_statement(), MAX_ROWS_PER_INSERT);
    }
}
