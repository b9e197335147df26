//! [`Report`]: queries beyond one table — joins along declared foreign
//! keys, column projections into tuples, `GROUP BY` with typed aggregates,
//! `HAVING` and `DISTINCT`.

use std::marker::PhantomData;

use super::query::{decode_each, Query};
use crate::error::{Error, Result};
use crate::model::{Model, Table};
use crate::query::aggregate::{AggregateExpr, HavingNode};
use crate::query::expr::{ColumnRef, Expr, Field, Node};
use crate::query::join::Join;
use crate::query::projection::{Append, AppendOptional, Contains, Projection, ReportOrder, Term};
use crate::query::sql::{QueryParts, Statement};
use crate::query::QueryError;
use crate::session::Session;

/// A query over the model list `S` (`(Customer, (Order, ()))`) selecting
/// `P`; built from [`Query::join`], [`Query::left_join`],
/// [`Query::select`], [`Query::group_by`] or [`Query::distinct`], run with [`all`](Report::all),
/// [`first`](Report::first) or [`one`](Report::one) once a projection is
/// selected.
///
/// ```no_run
/// # #[derive(odm::Model, Debug, Clone, Default)]
/// # struct Customer { #[odm(primary_key)] id: Option<i32>, name: String }
/// # #[derive(odm::Model, Debug, Clone, Default)]
/// # #[odm(table = "orders")]
/// # struct Order {
/// #     #[odm(primary_key)] id: Option<i32>,
/// #     #[odm(foreign_key = "customer.id")] customer_id: i32,
/// #     total: i32,
/// # }
/// use odm::query::{count, sum};
/// # fn demo(s: &mut odm::Session) -> odm::Result<()> {
/// // orders with their customer's name
/// let rows: Vec<(i32, String)> = s
///     .query::<Order>()
///     .join::<Customer>()
///     .select((Order::ID, Customer::NAME))
///     .order_by(Order::ID.asc())
///     .all()?;
/// // every customer, with or without orders: Vec<(String, Option<i32>)>
/// let all = s
///     .query::<Customer>()
///     .left_join::<Order>()
///     .select((Customer::NAME, Order::TOTAL))
///     .all()?;
/// // per customer: name, number of orders, revenue; big customers only
/// let report: Vec<(String, i64, Option<i64>)> = s
///     .query::<Order>()
///     .join::<Customer>()
///     .group_by(Customer::NAME)
///     .having(sum(Order::TOTAL).gt(1000))
///     .select((Customer::NAME, count(), sum(Order::TOTAL)))
///     .order_by(sum(Order::TOTAL).desc())
///     .all()?;
/// # Ok(()) }
/// ```
///
/// What the compiler checks: a selected column or aggregate belongs to a
/// model of the query (its model list, see [`Contains`]); the row type is
/// the tuple of the selected fields' declared types; `having` and aggregate
/// comparisons take values of the aggregate's type. What is checked when
/// the query runs, as a typed [`QueryError`]: the join's foreign key (none
/// or several between the tables, naming them), and that the columns of
/// `filter` and `order_by` belong to the query. A selected column that is
/// neither grouped nor aggregated is the server's error (SQLSTATE `42803`).
///
/// `join` is an inner join; `left_join` keeps the rows without a match and
/// reads the joined model's columns as `Option<T>`. A model in the query
/// brings its parent tables (joined-table inheritance) and their columns:
/// `s.query::<Engineer>()` selects `Employee::NAME` too. A table joins a
/// query once (no self-joins), and every model of a query is on one bind.
///
/// Not provided: subqueries, `UNION`, joins on conditions other than a
/// declared foreign key, expressions over columns in the select list
/// (`total * 2`); those stay with `Session::query_raw`.
pub struct Report<'s, S, P = ()> {
    session: &'s mut Session,
    sql: ReportSql,
    projection: P,
    _sources: PhantomData<fn() -> S>,
}

impl<S, P> std::fmt::Debug for Report<'_, S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report").field("sql", &self.sql).finish()
    }
}

/// Everything of a report but the session and the projection.
#[derive(Debug)]
struct ReportSql {
    root: &'static Table,
    /// Every table in `FROM`, parents included.
    tables: Vec<&'static Table>,
    joins: Vec<Join>,
    parts: QueryParts,
    order: Vec<ReportOrder>,
    group_by: Vec<ColumnRef>,
    having: Option<AggregateExpr>,
    distinct: bool,
    /// The first refused `join`, reported when the query runs.
    error: Option<QueryError>,
}

