//! [`MapperError`]: the ORM's misuse errors (binds, registry, keys, foreign
//! keys, the N+1 policy), carried by [`Error::Mapper`](crate::Error::Mapper).
//! Each names the bind, model, table or column at fault, in one lower-case
//! clause, so callers can match on the case instead of parsing text.

/// A mapper-level misuse: unknown bind or model, missing key, ambiguous
/// foreign key, a refused N+1 load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapperError {
    /// The binds given to a mapper have no `"default"` label.
    #[error("default datastore not specified")]
    MissingDefaultBind,
    /// The same bind label was given twice.
    #[error("bind `{label}` is given twice")]
    DuplicateBind {
        /// The repeated label.
        label: String,
    },
    /// A statement named a bind label the mapper does not have.
    #[error("bind `{label}` is not a bind of this mapper")]
    UnknownBind {
        /// The label asked for.
        label: String,
    },
    /// A model is bound (`#[odm(bind = "...")]`) to a label the mapper
    /// does not have.
    #[error("model `{model}` is bound to `{label}`, which is not a bind of this mapper")]
    UnboundModel {
        /// The model's name.
        model: &'static str,
        /// Its bind label.
        label: &'static str,
    },
    /// Two models claim the same table name.
    #[error("table `{table}` of model `{model}` is already registered by model `{existing}`")]
    TableTaken {
        /// The table name.
        table: &'static str,
        /// The model being registered.
        model: &'static str,
        /// The model already registered with that table.
        existing: &'static str,
    },
    /// A database administration call was given an empty name.
    #[error("{operation} needs a database name")]
    MissingDatabaseName {
        /// The call: `database_create` or `database_drop`.
        operation: &'static str,
    },
    /// The foreign keys of the registered tables form a cycle, so there is
    /// no creation order.
    #[error("foreign keys form a cycle between tables {}", .tables.join(", "))]
    ForeignKeyCycle {
        /// The tables left in the cycle.
        tables: Vec<&'static str>,
    },
    /// An object whose primary key is not set yet was asked for it (to be
    /// deleted).
    #[error("cannot delete a `{model}` whose primary key `{column}` is not set")]
    KeyNotSet {
        /// The model's name.
        model: &'static str,
        /// The primary key column.
        column: &'static str,
    },
    /// `related` found no foreign key from the model to the owner's table.
    #[error("model `{model}` has no foreign key to `{target}`")]
    NoForeignKey {
        /// The model loaded.
        model: &'static str,
        /// The owner's table.
        target: &'static str,
    },
    /// `related` found several foreign keys from the model to the owner's
    /// table and cannot choose.
    #[error("model `{model}` has several foreign keys to `{target}`; filter with a query instead")]
    SeveralForeignKeys {
        /// The model loaded.
        model: &'static str,
        /// The owner's table.
        target: &'static str,
    },
    /// A foreign key references a column its target table does not have.
    #[error("foreign key `{table}.{column}` references `{target}.{target_column}`, which does not exist")]
    DanglingForeignKey {
        /// The table holding the foreign key.
        table: &'static str,
        /// The foreign key column.
        column: &'static str,
        /// The referenced table.
        target: &'static str,
        /// The referenced column.
        target_column: &'static str,
    },
    /// The owner passed to `related` has no value in the referenced column.
    #[error("`{table}.{column}` of the owner is not set")]
    ReferencedValueNotSet {
        /// The owner's table.
        table: &'static str,
        /// The referenced column.
        column: &'static str,
    },
    /// A bulk update was given no column to set.
    #[error("update of `{table}` needs at least one column to set")]
    NothingToUpdate {
        /// The table updated.
        table: &'static str,
    },
    /// A bulk update assigned a column that is not the model's.
    #[error("`{table}.{column}` is not a column of model `{model}`")]
    ForeignColumn {
        /// The table named by the assignment.
        table: &'static str,
        /// The column named by the assignment.
        column: &'static str,
        /// The model updated.
        model: &'static str,
    },
    /// The same relation was loaded row by row with `related` more often
    /// than the threshold under [`LoadPolicy::Raise`](crate::LoadPolicy::Raise).
    #[error("n+1 loading: related::<{model}> through `{table}.{column}` ran {calls} times in one session; \
             load them for all owners at once with query::<Owner>().with_related::<{model}>()")]
    NPlusOne {
        /// The model loaded.
        model: &'static str,
        /// The table holding the foreign key.
        table: &'static str,
        /// The foreign key column.
        column: &'static str,
        /// How many loads the session has seen.
        calls: usize,
    },
    /// A session ran a statement after the transaction it belongs to (its
    /// own, or the outer one it joined) was committed or rolled back.
    #[error("the transaction this session belongs to has ended")]
    TransactionEnded,
    /// A session's connection to a bind was asked for while another call
    /// was using it (a joined session used from another coroutine) or after
    /// it was lost to a panic.
    #[error("the session's connection to bind `{label}` is in use by another call or was lost to a panic")]
    ConnectionBusy {
        /// The bind's label.
        label: String,
    },
    /// An autocommit session (see [`Mapper::autocommit`](crate::Mapper::autocommit))
    /// was asked for something that needs a transaction.
    #[error(
        "{operation} needs a transaction, and an autocommit session has none; use Mapper::begin"
    )]
    NoTransactionInAutocommit {
        /// The call: `nested` or `set_isolation`.
        operation: &'static str,
    },
    /// An [`AtomicBatch`](crate::session::AtomicBatch) was given a write
    /// for another bind than its first write's (a batch is one transaction
    /// on one connection).
    #[error("an atomic batch writes to one bind: `{first}` was its first, `{other}` is another")]
    AtomicBatchAcrossBinds {
        /// The bind of the batch's first write.
        first: String,
        /// The other bind.
        other: String,
    },
    /// An [`AtomicBatch`](crate::session::AtomicBatch) was given a child
    /// model, whose parent row must be written and read back first.
    #[error("model `{model}` is a child model, which an atomic batch cannot write (its parent row is read back first); use Mapper::begin")]
    ChildModelInAtomicBatch {
        /// The child model.
        model: &'static str,
    },
    /// A kind of a [`Polymorphic`](crate::Polymorphic) enum does not
    /// inherit (through `#[odm(parent)]`) from the enum's base model.
    #[error("model `{kind}` does not inherit from `{base}`, so it is no kind of it")]
    NotAKind {
        /// The kind's model.
        kind: &'static str,
        /// The base model queried.
        base: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_names_the_key_at_fault() {
        let unknown = MapperError::UnknownBind {
            label: "archive".into(),
        };
        assert_eq!(
            unknown.to_string(),
            "bind `archive` is not a bind of this mapper"
        );
        let cycle = MapperError::ForeignKeyCycle {
            tables: vec!["a", "b"],
        };
        assert_eq!(
            cycle.to_string(),
            "foreign keys form a cycle between tables a, b"
        );
    }
}
