//! SQL text generation for the query builder and the session: identifiers
//! are always quoted, values are always `$n` parameters.

use std::borrow::Cow;

use postgres_protocol::escape::escape_identifier;
use postgres_types::ToSql;

use super::expr::{Assignment, ColumnRef, Expr, Node, Order};
use crate::error::{MapperError, Result};
use crate::model::{ColumnDef, Table};

mod insert_many;
mod polymorphic;
mod related;

pub(crate) use insert_many::{insert_rows, insert_runs, InsertShape};
pub(crate) use polymorphic::select_by_keys;
pub(crate) use related::select_related_batch;

/// An SQL text with its bound parameters, ready for the driver.
#[derive(Debug, Default)]
pub struct Statement<'a> {
    /// The SQL text with `$1..$n` placeholders.
    pub sql: Cow<'static, str>,
    /// The parameters, in placeholder order.
    pub params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Statement<'a> {
    pub(crate) fn push(&mut self, text: &str) {
        self.sql.to_mut().push_str(text);
    }

    /// `name` quoted as an identifier (a `"` in it doubled), written in
    /// place: the same text as `escape_identifier`, without a `String` per
    /// identifier.
    pub(crate) fn push_ident(&mut self, name: &str) {
        let sql = self.sql.to_mut();
        sql.push('"');
        if name.as_bytes().contains(&b'"') {
            for ch in name.chars() {
                if ch == '"' {
                    sql.push('"');
                }
                sql.push(ch);
            }
        } else {
            sql.push_str(name);
        }
        sql.push('"');
    }

    pub(crate) fn push_column(&mut self, column: ColumnRef) {
        self.push_ident(column.table);
        self.push(".");
        self.push_ident(column.column);
    }

    pub(crate) fn push_param(&mut self, value: &'a (dyn ToSql + Sync)) {
        self.params.push(value);
        let n = self.params.len();
        let sql = self.sql.to_mut();
        sql.push('$');
        push_decimal(sql, n);
    }

    pub(crate) fn push_node(&mut self, node: &'a Node) {
        match node {
            Node::Compare { column, op, value } => {
                self.push_column(*column);
                self.push(" ");
                self.push(op.sql());
                self.push(" ");
                self.push_param(value.as_ref());
            }
            Node::In { column, values } => {
                if values.is_empty() {
                    self.push("FALSE");
                    return;
                }
                self.push_column(*column);
                self.push(" IN (");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.push_param(value.as_ref());
                }
                self.push(")");
            }
            Node::IsNull(column) => {
                self.push_column(*column);
                self.push(" IS NULL");
            }
            Node::And(nodes) | Node::Or(nodes) => {
                let joiner = if matches!(node, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                self.push("(");
                for (i, n) in nodes.iter().enumerate() {
                    if i > 0 {
                        self.push(joiner);
                    }
                    self.push_node(n);
                }
                self.push(")");
            }
            Node::Not(inner) => {
                self.push("NOT (");
                self.push_node(inner);
                self.push(")");
            }
        }
    }

    pub(crate) fn push_where(&mut self, filter: Option<&'a Expr>) {
        if let Some(expr) = filter {
            self.push(" WHERE ");
            self.push_node(&expr.node);
        }
    }

    /// `FROM "leaf" JOIN "parent" ON ...` for a model and its ancestors.
    pub(crate) fn push_from(&mut self, table: &'static Table) {
        self.push(" FROM ");
        self.push_ident(table.name);
        let mut child = table;
        while let Some(parent) = child.parent() {
            self.push(" JOIN ");
            self.push_ident(parent.name);
            self.push(" ON ");
            self.push_column(ColumnRef {
                table: parent.name,
                column: parent.primary_key().name,
            });
            self.push(" = ");
            self.push_column(ColumnRef {
                table: child.name,
                column: child.primary_key().name,
            });
            child = parent;
        }
    }

    fn push_select_list(&mut self, table: &'static Table) {
        let mut first = true;
        for t in table.lineage() {
            for c in t.columns {
                if !first {
                    self.push(", ");
                }
                first = false;
                self.push_column(ColumnRef {
                    table: t.name,
                    column: c.name,
                });
            }
        }
    }
}

/// Appends `n` in decimal (a placeholder's number) without a `String` of
/// its own.
fn push_decimal(sql: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        sql.push(char::from(digit));
    }
}

