//! Polymorphic loading for joined-table inheritance: a query on a base
//! model that returns each row as its most specific kind, an enum declared
//! with [`odm::polymorphic!`](crate::polymorphic).
//!
//! ```no_run
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Employee { #[odm(primary_key)] id: Option<i32>, name: String }
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Engineer { #[odm(parent)] employee: Employee, language: Option<String> }
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Manager { #[odm(parent)] employee: Employee, reports: Option<i32> }
//! odm::polymorphic! {
//!     /// Every employee as what it is.
//!     #[derive(Debug)]
//!     enum Staff: Employee {
//!         Engineer(Engineer),
//!         Manager(Manager),
//!     }
//! }
//! # fn demo(s: &mut odm::Session) -> odm::Result<()> {
//! for person in s.query::<Employee>().order_by(Employee::NAME.asc()).polymorphic::<Staff>()? {
//!     match person {
//!         Staff::Engineer(e) => println!("engineer {}", e.employee.name),
//!         Staff::Manager(m) => println!("manager {}", m.employee.name),
//!         Staff::Employee(e) => println!("employee {}", e.name),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! There is no discriminator column: a row is of a kind when that kind's
//! table has a row with its key. The base query runs as built (filters on
//! the base's columns, order, limit), then one query per kind loads the
//! kinds' rows for all the keys at once (`= ANY($1)`): 1 + kinds round
//! trips whatever the row count.

use std::collections::HashMap;

use super::Query;
use crate::error::{MapperError, Result};
use crate::model::{Model, Table};
use crate::query::sql;
use crate::types::ColumnType;
use green_postgres::Row;

/// One kind of a [`Polymorphic`] enum: its model's table and how to build
/// the enum from a row of that model.
#[derive(Debug)]
pub struct Kind<P> {
    /// The kind's table (a descendant of the base's).
    pub table: &'static Table,
    /// Builds the enum from a row holding the kind's lineage columns.
    pub decode: fn(&Row) -> Result<P>,
}

/// An enum of the concrete kinds of a base model, for
/// [`Query::polymorphic`]. Declare it with
/// [`odm::polymorphic!`](crate::polymorphic).
pub trait Polymorphic: Sized + 'static {
    /// The model queried; every kind inherits from it.
    type Base: Model;

    /// The kinds, in the order they are tried: a kind's descendants come
    /// before it (most specific first).
    fn kinds() -> Vec<Kind<Self>>;

    /// The variant of a row that is of no listed kind.
    fn from_base(base: Self::Base) -> Self;
}

/// The raw bytes of the key of `table`'s own row in a row holding its
/// lineage's columns: equal keys have equal bytes.
fn key_bytes(table: &'static Table, row: &Row) -> Option<Vec<u8>> {
    let at = table.width() - table.columns.len() + table.primary_key;
    row.raw(at).map(<[u8]>::to_vec)
}

/// [`Query::polymorphic`]: the base rows, then one query per kind for the
/// keys found.
pub(super) fn load<M: Model, P: Polymorphic<Base = M>>(mut query: Query<'_, M>) -> Result<Vec<P>> {
    let base = M::table();
    let kinds = P::kinds();
    for kind in &kinds {
        if !kind.table.lineage().iter().any(|t| std::ptr::eq(*t, base)) {
            return Err(MapperError::NotAKind {
                kind: kind.table.model,
                base: base.model,
            }
            .into());
        }
    }
    let rows = query.rows(sql::select)?;
    let key_at = base.width() - base.columns.len() + base.primary_key;
    let keys = rows
        .iter()
        .map(|row| <M::Key as ColumnType>::decode(row, key_at))
        .collect::<Result<Vec<M::Key>>>()?;
    let mut found: Vec<HashMap<Vec<u8>, P>> = Vec::with_capacity(kinds.len());
    for kind in &kinds {
        let mut of_kind = HashMap::new();
        if !keys.is_empty() {
            let statement = sql::select_by_keys(kind.table, &keys);
            let kind_rows = query.session.read(kind.table, |client| {
                client.query(&statement.sql, &statement.params)
            })?;
            for row in &kind_rows {
                if let Some(key) = key_bytes(kind.table, row) {
                    of_kind.insert(key, (kind.decode)(row)?);
                }
            }
        }
        found.push(of_kind);
    }
    rows.iter()
        .map(|row| {
            let key = key_bytes(base, row);
            let specific = key
                .as_ref()
                .and_then(|key| found.iter_mut().find_map(|of_kind| of_kind.remove(key)));
            match specific {
                Some(value) => Ok(value),
                None => Ok(P::from_base(M::from_row(row)?)),
            }
        })
        .collect()
}

/// Declares an enum of the concrete kinds of a base model (joined-table
/// inheritance) and implements [`Polymorphic`] for it, for
/// [`Query::polymorphic`]. The first variant holds rows of no listed kind
/// and is named after the base model. List more specific kinds first (a
/// `SeniorEngineer` before the `Engineer` it extends).
///
/// ```
/// # #[derive(odm::Model, Debug, Clone, Default)]
/// # struct Employee { #[odm(primary_key)] id: Option<i32>, name: String }
/// # #[derive(odm::Model, Debug, Clone, Default)]
/// # struct Engineer { #[odm(parent)] employee: Employee, language: Option<String> }
/// odm::polymorphic! {
///     #[derive(Debug)]
///     enum Staff: Employee {
///         Engineer(Engineer),
///     }
/// }
/// let _ = Staff::Employee(Employee::default());
/// ```
#[macro_export]
macro_rules! polymorphic {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $base:ident {
            $($variant:ident($kind:ty)),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            /// A row of no listed kind.
            $base($base),
            $(
                #[allow(missing_docs)]
                $variant($kind),
            )+
        }

        impl $crate::Polymorphic for $name {
            type Base = $base;

            fn kinds() -> ::std::vec::Vec<$crate::session::Kind<Self>> {
                ::std::vec![$(
                    $crate::session::Kind {
                        table: <$kind as $crate::Model>::table(),
                        decode: |row| ::core::result::Result::Ok(
                            $name::$variant(<$kind as $crate::Model>::from_row(row)?)
                        ),
                    }
                ),+]
            }

            fn from_base(base: $base) -> Self {
                $name::$base(base)
            }
        }
    };
}
