//! The statement of batched eager loading: the children of many owners in
//! one query with one array parameter.

use super::Statement;
use crate::model::{ColumnDef, Table};
use crate::query::{ColumnRef, ValueArray};

/// `SELECT array_position($1, fk), <every column of the lineage> FROM ...
/// WHERE fk = ANY($1) ORDER BY <key>`: the rows of a model whose foreign
/// key `column` (of `owner`, a table of the model's lineage) is one of
/// `keys`, each with the 1-based position of its key in `keys` first. The
/// text does not depend on how many keys there are.
pub(crate) fn select_related_batch<'a>(
    table: &'static Table,
    owner: &'static Table,
    column: &ColumnDef,
    keys: &'a ValueArray<'a>,
) -> Statement<'a> {
    let fk = ColumnRef {
        table: owner.name,
        column: column.name,
    };
    let mut st = Statement::default();
    st.push("SELECT array_position(");
    st.push_param(keys);
    st.push(", ");
    st.push_column(fk);
    st.push("), ");
    st.push_select_list(table);
    st.push_from(table);
    st.push(" WHERE ");
    st.push_column(fk);
    st.push(" = ANY($1) ORDER BY ");
    st.push_column(ColumnRef {
        table: table.name,
        column: table.primary_key().name,
    });
    st
}
