//! Typed aggregates for report queries — [`count`], [`count_of`],
//! [`count_distinct`], [`sum`], [`min`],
//! [`max`], [`avg`] — and the `HAVING` conditions ([`AggregateExpr`]) built
//! from them.

use std::marker::PhantomData;
use std::ops;

use postgres_types::ToSql;

use super::expr::{CompareOp, Field, Value};
use super::projection::{Contains, ReportOrder, Selectable, Term};
use crate::error::Result;
use crate::types::ColumnType;
use green_postgres::Row;

/// `COUNT(*)`: the number of rows (of each group), read as `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count;

/// The number of rows, or of rows in each group with
/// [`Report::group_by`](crate::Report::group_by).
pub fn count() -> Count {
    Count
}

/// `COUNT(column)` (the non-NULL values) or `COUNT(DISTINCT column)` over
/// a column of model `M`, read as `i64`.
pub struct CountOf<M> {
    term: Term,
    _marker: PhantomData<fn() -> M>,
}

impl<M> Clone for CountOf<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for CountOf<M> {}

impl<M> std::fmt::Debug for CountOf<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CountOf").field(&self.term).finish()
    }
}

/// `COUNT(column)`: how many rows (of each group) have a non-NULL value.
pub fn count_of<M, T, D>(field: Field<M, T, D>) -> CountOf<M> {
    CountOf {
        term: Term::Aggregate {
            func: "COUNT",
            column: field.column(),
            cast: None,
        },
        _marker: PhantomData,
    }
}

/// `COUNT(DISTINCT column)`: how many different non-NULL values.
pub fn count_distinct<M, T, D>(field: Field<M, T, D>) -> CountOf<M> {
    CountOf {
        term: Term::CountDistinct(field.column()),
        _marker: PhantomData,
    }
}

impl<S, I, M> Selectable<S, I> for CountOf<M>
where
    S: Contains<M, I>,
{
    type Value = i64;

    fn term(&self) -> Term {
        self.term
    }

    fn decode(row: &Row, idx: usize) -> Result<i64> {
        i64::decode(row, idx)
    }
}

/// An aggregate over a column of model `M` whose non-NULL result is `V`;
/// selected, it reads as `Option<V>` (`None` over no rows).
///
/// | aggregate            | SQL                          | read as        |
/// |----------------------|------------------------------|----------------|
/// | `count()`            | `COUNT(*)`                   | `i64`          |
/// | `count_of(col)`, `count_distinct(col)` | `COUNT(col)`, `COUNT(DISTINCT col)` | `i64` |
/// | `sum(i16/i32 col)`   | `SUM(col)`                   | `Option<i64>`  |
/// | `sum(i64 col)`       | `CAST(SUM(col) AS bigint)`   | `Option<i64>`  |
/// | `sum(f32/f64 col)`   | `SUM(col)`                   | `Option<f32/f64>` |
/// | `sum(Decimal col)`   | `SUM(col)` (exact)           | `Option<Decimal>` |
/// | `avg(numeric col)`   | `CAST(AVG(col) AS double precision)` | `Option<f64>` |
/// | `min/max(T col)`     | `MIN(col)` / `MAX(col)`      | `Option<T>`    |
///
/// `sum`, `min`, `max` and `avg` are `NULL` (`None`) over no rows. The sum of
/// a `BIGINT` column is `numeric` in PostgreSQL; it is cast back to `bigint`,
/// so a sum beyond `i64` is the server's "bigint out of range" error. `avg`
/// is `numeric` for integer columns; it is read as `f64`.
pub struct Aggregate<M, V> {
    term: Term,
    _marker: PhantomData<fn() -> (M, V)>,
}

impl<M, V> Clone for Aggregate<M, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M, V> Copy for Aggregate<M, V> {}

impl<M, V> std::fmt::Debug for Aggregate<M, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Aggregate").field(&self.term).finish()
    }
}

impl<M, V> Aggregate<M, V> {
    fn over<T, D>(func: &'static str, field: Field<M, T, D>, cast: Option<&'static str>) -> Self {
        Aggregate {
            term: Term::Aggregate {
                func,
                column: field.column(),
                cast,
            },
            _marker: PhantomData,
        }
    }
}

