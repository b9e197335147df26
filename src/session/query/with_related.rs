//! [`WithRelated`]: batched eager loading. `s.query::<Owner>()
//! .with_related::<Pet>().all()` loads the owners, then the pets of ALL of
//! them in one more query — `WHERE "pet"."owner_id" = ANY($1)` with the
//! owners' keys as ONE array parameter, so the statement text (and the
//! statement cache entry) is the same whatever the number of owners — and
//! returns each owner with its pets, in the owners' order, each owner's
//! pets ordered by their primary key (as [`Session::related`] returns them).
//!
//! ```no_run
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Owner { #[odm(primary_key)] id: Option<i32>, name: String }
//! # #[derive(odm::Model, Debug, Clone, Default)]
//! # struct Pet { #[odm(primary_key)] id: Option<i32>, #[odm(foreign_key = "owner.id")] owner_id: Option<i32> }
//! # fn demo(s: &mut odm::Session) -> odm::Result<()> {
//! for (owner, pets) in s.query::<Owner>().order_by(Owner::NAME.asc()).with_related::<Pet>().all()? {
//!     println!("{} has {} pets", owner.name, pets.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Before the session's first write the two queries run as two autocommit
//! reads (see [`crate::session`]): a pet added between them by another
//! transaction may show up under its owner. Start the transaction first
//! (e.g. [`Session::set_isolation`]) when that matters.

use std::marker::PhantomData;

use super::{decode_each, Query};
use crate::error::Result;
use crate::model::{Model, Record, Table};
use crate::query::{sql, Expr, Order, ValueArray};

#[cfg(doc)]
use crate::session::Session;

/// A query over owners `M` that also loads, in one more query, the rows of
/// `C` pointing at each of them; made by [`Query::with_related`].
pub struct WithRelated<'s, M, C> {
    query: Query<'s, M>,
    _child: PhantomData<fn() -> C>,
}

impl<M, C> std::fmt::Debug for WithRelated<'_, M, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithRelated")
            .field("query", &self.query)
            .field("related", &std::any::type_name::<C>())
            .finish()
    }
}

impl<'s, M: Model, C: Model> WithRelated<'s, M, C> {
    /// `query` with the rows of `C` ([`Query::with_related`]).
    pub(super) fn new(query: Query<'s, M>) -> Self {
        WithRelated {
            query,
            _child: PhantomData,
        }
    }

    /// Keeps the owners matching `expr` (`AND`-ed with earlier filters).
    pub fn filter(mut self, expr: Expr) -> Self {
        self.query = self.query.filter(expr);
        self
    }

    /// Orders the owners by a column; later calls add tie-breakers.
    pub fn order_by(mut self, order: Order) -> Self {
        self.query = self.query.order_by(order);
        self
    }

    /// At most `n` owners.
    pub fn limit(mut self, n: i64) -> Self {
        self.query = self.query.limit(n);
        self
    }

    /// Skips the first `n` owners.
    pub fn offset(mut self, n: i64) -> Self {
        self.query = self.query.offset(n);
        self
    }

    /// Every matching owner with its `C` rows (an owner without any gets an
    /// empty `Vec`).
    ///
    /// # Errors
    ///
    /// The errors of [`Table::foreign_key_to`] when `C` has no foreign key,
    /// or several, to `M`'s table (or its ancestors), before any query
    /// runs; the server's error; a decoding error naming the column.
    pub fn all(self) -> Result<Vec<(M, Vec<C>)>> {
        let child_table = C::table();
        // the owner's record chain: its own table, then its ancestors'
        let mut targets = M::table().lineage();
        targets.reverse();
        let relation = child_table.foreign_key_to(&targets)?;
        let statement = sql::select(M::table(), &self.query.parts);
        let owners: Vec<M> = self.query.session.read(M::table(), |client| {
            decode_each(client, &statement.sql, &statement.params, M::from_row)
        })??;
        let mut children: Vec<Vec<C>> = owners.iter().map(|_| Vec::new()).collect();
        // the referenced value of each owner (owners whose value is NULL
        // have no children and are left out); `slots[i]` is the owner of
        // `keys[i]`
        let mut keys = Vec::with_capacity(owners.len());
        let mut slots = Vec::with_capacity(owners.len());
        for (slot, owner) in owners.iter().enumerate() {
            let record = record_of(owner, relation.target);
            if let Some(value) = record.values()[relation.target_index] {
                keys.push(value);
                slots.push(slot);
            }
        }
        if !keys.is_empty() {
            let keys = ValueArray(keys);
            let statement =
                sql::select_related_batch(child_table, relation.table, relation.column, &keys);
            // each child with its owner's position, built as its row arrives
            let found: Vec<(i32, C)> = self.query.session.read(child_table, |client| {
                decode_each(client, &statement.sql, &statement.params, |row| {
                    Ok((row.try_get(0usize)?, C::from_row_at(row, 1)?))
                })
            })??;
            let count = found.len();
            for (position, child) in found {
                // array_position is 1-based; the WHERE clause guarantees a match
                let slot = usize::try_from(position - 1)
                    .ok()
                    .and_then(|i| slots.get(i).copied())
                    .ok_or(crate::error::Error::RowCount(count))?;
                children[slot].push(child);
            }
        }
        Ok(owners.into_iter().zip(children).collect())
    }
}

/// The record of `owner`'s chain (itself or an ancestor) stored in
/// `table`.
fn record_of<'a>(owner: &'a dyn Record, table: &'static Table) -> &'a dyn Record {
    let mut record = owner;
    while record.record_table().name != table.name {
        match record.parent_record() {
            Some(parent) => record = parent,
            None => break,
        }
    }
    record
}