impl<'s, S> Report<'s, S, ()> {
    /// The report of a query over `M`, before any join or projection: its
    /// filters, order and limits, selecting `M`'s lineage.
    pub(super) fn from_query<M: Model<Lineage = S>>(query: Query<'s, M>) -> Self {
        let Query {
            session, mut parts, ..
        } = query;
        let order = parts.order.drain(..).map(ReportOrder::from).collect();
        let root = M::table();
        Report {
            session,
            sql: ReportSql {
                root,
                tables: root.lineage(),
                joins: Vec::new(),
                parts,
                order,
                group_by: Vec::new(),
                having: None,
                distinct: false,
                error: None,
            },
            projection: (),
            _sources: PhantomData,
        }
    }
    /// Joins model `C` along the one declared foreign key between `C`'s
    /// table and a table already in the query; see [`Query::join`].
    pub fn join<C: Model>(self) -> Report<'s, <C::Lineage as Append<S>>::Output, ()>
    where
        C::Lineage: Append<S>,
    {
        self.add_join(C::table(), false)
    }

    /// `LEFT JOIN`s model `C` like [`join`](Report::join): the query's rows
    /// without a match stay, and `C`'s columns (and its parents') read as
    /// `Option<T>`, `None` where nothing matched.
    pub fn left_join<C: Model>(self) -> Report<'s, <C::Lineage as AppendOptional<S>>::Output, ()>
    where
        C::Lineage: AppendOptional<S>,
    {
        self.add_join(C::table(), true)
    }

    fn add_join<T>(mut self, joined: &'static Table, left: bool) -> Report<'s, T, ()> {
        if self.sql.error.is_none() {
            if let Err(e) = self.sql.add_join(joined, left) {
                self.sql.error = Some(e);
            }
        }
        Report {
            session: self.session,
            sql: self.sql,
            projection: (),
            _sources: PhantomData,
        }
    }

    /// Selects columns of the query's models and aggregates: one item, or a
    /// tuple of up to twelve.
    pub fn select<P, I>(self, projection: P) -> Report<'s, S, P>
    where
        P: Projection<S, I>,
    {
        Report {
            session: self.session,
            sql: self.sql,
            projection,
            _sources: PhantomData,
        }
    }
}

impl<S, P> Report<'_, S, P> {
    /// Keeps the rows matching `expr` (`AND`-ed with earlier filters); its
    /// columns must belong to the query's tables.
    pub fn filter(mut self, expr: Expr) -> Self {
        self.sql.parts.add_filter(expr);
        self
    }

    /// Groups the rows by a column of a model in the query; later calls add
    /// columns.
    pub fn group_by<M, T, D, I>(mut self, column: Field<M, T, D>) -> Self
    where
        S: Contains<M, I>,
    {
        self.sql.group_by.push(column.column());
        self
    }

    /// Keeps the groups matching a condition on aggregates
    /// (`sum(Order::TOTAL).gt(100)`), `AND`-ed with earlier ones.
    pub fn having(mut self, condition: AggregateExpr) -> Self {
        self.sql.having = Some(match self.sql.having.take() {
            Some(existing) => existing.and(condition),
            None => condition,
        });
        self
    }

    /// `SELECT DISTINCT`: equal result rows once.
    pub fn distinct(mut self) -> Self {
        self.sql.distinct = true;
        self
    }

    /// Orders by a column (`Customer::NAME.asc()`) or an aggregate
    /// (`count().desc()`); later calls add tie-breakers.
    pub fn order_by(mut self, order: impl Into<ReportOrder>) -> Self {
        self.sql.order.push(order.into());
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: i64) -> Self {
        self.sql.parts.limit = Some(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: i64) -> Self {
        self.sql.parts.offset = Some(n);
        self
    }
}

impl<S, P> Report<'_, S, P> {
    /// The SQL this report runs, for inspection.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] as for [`Report::all`].
    pub fn to_sql<I>(&self) -> Result<String>
    where
        P: Projection<S, I>,
    {
        let terms = self.projection.terms();
        Ok(self.sql.statement(&terms)?.sql.into_owned())
    }

    fn rows<I>(&mut self) -> Result<Vec<green_postgres::Row>>
    where
        P: Projection<S, I>,
    {
        let terms = self.projection.terms();
        let statement = self.sql.statement(&terms)?;
        self.session.read(self.sql.root, |client| {
            client.query(&statement.sql, &statement.params)
        })
    }

    /// Every result row, as the projection's Rust types.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] for a join without one foreign key or a filter or
    /// order column outside the query; the server's error; a decoding error
    /// naming the column (a NULL read into a non-`Option` type).
    pub fn all<I>(self) -> Result<Vec<P::Row>>
    where
        P: Projection<S, I>,
    {
        let terms = self.projection.terms();
        let statement = self.sql.statement(&terms)?;
        self.session.read(self.sql.root, |client| {
            decode_each(client, &statement.sql, &statement.params, P::decode)
        })?
    }

    /// The first result row, if any.
    ///
    /// # Errors
    ///
    /// As [`Report::all`].
    pub fn first<I>(mut self) -> Result<Option<P::Row>>
    where
        P: Projection<S, I>,
    {
        self.sql.parts.limit = Some(1);
        Ok(self.all()?.pop())
    }

    /// The only result row.
    ///
    /// # Errors
    ///
    /// [`Error::RowCount`] when there are no rows or several; as
    /// [`Report::all`].
    pub fn one<I>(mut self) -> Result<P::Row>
    where
        P: Projection<S, I>,
    {
        let rows = self.rows()?;
        match rows.as_slice() {
            [row] => P::decode(row),
            rows => Err(Error::RowCount(rows.len())),
        }
    }
}