/// Column types [`sum`] accepts, with the type of their sum.
#[diagnostic::on_unimplemented(
    message = "`sum` needs a numeric column, not one of `{Self}`",
    note = "sum accepts i16, i32, i64, f32, f64 and (feature `decimal`) rust_decimal::Decimal columns"
)]
pub trait Summable {
    /// The Rust type of the sum.
    type Sum: ColumnType + ToSql + Sync + Send + 'static;
    /// The SQL type the sum is cast to, when PostgreSQL's differs.
    const CAST: Option<&'static str> = None;
}

impl Summable for i16 {
    type Sum = i64;
}
impl Summable for i32 {
    type Sum = i64;
}
impl Summable for i64 {
    type Sum = i64;
    const CAST: Option<&'static str> = Some("bigint");
}
impl Summable for f32 {
    type Sum = f32;
}
impl Summable for f64 {
    type Sum = f64;
}
#[cfg(feature = "decimal")]
impl Summable for rust_decimal::Decimal {
    type Sum = rust_decimal::Decimal;
}

/// Column types [`avg`] accepts (the numeric ones); the average is read as
/// `f64`.
#[diagnostic::on_unimplemented(
    message = "`avg` needs a numeric column, not one of `{Self}`",
    note = "avg accepts i16, i32, i64, f32, f64 and (feature `decimal`) rust_decimal::Decimal columns"
)]
pub trait Averageable {}

impl Averageable for i16 {}
impl Averageable for i32 {}
impl Averageable for i64 {}
impl Averageable for f32 {}
impl Averageable for f64 {}
#[cfg(feature = "decimal")]
impl Averageable for rust_decimal::Decimal {}

/// `SUM(column)` of a numeric column: `Option<i64>` for integers,
/// `Option<f32>`/`Option<f64>` for floats.
pub fn sum<M, T: Summable, D>(field: Field<M, T, D>) -> Aggregate<M, T::Sum> {
    Aggregate::over("SUM", field, T::CAST)
}

/// `AVG(column)` of a numeric column, as `Option<f64>`.
pub fn avg<M, T: Averageable, D>(field: Field<M, T, D>) -> Aggregate<M, f64> {
    Aggregate::over("AVG", field, Some("double precision"))
}

/// `MIN(column)`, as `Option<T>`.
pub fn min<M, T, D>(field: Field<M, T, D>) -> Aggregate<M, T> {
    Aggregate::over("MIN", field, None)
}

/// `MAX(column)`, as `Option<T>`.
pub fn max<M, T, D>(field: Field<M, T, D>) -> Aggregate<M, T> {
    Aggregate::over("MAX", field, None)
}

impl<S, I, M, V> Selectable<S, I> for Aggregate<M, V>
where
    S: Contains<M, I>,
    V: ColumnType,
{
    type Value = Option<V>;

    fn term(&self) -> Term {
        self.term
    }

    fn decode(row: &Row, idx: usize) -> Result<Option<V>> {
        V::decode_nullable(row, idx)
    }
}

impl<S> Selectable<S, Anywhere> for Count {
    type Value = i64;

    fn term(&self) -> Term {
        Term::CountAll
    }

    fn decode(row: &Row, idx: usize) -> Result<i64> {
        i64::decode(row, idx)
    }
}

/// The index of [`Count`], which belongs to no model.
#[derive(Debug, Clone, Copy)]
pub struct Anywhere;

