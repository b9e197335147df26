//! The SQL of polymorphic loading ([`Polymorphic`](crate::Polymorphic)):
//! the rows of one kind whose keys are among a base query's.

use postgres_types::ToSql;

use super::Statement;
use crate::model::Table;
use crate::query::ColumnRef;

/// `SELECT <every column of the lineage> FROM <joins> WHERE
/// "table"."key" = ANY($1)`: the rows of `table` whose key is in `keys`
/// (one array parameter, so one statement text whatever the count).
pub(crate) fn select_by_keys<'a>(
    table: &'static Table,
    keys: &'a (dyn ToSql + Sync),
) -> Statement<'a> {
    let mut st = Statement::default();
    st.push("SELECT ");
    st.push_select_list(table);
    st.push_from(table);
    st.push(" WHERE ");
    st.push_column(ColumnRef {
        table: table.name,
        column: table.primary_key().name,
    });
    st.push(" = ANY(");
    st.push_param(keys);
    st.push(")");
    st
}