/// The parts of a query shared by select, count, exists, update and delete.
#[derive(Debug, Default)]
pub struct QueryParts {
    /// The `WHERE` condition.
    pub filter: Option<Expr>,
    /// `ORDER BY` terms.
    pub order: Vec<Order>,
    /// `LIMIT`.
    pub limit: Option<i64>,
    /// `OFFSET`.
    pub offset: Option<i64>,
}

impl QueryParts {
    /// Adds a condition, `AND`-ed with any earlier one.
    pub fn add_filter(&mut self, expr: Expr) {
        self.filter = Some(match self.filter.take() {
            Some(existing) => existing.and(expr),
            None => expr,
        });
    }
}

/// `SELECT <every column of the lineage> FROM ... WHERE ... ORDER BY ...
/// LIMIT ... OFFSET ...`.
pub fn select<'a>(table: &'static Table, parts: &'a QueryParts) -> Statement<'a> {
    let prefix = select_prefix(table);
    let has_tail = parts.filter.is_some()
        || !parts.order.is_empty()
        || parts.limit.is_some()
        || parts.offset.is_some();
    let sql = if has_tail {
        // Room for the prefix and a short tail (`WHERE`, `ORDER BY`,
        // `LIMIT`): one allocation for most queries rather than a copy of
        // the prefix and regrowths.
        let mut sql = String::with_capacity(prefix.len() + 128);
        sql.push_str(prefix);
        Cow::Owned(sql)
    } else {
        Cow::Borrowed(prefix)
    };
    let mut st = Statement {
        sql,
        params: Vec::new(),
    };
    st.push_where(parts.filter.as_ref());
    if !parts.order.is_empty() {
        st.push(" ORDER BY ");
        for (i, order) in parts.order.iter().enumerate() {
            if i > 0 {
                st.push(", ");
            }
            st.push_column(order.column);
            st.push(if order.descending { " DESC" } else { " ASC" });
        }
    }
    if let Some(limit) = &parts.limit {
        st.push(" LIMIT ");
        st.push_param(limit);
    }
    if let Some(offset) = &parts.offset {
        st.push(" OFFSET ");
        st.push_param(offset);
    }
    st
}

/// `SELECT COUNT(*) FROM ... WHERE ...` (limit and offset apply through a
/// subquery when set).
pub fn count<'a>(table: &'static Table, parts: &'a QueryParts) -> Statement<'a> {
    if parts.limit.is_some() || parts.offset.is_some() {
        let inner = select(table, parts);
        return Statement {
            sql: Cow::Owned(format!("SELECT COUNT(*) FROM ({}) AS counted", inner.sql)),
            params: inner.params,
        };
    }
    let mut st = Statement::default();
    st.push("SELECT COUNT(*)");
    st.push_from(table);
    st.push_where(parts.filter.as_ref());
    st
}

/// `SELECT EXISTS (SELECT 1 FROM ... WHERE ...)`.
pub(crate) fn exists<'a>(table: &'static Table, parts: &'a QueryParts) -> Statement<'a> {
    let mut st = Statement::default();
    st.push("SELECT EXISTS (SELECT 1");
    st.push_from(table);
    st.push_where(parts.filter.as_ref());
    st.push(")");
    st
}

/// The row selector for bulk statements on a model with parents:
/// `"table"."key" IN (SELECT "table"."key" FROM <joins> WHERE ...)`.
fn push_key_subquery<'a>(
    st: &mut Statement<'a>,
    own: &'static Table,
    leaf: &'static Table,
    filter: Option<&'a Expr>,
) {
    st.push_column(ColumnRef {
        table: own.name,
        column: own.primary_key().name,
    });
    st.push(" IN (SELECT ");
    st.push_column(ColumnRef {
        table: leaf.name,
        column: leaf.primary_key().name,
    });
    st.push_from(leaf);
    st.push_where(filter);
    st.push(")");
}