/// Comparisons of an aggregate with a bound value, for
/// [`Report::having`](crate::Report::having), and its order terms.
macro_rules! aggregate_compare {
    ($value:ty) => {
        fn compare(self, op: CompareOp, value: $value) -> AggregateExpr {
            AggregateExpr {
                node: HavingNode::Compare {
                    term: self.term(),
                    op,
                    value: Box::new(value),
                },
            }
        }

        /// `aggregate = value`.
        pub fn eq(self, value: impl Into<$value>) -> AggregateExpr {
            self.compare(CompareOp::Eq, value.into())
        }

        /// `aggregate <> value`.
        pub fn ne(self, value: impl Into<$value>) -> AggregateExpr {
            self.compare(CompareOp::Ne, value.into())
        }

        /// `aggregate < value`.
        pub fn lt(self, value: impl Into<$value>) -> AggregateExpr {
            self.compare(CompareOp::Lt, value.into())
        }

        /// `aggregate <= value`.
        pub fn le(self, value: impl Into<$value>) -> AggregateExpr {
            self.compare(CompareOp::Le, value.into())
        }

        /// `aggregate > value`.
        pub fn gt(self, value: impl Into<$value>) -> AggregateExpr {
            self.compare(CompareOp::Gt, value.into())
        }

        /// `aggregate >= value`.
        pub fn ge(self, value: impl Into<$value>) -> AggregateExpr {
            self.compare(CompareOp::Ge, value.into())
        }

        /// Ascending order on this aggregate.
        pub fn asc(self) -> ReportOrder {
            ReportOrder {
                term: self.term(),
                descending: false,
            }
        }

        /// Descending order on this aggregate.
        pub fn desc(self) -> ReportOrder {
            ReportOrder {
                term: self.term(),
                descending: true,
            }
        }
    };
}

impl<M, V: ToSql + Sync + Send + 'static> Aggregate<M, V> {
    fn term(self) -> Term {
        self.term
    }

    aggregate_compare!(V);
}

impl Count {
    fn term(self) -> Term {
        Term::CountAll
    }

    aggregate_compare!(i64);
}

impl<M> CountOf<M> {
    fn term(self) -> Term {
        self.term
    }

    aggregate_compare!(i64);
}

/// The condition tree of a `HAVING` clause.
#[derive(Debug)]
pub(crate) enum HavingNode {
    Compare {
        term: Term,
        op: CompareOp,
        value: Value,
    },
    And(Vec<HavingNode>),
    Or(Vec<HavingNode>),
    Not(Box<HavingNode>),
}

impl HavingNode {
    /// Every term the condition reads.
    pub(crate) fn terms(&self, out: &mut Vec<Term>) {
        match self {
            HavingNode::Compare { term, .. } => out.push(*term),
            HavingNode::And(nodes) | HavingNode::Or(nodes) => {
                nodes.iter().for_each(|n| n.terms(out));
            }
            HavingNode::Not(inner) => inner.terms(out),
        }
    }
}

/// A condition on aggregates (`sum(Order::TOTAL).gt(100)`), for
/// [`Report::having`](crate::Report::having); combine with `&`, `|`, `!`.
/// Values are always bound parameters.
#[derive(Debug)]
pub struct AggregateExpr {
    pub(crate) node: HavingNode,
}

impl AggregateExpr {
    /// Both conditions.
    pub fn and(self, other: AggregateExpr) -> AggregateExpr {
        let node = match self.node {
            HavingNode::And(mut nodes) => {
                nodes.push(other.node);
                HavingNode::And(nodes)
            }
            node => HavingNode::And(vec![node, other.node]),
        };
        AggregateExpr { node }
    }

    /// Either condition.
    pub fn or(self, other: AggregateExpr) -> AggregateExpr {
        let node = match self.node {
            HavingNode::Or(mut nodes) => {
                nodes.push(other.node);
                HavingNode::Or(nodes)
            }
            node => HavingNode::Or(vec![node, other.node]),
        };
        AggregateExpr { node }
    }
}

impl ops::BitAnd for AggregateExpr {
    type Output = AggregateExpr;
    fn bitand(self, rhs: AggregateExpr) -> AggregateExpr {
        self.and(rhs)
    }
}

impl ops::BitOr for AggregateExpr {
    type Output = AggregateExpr;
    fn bitor(self, rhs: AggregateExpr) -> AggregateExpr {
        self.or(rhs)
    }
}

impl ops::Not for AggregateExpr {
    type Output = AggregateExpr;
    fn not(self) -> AggregateExpr {
        AggregateExpr {
            node: HavingNode::Not(Box::new(self.node)),
        }
    }
}
