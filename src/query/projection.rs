//! What a report query selects: the select-list [`Term`]s, the compile-time
//! check that a column's model is in the query ([`Contains`]), and the
//! projections ([`Projection`]) that turn a row into a typed tuple.

use std::marker::PhantomData;

use super::expr::{ColumnRef, Field, Order};
use postgres_types::ToSql;

use crate::error::Result;
use crate::types::ColumnType;
use green_postgres::Row;

/// The index of a model at the head of a query's model list.
#[derive(Debug, Clone, Copy)]
pub struct Here;

/// The index of a model further down a query's model list.
#[derive(Debug, Clone, Copy)]
pub struct There<I>(PhantomData<I>);

/// Implemented by a query's model list `S` when it holds model `M` (at
/// index `I`, inferred). Not implemented by hand.
///
/// A query's models form a type-level list, `(Customer, (Order, ()))` after
/// `s.query::<Order>().join::<Customer>()` (each model followed by its
/// parents, see [`Model::Lineage`](crate::Model::Lineage)). A column of model `M` can be
/// selected only when the list [`Contains`] `M`; the index `I` (`Here`,
/// `There<Here>`, ...) is inferred, so a column of a model that is not in
/// the query fails to compile:
///
/// ```compile_fail
/// # #[derive(odm::Model, Debug, Clone, Default)]
/// # struct Customer { #[odm(primary_key)] id: Option<i32>, name: String }
/// # #[derive(odm::Model, Debug, Clone, Default)]
/// # struct Order { #[odm(primary_key)] id: Option<i32>, total: i32 }
/// # fn demo(s: &mut odm::Session) -> odm::Result<()> {
/// // `Customer` was never joined
/// let names: Vec<String> = s.query::<Order>().select(Customer::NAME).all()?;
/// # Ok(()) }
/// ```
///
/// and a projection read into the wrong Rust types fails to compile too:
///
/// ```compile_fail
/// # #[derive(odm::Model, Debug, Clone, Default)]
/// # struct Order { #[odm(primary_key)] id: Option<i32>, total: i32 }
/// # fn demo(s: &mut odm::Session) -> odm::Result<()> {
/// let rows: Vec<(i32, String)> = s.query::<Order>().select((Order::ID, Order::TOTAL)).all()?;
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "model `{M}` is not in this query",
    label = "a column of `{M}`, which the query does not join",
    note = "join it first: `.join::<{M}>()`"
)]
pub trait Contains<M, I> {
    /// Whether `M` came in through an inner or a left join.
    type Side: JoinSide;
}

impl<M, Rest> Contains<M, Here> for (M, Rest) {
    type Side = InnerSide;
}

impl<M, Rest> Contains<M, HereOptional> for (Optional<M>, Rest) {
    type Side = OuterSide;
}

impl<M, Head, Rest, I> Contains<M, There<I>> for (Head, Rest)
where
    Rest: Contains<M, I>,
{
    type Side = Rest::Side;
}

/// The entry of a model joined with [`Report::left_join`](crate::Report::left_join)
/// in a query's model list: its columns read as `Option`s.
#[derive(Debug, Clone, Copy)]
pub struct Optional<M>(PhantomData<M>);

/// The index of a left-joined model at the head of a query's model list.
#[derive(Debug, Clone, Copy)]
pub struct HereOptional;

/// How a column of a model is read given how the model is in the query.
pub trait JoinSide {
    /// The Rust type a column of Rust type `D` (non-NULL type `T`) is read
    /// as.
    type Read<T: ColumnType + ToSql + Sync, D: ColumnType>: ColumnType;
}

/// A model of the query's `FROM` or of an inner join: a column reads as
/// its field's declared type.
#[derive(Debug, Clone, Copy)]
pub struct InnerSide;

impl JoinSide for InnerSide {
    type Read<T: ColumnType + ToSql + Sync, D: ColumnType> = D;
}

/// A left-joined model: every column reads as `Option<T>` (`None` when no
/// row matched).
#[derive(Debug, Clone, Copy)]
pub struct OuterSide;

impl JoinSide for OuterSide {
    type Read<T: ColumnType + ToSql + Sync, D: ColumnType> = Option<T>;
}

/// Type-level list concatenation with every entry of `Self` wrapped in
/// [`Optional`]: a left join puts the joined model's lineage in front of
/// the query's model list.
pub trait AppendOptional<Tail> {
    /// The concatenated list.
    type Output;
}

impl<Tail> AppendOptional<Tail> for () {
    type Output = Tail;
}

impl<Head, Rest, Tail> AppendOptional<Tail> for (Head, Rest)
where
    Rest: AppendOptional<Tail>,
{
    type Output = (Optional<Head>, Rest::Output);
}

/// Type-level list concatenation: `Self` followed by `Tail`; a join puts
/// the joined model's [`Lineage`](crate::Model::Lineage) in front of the
/// query's model list.
pub trait Append<Tail> {
    /// The concatenated list.
    type Output;
}

impl<Tail> Append<Tail> for () {
    type Output = Tail;
}

impl<Head, Rest, Tail> Append<Tail> for (Head, Rest)
where
    Rest: Append<Tail>,
{
    type Output = (Head, Rest::Output);
}

/// One entry of a select list, `ORDER BY` or `HAVING`, as SQL (built by
/// [`Selectable`]; not for direct use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// `"table"."column"`.
    Column(ColumnRef),
    /// `COUNT(*)`.
    CountAll,
    /// `COUNT(DISTINCT "table"."column")`.
    CountDistinct(ColumnRef),
    /// `func("table"."column")`, cast to `cast` when set.
    Aggregate {
        /// The SQL function (`SUM`).
        func: &'static str,
        /// Its argument.
        column: ColumnRef,
        /// The SQL type the result is cast to.
        cast: Option<&'static str>,
    },
}