/// Bulk `UPDATE ... SET ... WHERE ...`. For a child model whose
/// assignments touch several tables of its lineage, one statement: the
/// matching keys are selected once (`WITH keys AS (...)`), every table is
/// updated by those keys, and the statement returns the number of matching
/// rows. An assignment to a column of another model is an error naming it.
pub fn update<'a>(
    table: &'static Table,
    parts: &'a QueryParts,
    assignments: &'a [Assignment],
) -> Result<Statement<'a>> {
    if assignments.is_empty() {
        return Err(MapperError::NothingToUpdate { table: table.name }.into());
    }
    let lineage = table.lineage();
    for a in assignments {
        let owner = lineage.iter().find(|t| t.name == a.column.table);
        if owner.and_then(|t| t.column(a.column.column)).is_none() {
            return Err(MapperError::ForeignColumn {
                table: a.column.table,
                column: a.column.column,
                model: table.model,
            }
            .into());
        }
    }
    let mut st = Statement::default();
    if table.parent.is_none() {
        push_update_head(&mut st, table, assignments);
        st.push_where(parts.filter.as_ref());
        return Ok(st);
    }
    let leaf_key = escape_identifier(table.primary_key().name);
    st.push("WITH keys AS (SELECT ");
    st.push_column(ColumnRef {
        table: table.name,
        column: table.primary_key().name,
    });
    st.push(&format!(" AS {leaf_key}"));
    st.push_from(table);
    st.push_where(parts.filter.as_ref());
    st.push(")");
    for (i, own) in lineage.iter().copied().enumerate() {
        if !assignments.iter().any(|a| a.column.table == own.name) {
            continue;
        }
        st.push(&format!(", u{i} AS ("));
        push_update_head(&mut st, own, assignments);
        st.push(" WHERE ");
        st.push_ident(own.primary_key().name);
        st.push(&format!(" IN (SELECT {leaf_key} FROM keys) RETURNING 1)"));
    }
    st.push(" SELECT COUNT(*) FROM keys");
    Ok(st)
}

/// `UPDATE "own" SET ...` with the assignments to `own`'s columns.
fn push_update_head<'a>(
    st: &mut Statement<'a>,
    own: &'static Table,
    assignments: &'a [Assignment],
) {
    st.push("UPDATE ");
    st.push_ident(own.name);
    st.push(" SET ");
    let mine = assignments.iter().filter(|a| a.column.table == own.name);
    for (i, a) in mine.enumerate() {
        if i > 0 {
            st.push(", ");
        }
        st.push_ident(a.column.column);
        st.push(" = ");
        match &a.value {
            Some(v) => st.push_param(v.as_ref()),
            None => st.push("NULL"),
        }
    }
}

/// Bulk `DELETE ... WHERE ...`; for a child model the matching rows of the
/// child and of every ancestor are deleted in one statement.
pub fn delete<'a>(table: &'static Table, parts: &'a QueryParts) -> Statement<'a> {
    let mut st = Statement::default();
    if table.parent.is_none() {
        st.push("DELETE FROM ");
        st.push_ident(table.name);
        st.push_where(parts.filter.as_ref());
        return st;
    }
    // WITH d0 AS (DELETE FROM leaf WHERE key IN (...) RETURNING key),
    //      d1 AS (DELETE FROM parent WHERE key IN (SELECT key FROM d0) RETURNING key)
    // SELECT COUNT(*) FROM d0
    let mut lineage = table.lineage();
    lineage.reverse();
    st.push("WITH ");
    for (i, own) in lineage.iter().copied().enumerate() {
        if i > 0 {
            st.push(", ");
        }
        let key = escape_identifier(own.primary_key().name);
        st.push(&format!("d{i} AS (DELETE FROM "));
        st.push_ident(own.name);
        st.push(" WHERE ");
        if i == 0 {
            push_key_subquery(&mut st, own, table, parts.filter.as_ref());
        } else {
            let prev_key = escape_identifier(lineage[i - 1].primary_key().name);
            st.push(&format!("{key} IN (SELECT {prev_key} FROM d{})", i - 1));
        }
        st.push(&format!(" RETURNING {key})"));
    }
    st.push(" SELECT COUNT(*) FROM d0");
    st
}

/// `INSERT ... RETURNING <the columns read back>` for one record's own
/// table; with a key set it is an upsert (`ON CONFLICT (key) DO UPDATE`).
/// `values` are the record's values in column order; a NULL in a column
/// the server fills (identity, default) is left out so the server value is
/// used and read back ([`Table::reads_back`]).
pub fn upsert<'a>(
    table: &'static Table,
    values: &[Option<&'a (dyn ToSql + Sync)>],
) -> Statement<'a> {
    let mut st = Statement::default();
    st.push("INSERT INTO ");
    st.push_ident(table.name);
    let written: Vec<usize> = (0..table.columns.len())
        .filter(|&i| values[i].is_some() || !table.columns[i].server_fills())
        .collect();
    let key = table.primary_key;
    if written.is_empty() {
        st.push(" DEFAULT VALUES");
    } else {
        let names: Vec<String> = written
            .iter()
            .map(|&i| escape_identifier(table.columns[i].name))
            .collect();
        st.push(&format!(" ({}) VALUES (", names.join(", ")));
        for (n, &i) in written.iter().enumerate() {
            if n > 0 {
                st.push(", ");
            }
            match values[i] {
                Some(v) => st.push_param(v),
                None => st.push("NULL"),
            }
        }
        st.push(")");
        if values[key].is_some() {
            push_upsert(&mut st, table, &written);
        }
    }
    push_returning_read_back(&mut st, table);
    st
}

