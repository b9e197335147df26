//! [`Join`]: how a model joins a report query — along the one declared
//! foreign key between its tables and the query's, in either direction —
//! and its `JOIN` clause.

use super::expr::ColumnRef;
use super::sql::Statement;
use crate::error::QueryError;
use crate::model::Table;

/// One joined model: its table (with its parents) and the key equality.
#[derive(Debug)]
pub(crate) struct Join {
    table: &'static Table,
    /// `on.0 = on.1`: the foreign key column and the column it references.
    on: (ColumnRef, ColumnRef),
    /// `LEFT JOIN` rather than `JOIN`.
    left: bool,
}

fn column(table: &'static str, column: &'static str) -> ColumnRef {
    ColumnRef { table, column }
}

impl Join {
    /// The join of `joined` (and its parent tables) to a query over
    /// `tables` (every table in its `FROM`, parents included) whose first
    /// model's table is `root`; a `LEFT JOIN` when `left`.
    ///
    /// # Errors
    ///
    /// [`QueryError`] when a table of `joined` is in the query already, when
    /// it is on another bind, and unless exactly one foreign key links a
    /// table of `joined` with a table of the query.
    pub(crate) fn resolve(
        root: &'static Table,
        tables: &[&'static Table],
        joined: &'static Table,
        left: bool,
    ) -> Result<Join, QueryError> {
        let in_query = |name: &str| tables.iter().any(|t| t.name == name);
        let lineage = joined.lineage();
        if let Some(t) = lineage.iter().find(|t| in_query(t.name)) {
            return Err(QueryError::AlreadyJoined(t.name));
        }
        if joined.bind_label() != root.bind_label() {
            return Err(QueryError::DifferentBind {
                joined: joined.name,
                joined_bind: joined.bind_label(),
                bind: root.bind_label(),
            });
        }
        let mut candidates = Vec::new();
        // a column of the joined model pointing at the query
        for own in &lineage {
            for c in own.columns {
                if let Some(fk) = c.foreign_key.filter(|fk| in_query(fk.table)) {
                    candidates.push((column(own.name, c.name), column(fk.table, fk.column)));
                }
            }
        }
        // a column of the query pointing at the joined model
        for own in tables {
            for c in own.columns {
                if let Some(fk) = c.foreign_key {
                    if lineage.iter().any(|t| t.name == fk.table) {
                        candidates.push((column(own.name, c.name), column(fk.table, fk.column)));
                    }
                }
            }
        }
        match candidates.as_slice() {
            [on] => Ok(Join {
                table: joined,
                on: *on,
                left,
            }),
            [] => {
                let names: Vec<String> = tables.iter().map(|t| format!("`{}`", t.name)).collect();
                Err(QueryError::NoForeignKey {
                    joined: joined.name,
                    in_query: names.join(", "),
                })
            }
            several => {
                let names: Vec<String> = several
                    .iter()
                    .map(|(from, to)| {
                        format!(
                            "`{}.{}` -> `{}.{}`",
                            from.table, from.column, to.table, to.column
                        )
                    })
                    .collect();
                Err(QueryError::AmbiguousForeignKey {
                    joined: joined.name,
                    candidates: names.join(", "),
                })
            }
        }
    }

    /// ` [LEFT] JOIN "t" ON ...`, or ` JOIN ("t" JOIN "parent" ON ...) ON ...` for
    /// a model with parents (its foreign key may live in a parent's table).
    pub(crate) fn push_sql(&self, st: &mut Statement<'_>) {
        let has_parent = self.table.parent.is_some();
        st.push(if self.left { " LEFT JOIN " } else { " JOIN " });
        if has_parent {
            st.push("(");
        }
        st.push_ident(self.table.name);
        let mut child = self.table;
        while let Some(parent) = child.parent() {
            st.push(" JOIN ");
            st.push_ident(parent.name);
            st.push(" ON ");
            st.push_column(column(parent.name, parent.primary_key().name));
            st.push(" = ");
            st.push_column(column(child.name, child.primary_key().name));
            child = parent;
        }
        if has_parent {
            st.push(")");
        }
        st.push(" ON ");
        st.push_column(self.on.0);
        st.push(" = ");
        st.push_column(self.on.1);
    }
}

#[cfg(test)]
// the derive's column constants are `pub`
#[allow(unreachable_pub)]
mod tests {
    use super::*;
    use crate::model::Model;