impl ReportSql {
    /// Adds `joined` (with its parents) along the one foreign key between
    /// its tables and the query's.
    fn add_join(
        &mut self,
        joined: &'static Table,
        left: bool,
    ) -> std::result::Result<(), QueryError> {
        let join = Join::resolve(self.root, &self.tables, joined, left)?;
        self.tables.extend(joined.lineage());
        self.joins.push(join);
        Ok(())
    }

    fn has_table(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.name == name)
    }

    /// The first column of a filter, order or `HAVING` term outside the
    /// query's tables.
    fn check_columns(&self) -> std::result::Result<(), QueryError> {
        let mut columns = Vec::new();
        if let Some(filter) = &self.parts.filter {
            node_columns(&filter.node, &mut columns);
        }
        let mut terms: Vec<Term> = self.order.iter().map(|o| o.term).collect();
        if let Some(having) = &self.having {
            having.node.terms(&mut terms);
        }
        columns.extend(terms.into_iter().filter_map(Term::column));
        match columns.into_iter().find(|c| !self.has_table(c.table)) {
            Some(c) => Err(QueryError::NotInQuery {
                table: c.table,
                column: c.column,
            }),
            None => Ok(()),
        }
    }

    /// `SELECT [DISTINCT] <terms> FROM ... JOIN ... WHERE ... GROUP BY ...
    /// HAVING ... ORDER BY ... LIMIT ... OFFSET ...`.
    fn statement(&self, terms: &[Term]) -> std::result::Result<Statement<'_>, QueryError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.check_columns()?;
        let mut st = Statement::default();
        st.push(if self.distinct {
            "SELECT DISTINCT "
        } else {
            "SELECT "
        });
        for (i, term) in terms.iter().enumerate() {
            if i > 0 {
                st.push(", ");
            }
            push_term(&mut st, *term);
        }
        st.push_from(self.root);
        for join in &self.joins {
            join.push_sql(&mut st);
        }
        st.push_where(self.parts.filter.as_ref());
        if !self.group_by.is_empty() {
            st.push(" GROUP BY ");
            for (i, column) in self.group_by.iter().enumerate() {
                if i > 0 {
                    st.push(", ");
                }
                st.push_column(*column);
            }
        }
        if let Some(having) = &self.having {
            st.push(" HAVING ");
            push_having(&mut st, &having.node);
        }
        if !self.order.is_empty() {
            st.push(" ORDER BY ");
            for (i, order) in self.order.iter().enumerate() {
                if i > 0 {
                    st.push(", ");
                }
                push_term(&mut st, order.term);
                st.push(if order.descending { " DESC" } else { " ASC" });
            }
        }
        if let Some(limit) = &self.parts.limit {
            st.push(" LIMIT ");
            st.push_param(limit);
        }
        if let Some(offset) = &self.parts.offset {
            st.push(" OFFSET ");
            st.push_param(offset);
        }
        Ok(st)
    }
}

/// Every column a filter reads.
fn node_columns(node: &Node, out: &mut Vec<ColumnRef>) {
    match node {
        Node::Compare { column, .. }
        | Node::In { column, .. }
        | Node::AnyOf { column, .. }
        | Node::IsNull(column) => out.push(*column),
        Node::And(nodes) | Node::Or(nodes) => nodes.iter().for_each(|n| node_columns(n, out)),
        Node::Not(inner) => node_columns(inner, out),
    }
}

fn push_term(st: &mut Statement<'_>, term: Term) {
    match term {
        Term::Column(c) => st.push_column(c),
        Term::CountAll => st.push("COUNT(*)"),
        Term::CountDistinct(c) => {
            st.push("COUNT(DISTINCT ");
            st.push_column(c);
            st.push(")");
        }
        Term::Aggregate { func, column, cast } => {
            if cast.is_some() {
                st.push("CAST(");
            }
            st.push(func);
            st.push("(");
            st.push_column(column);
            st.push(")");
            if let Some(cast) = cast {
                st.push(" AS ");
                st.push(cast);
                st.push(")");
            }
        }
    }
}

fn push_having<'a>(st: &mut Statement<'a>, node: &'a HavingNode) {
    match node {
        HavingNode::Compare { term, op, value } => {
            push_term(st, *term);
            st.push(" ");
            st.push(op.sql());
            st.push(" ");
            st.push_param(value.as_ref());
        }
        HavingNode::And(nodes) | HavingNode::Or(nodes) => {
            let joiner = if matches!(node, HavingNode::And(_)) {
                " AND "
            } else {
                " OR "
            };
            st.push("(");
            for (i, n) in nodes.iter().enumerate() {
                if i > 0 {
                    st.push(joiner);
                }
                push_having(st, n);
            }
            st.push(")");
        }
        HavingNode::Not(inner) => {
            st.push("NOT (");
            push_having(st, inner);
            st.push(")");
        }
    }
}