impl Term {
    /// The column the term reads, if any.
    pub(crate) fn column(self) -> Option<ColumnRef> {
        match self {
            Term::Column(c) | Term::CountDistinct(c) | Term::Aggregate { column: c, .. } => Some(c),
            Term::CountAll => None,
        }
    }
}

/// One selectable item of a query over the model list `S`: a column of a
/// model in `S` ([`Field`]) or an aggregate ([`count`](super::count),
/// [`sum`](super::sum), ...). `Value` is the Rust type it is read as.
pub trait Selectable<S, I> {
    /// The Rust type of the selected value.
    type Value;

    #[doc(hidden)]
    fn term(&self) -> Term;

    #[doc(hidden)]
    fn decode(row: &Row, idx: usize) -> Result<Self::Value>;
}

/// A column reads as the field's declared type: `Option<T>` for a nullable
/// column, `T` otherwise (a NULL there is an error naming the column); a
/// column of a left-joined model reads as `Option<T>`.
impl<S, I, M, T, D> Selectable<S, I> for Field<M, T, D>
where
    S: Contains<M, I>,
    T: ColumnType + ToSql + Sync,
    D: ColumnType,
{
    type Value = <S::Side as JoinSide>::Read<T, D>;

    fn term(&self) -> Term {
        Term::Column(self.column())
    }

    fn decode(row: &Row, idx: usize) -> Result<Self::Value> {
        <Self::Value as ColumnType>::decode(row, idx)
    }
}

/// What a report query selects: one [`Selectable`] or a tuple of up to
/// twelve; [`Report::all`](crate::Report::all) returns `Vec<Self::Row>`.
pub trait Projection<S, I> {
    /// The Rust type of one result row.
    type Row;

    #[doc(hidden)]
    fn terms(&self) -> Vec<Term>;

    #[doc(hidden)]
    fn decode(row: &Row) -> Result<Self::Row>;
}

/// One item selected alone reads as its value (`Vec<String>`, not
/// `Vec<(String,)>`).
macro_rules! single_projection {
    ($($ty:ty => [$($generic:ident),*];)*) => {$(
        impl<S, I, $($generic),*> Projection<S, I> for $ty
        where
            $ty: Selectable<S, I>,
        {
            type Row = <$ty as Selectable<S, I>>::Value;

            fn terms(&self) -> Vec<Term> {
                vec![self.term()]
            }

            fn decode(row: &Row) -> Result<Self::Row> {
                <$ty as Selectable<S, I>>::decode(row, 0)
            }
        }
    )*};
}

single_projection! {
    Field<M, T, D> => [M, T, D];
    super::Aggregate<M, V> => [M, V];
    super::Count => [];
    super::CountOf<M> => [M];
}

macro_rules! tuple_projection {
    ($($item:ident $index:ident $n:tt),+) => {
        impl<S, $($item, $index),+> Projection<S, ($($index,)+)> for ($($item,)+)
        where
            $($item: Selectable<S, $index>),+
        {
            type Row = ($(<$item as Selectable<S, $index>>::Value,)+);

            fn terms(&self) -> Vec<Term> {
                vec![$(self.$n.term()),+]
            }

            fn decode(row: &Row) -> Result<Self::Row> {
                Ok(($(<$item as Selectable<S, $index>>::decode(row, $n)?,)+))
            }
        }
    };
}

tuple_projection!(A IA 0);
tuple_projection!(A IA 0, B IB 1);
tuple_projection!(A IA 0, B IB 1, C IC 2);
tuple_projection!(A IA 0, B IB 1, C IC 2, D ID 3);
tuple_projection!(A IA 0, B IB 1, C IC 2, D ID 3, E IE 4);
tuple_projection!(A IA 0, B IB 1, C IC 2, D ID 3, E IE 4, F IF 5);
tuple_projection!(A IA 0, B IB 1, C IC 2, D ID 3, E IE 4, F IF 5, G IG 6);
tuple_projection!(A IA 0, B IB 1, C IC 2, D ID 3, E IE 4, F IF 5, G IG 6, H IH 7);
tuple_projection!(A IA 0, B IB 1, C IC 2, D ID 3, E IE 4, F IF 5, G IG 6, H IH 7, J IJ 8);
tuple_projection!(A IA 0, B IB 1, C IC 2, D ID 3, E IE 4, F IF 5, G IG 6, H IH 7, J IJ 8, K IK 9);
tuple_projection!(
    A IA 0, B IB 1, C IC 2, D ID 3, E IE 4, F IF 5, G IG 6, H IH 7, J IJ 8, K IK 9, L IL 10
);
tuple_projection!(
    A IA 0, B IB 1, C IC 2, D ID 3, E IE 4, F IF 5, G IG 6, H IH 7, J IJ 8, K IK 9, L IL 10,
    N IN 11
);

/// One `ORDER BY` term of a report: a column ([`Field::asc`]) or an
/// aggregate ([`Aggregate::desc`](super::Aggregate::desc)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOrder {
    pub(crate) term: Term,
    pub(crate) descending: bool,
}

impl From<Order> for ReportOrder {
    fn from(order: Order) -> Self {
        ReportOrder {
            term: Term::Column(order.column),
            descending: order.descending,
        }
    }
}
