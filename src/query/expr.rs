//! Typed columns ([`Field`]) and the filter expression tree ([`Expr`]) they
//! build: `Task::DONE.eq(false).and(Task::SUBJECT.like("a%"))`.

use std::fmt;
use std::marker::PhantomData;
use std::ops;

use postgres_types::ToSql;

/// A bound value inside an expression.
pub(crate) type Value = Box<dyn ToSql + Sync + Send>;

/// A table-qualified column, `"table"."column"` in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnRef {
    /// The table name.
    pub table: &'static str,
    /// The column name.
    pub column: &'static str,
}

/// A typed column of model `M` whose values are `T`: the constants generated
/// by `#[derive(odm::Model)]` (`Task::DONE`). Filters take values of `T` (the
/// inner type for `Option` columns), so a type mismatch is a compile error.
/// `D` is the field's declared type (`Option<T>` for a nullable column): a
/// projection ([`Query::select`](crate::Query::select)) reads the column as
/// `D`.
pub struct Field<M, T, D = T> {
    column: ColumnRef,
    _marker: Marker<M, T, D>,
}

/// Ties a [`Field`] to its model and types without owning any of them.
type Marker<M, T, D> = PhantomData<fn() -> (M, T, D)>;

impl<M, T, D> Clone for Field<M, T, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M, T, D> Copy for Field<M, T, D> {}

impl<M, T, D> fmt::Debug for Field<M, T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({}.{})", self.column.table, self.column.column)
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
}

impl CompareOp {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Like => "LIKE",
            CompareOp::ILike => "ILIKE",
        }
    }
}

impl<M, T, D> Field<M, T, D> {
    /// The constant for column `column` of table `table` (used by the derive).
    pub const fn new(table: &'static str, column: &'static str) -> Self {
        Field {
            column: ColumnRef { table, column },
            _marker: PhantomData,
        }
    }

    /// The column name.
    pub fn name(&self) -> &'static str {
        self.column.column
    }

    /// The table name.
    pub fn table(&self) -> &'static str {
        self.column.table
    }

    /// The qualified column.
    pub fn column(&self) -> ColumnRef {
        self.column
    }

    /// `column IS NULL`.
    pub fn is_null(self) -> Expr {
        Expr::new(Node::IsNull(self.column))
    }

    /// `column IS NOT NULL`.
    pub fn is_not_null(self) -> Expr {
        Expr::new(Node::Not(Box::new(Node::IsNull(self.column))))
    }

    /// Ascending order on this column.
    pub fn asc(self) -> Order {
        Order {
            column: self.column,
            descending: false,
        }
    }

    /// Descending order on this column.
    pub fn desc(self) -> Order {
        Order {
            column: self.column,
            descending: true,
        }
    }

    /// `SET column = NULL` in a bulk update.
    pub fn set_null(self) -> Assignment {
        Assignment {
            column: self.column,
            value: None,
        }
    }
}

impl<M, T, D> Field<M, T, D>
where
    T: ToSql + Sync + Send + 'static,
{
    fn compare(self, op: CompareOp, value: impl Into<T>) -> Expr {
        Expr::new(Node::Compare {
            column: self.column,
            op,
            value: Box::new(value.into()),
        })
    }

    /// `column = value`.
    pub fn eq(self, value: impl Into<T>) -> Expr {
        self.compare(CompareOp::Eq, value)
    }

    /// `column <> value`.
    pub fn ne(self, value: impl Into<T>) -> Expr {
        self.compare(CompareOp::Ne, value)
    }

    /// `column < value`.
    pub fn lt(self, value: impl Into<T>) -> Expr {
        self.compare(CompareOp::Lt, value)
    }

    /// `column <= value`.
    pub fn le(self, value: impl Into<T>) -> Expr {
        self.compare(CompareOp::Le, value)
    }

    /// `column > value`.
    pub fn gt(self, value: impl Into<T>) -> Expr {
        self.compare(CompareOp::Gt, value)
    }

    /// `column >= value`.
    pub fn ge(self, value: impl Into<T>) -> Expr {
        self.compare(CompareOp::Ge, value)
    }

    /// `column IN (values...)`; an empty list matches nothing.
    pub fn in_<I, V>(self, values: I) -> Expr
    where
        I: IntoIterator<Item = V>,
        V: Into<T>,
    {
        Expr::new(Node::In {
            column: self.column,
            values: values
                .into_iter()
                .map(|v| Box::new(v.into()) as Value)
                .collect(),
        })
    }

    /// `SET column = value` in a bulk update.
    pub fn set(self, value: impl Into<T>) -> Assignment {
        Assignment {
            column: self.column,
            value: Some(Box::new(value.into())),
        }
    }
}