    #[derive(odm_derive::Model, Debug, Clone, Default)]
    struct Customer {
        #[odm(primary_key)]
        id: Option<i32>,
    }

    #[derive(odm_derive::Model, Debug, Clone, Default)]
    #[odm(table = "orders")]
    struct Order {
        #[odm(primary_key)]
        id: Option<i32>,
        #[odm(foreign_key = "customer.id")]
        customer_id: i32,
    }

    #[derive(odm_derive::Model, Debug, Clone, Default)]
    struct Transfer {
        #[odm(primary_key)]
        id: Option<i32>,
        #[odm(foreign_key = "customer.id")]
        payer_id: i32,
        #[odm(foreign_key = "customer.id")]
        payee_id: i32,
    }

    #[derive(odm_derive::Model, Debug, Clone, Default)]
    struct Parcel {
        #[odm(primary_key)]
        id: Option<i32>,
        #[odm(foreign_key = "orders.id")]
        order_id: i32,
    }

    #[derive(odm_derive::Model, Debug, Clone, Default)]
    struct Express {
        #[odm(parent)]
        parcel: Parcel,
    }

    fn sql(join: &Join) -> String {
        let mut st = Statement::default();
        join.push_sql(&mut st);
        st.sql.into_owned()
    }

    #[test]
    fn a_foreign_key_of_the_joined_model_is_followed_to_the_query() {
        let join = Join::resolve(
            Customer::table(),
            &[Customer::table()],
            Order::table(),
            false,
        )
        .unwrap();
        assert_eq!(
            sql(&join),
            r#" JOIN "orders" ON "orders"."customer_id" = "customer"."id""#
        );
    }

    #[test]
    fn a_foreign_key_of_the_query_is_followed_to_the_joined_model() {
        let join =
            Join::resolve(Order::table(), &[Order::table()], Customer::table(), false).unwrap();
        assert_eq!(
            sql(&join),
            r#" JOIN "customer" ON "orders"."customer_id" = "customer"."id""#
        );
    }

    #[test]
    fn a_child_model_is_joined_with_its_parent_in_parentheses() {
        let join =
            Join::resolve(Order::table(), &[Order::table()], Express::table(), false).unwrap();
        assert_eq!(
            sql(&join),
            r#" JOIN ("express" JOIN "parcel" ON "parcel"."id" = "express"."id") ON "parcel"."order_id" = "orders"."id""#
        );
    }

    #[test]
    fn a_left_join_keeps_the_parent_join_inside_its_parentheses() {
        let join =
            Join::resolve(Order::table(), &[Order::table()], Express::table(), true).unwrap();
        assert_eq!(
            sql(&join),
            r#" LEFT JOIN ("express" JOIN "parcel" ON "parcel"."id" = "express"."id") ON "parcel"."order_id" = "orders"."id""#
        );
    }

    #[test]
    fn two_foreign_keys_to_the_query_are_ambiguous() {
        let err = Join::resolve(
            Customer::table(),
            &[Customer::table()],
            Transfer::table(),
            false,
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "`transfer` can be joined along several foreign keys: \
             `transfer.payer_id` -> `customer.id`, `transfer.payee_id` -> `customer.id`"
        );
    }

    #[test]
    fn no_foreign_key_names_every_table_of_the_query() {
        let tables = [Customer::table(), Transfer::table()];
        let err = Join::resolve(Customer::table(), &tables, Parcel::table(), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no foreign key joins `parcel` to `customer`, `transfer`"
        );
    }

    #[test]
    fn a_parent_already_in_the_query_is_refused() {
        let tables = [Parcel::table()];
        let err = Join::resolve(Parcel::table(), &tables, Express::table(), false).unwrap_err();
        assert_eq!(err, QueryError::AlreadyJoined("parcel"));
    }
}