/// ` ON CONFLICT (key) DO UPDATE SET` every `written` column but the key (the
/// key itself when there is none, so the existing row is still returned).
pub(crate) fn push_upsert(st: &mut Statement<'_>, table: &Table, written: &[usize]) {
    let key = table.primary_key;
    let key_name = escape_identifier(table.columns[key].name);
    let mut sets: Vec<String> = written
        .iter()
        .filter(|&&i| i != key)
        .map(|&i| {
            let c = escape_identifier(table.columns[i].name);
            format!("{c} = EXCLUDED.{c}")
        })
        .collect();
    if sets.is_empty() {
        sets.push(format!("{key_name} = EXCLUDED.{key_name}"));
    }
    st.push(&format!(
        " ON CONFLICT ({key_name}) DO UPDATE SET {}",
        sets.join(", ")
    ));
}

/// ` RETURNING` the columns of `table` read back after a write
/// ([`Table::reads_back`]: the key and what the server fills), in column
/// order, as `Record::read_back` reads them.
pub(crate) fn push_returning_read_back(st: &mut Statement<'_>, table: &Table) {
    let returning: Vec<String> = (0..table.columns.len())
        .filter(|&i| table.reads_back(i))
        .map(|i| escape_identifier(table.columns[i].name))
        .collect();
    st.push(&format!(" RETURNING {}", returning.join(", ")));
}

/// `SELECT <every column of the lineage> FROM <joins>`, built once per
/// table.
fn select_prefix(table: &'static Table) -> &'static str {
    table.cache.select.get_or_init(|| {
        let mut st = Statement::default();
        st.push("SELECT ");
        st.push_select_list(table);
        st.push_from(table);
        st.sql.into_owned()
    })
}

/// `SELECT ... WHERE "table"."key" = $1`: one model by primary key (the
/// text is built once per table).
pub(crate) fn get_by_key_sql(table: &'static Table) -> &'static str {
    table.cache.get.get_or_init(|| {
        let mut st = Statement::default();
        st.push(select_prefix(table));
        st.push(" WHERE ");
        st.push_column(ColumnRef {
            table: table.name,
            column: table.primary_key().name,
        });
        st.push(" = $1");
        st.sql.into_owned()
    })
}

/// `DELETE FROM "table" WHERE "key" = $1` for one table of a lineage.
pub(crate) fn delete_by_key<'a>(
    table: &'static Table,
    key: &'a (dyn ToSql + Sync),
) -> Statement<'a> {
    let mut st = Statement::default();
    st.push("DELETE FROM ");
    st.push_ident(table.name);
    st.push(" WHERE ");
    st.push_ident(table.primary_key().name);
    st.push(" = ");
    st.push_param(key);
    st
}

/// `SELECT ... WHERE "owner"."column" = $1 ORDER BY <key>`: the rows of a
/// model whose foreign key `column` (of `owner`, a table of the model's
/// lineage) equals `value`.
pub(crate) fn select_related<'a>(
    table: &'static Table,
    owner: &'static Table,
    column: &ColumnDef,
    value: &'a (dyn ToSql + Sync),
) -> Statement<'a> {
    let mut st = Statement::default();
    st.push("SELECT ");
    st.push_select_list(table);
    st.push_from(table);
    st.push(" WHERE ");
    st.push_column(ColumnRef {
        table: owner.name,
        column: column.name,
    });
    st.push(" = ");
    st.push_param(value);
    st.push(" ORDER BY ");
    st.push_column(ColumnRef {
        table: table.name,
        column: table.primary_key().name,
    });
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_in_place_as_escape_identifier_quotes_them() {
        for name in ["world", "Mixed Case", "a\"b", "\"", "", "naïve\\x"] {
            let mut st = Statement::default();
            st.push_ident(name);
            assert_eq!(st.sql, escape_identifier(name), "{name:?}");
        }
    }

    #[test]
    fn placeholders_are_numbered_in_decimal() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, usize::MAX] {
            let mut sql = String::from("$");
            push_decimal(&mut sql, n);
            assert_eq!(sql, format!("${n}"));
        }
    }
}