impl<M, D> Field<M, String, D> {
    /// `column LIKE pattern` (`%` and `_` are wildcards).
    pub fn like(self, pattern: impl Into<String>) -> Expr {
        self.compare(CompareOp::Like, pattern)
    }

    /// `column ILIKE pattern` (case-insensitive).
    pub fn ilike(self, pattern: impl Into<String>) -> Expr {
        self.compare(CompareOp::ILike, pattern)
    }
}

impl<M, E, D> Field<M, Vec<E>, D>
where
    E: ToSql + Sync + Send + 'static,
{
    /// `value = ANY(column)`: the array column holds `value` (an array
    /// column is a `Vec<E>` field; see [`crate::types::ArrayElement`]).
    pub fn contains(self, value: impl Into<E>) -> Expr {
        Expr::new(Node::AnyOf {
            column: self.column,
            value: Box::new(value.into()),
        })
    }
}

/// The expression tree.
#[derive(Debug)]
pub(crate) enum Node {
    Compare {
        column: ColumnRef,
        op: CompareOp,
        value: Value,
    },
    In {
        column: ColumnRef,
        values: Vec<Value>,
    },
    /// `value = ANY(column)` on an array column.
    AnyOf {
        column: ColumnRef,
        value: Value,
    },
    IsNull(ColumnRef),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

/// A filter condition; combine with [`Expr::and`], [`Expr::or`],
/// [`Expr::not`] or the `&`, `|`, `!` operators. Values are always sent as
/// bound parameters.
#[derive(Debug)]
pub struct Expr {
    pub(crate) node: Node,
}

impl Expr {
    fn new(node: Node) -> Expr {
        Expr { node }
    }

    /// Both conditions.
    pub fn and(self, other: Expr) -> Expr {
        match self.node {
            Node::And(mut nodes) => {
                nodes.push(other.node);
                Expr::new(Node::And(nodes))
            }
            node => Expr::new(Node::And(vec![node, other.node])),
        }
    }

    /// Either condition.
    pub fn or(self, other: Expr) -> Expr {
        match self.node {
            Node::Or(mut nodes) => {
                nodes.push(other.node);
                Expr::new(Node::Or(nodes))
            }
            node => Expr::new(Node::Or(vec![node, other.node])),
        }
    }

    /// The negated condition.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::new(Node::Not(Box::new(self.node)))
    }
}

impl ops::BitAnd for Expr {
    type Output = Expr;
    fn bitand(self, rhs: Expr) -> Expr {
        self.and(rhs)
    }
}

impl ops::BitOr for Expr {
    type Output = Expr;
    fn bitor(self, rhs: Expr) -> Expr {
        self.or(rhs)
    }
}

impl ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::not(self)
    }
}

/// One `ORDER BY` term, from [`Field::asc`] / [`Field::desc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub(crate) column: ColumnRef,
    pub(crate) descending: bool,
}

/// One `SET column = value` of a bulk update, from [`Field::set`] /
/// [`Field::set_null`].
#[derive(Debug)]
pub struct Assignment {
    pub(crate) column: ColumnRef,
    pub(crate) value: Option<Value>,
}
