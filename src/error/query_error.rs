//! [`QueryError`]: what a report query (joins, projections, aggregates)
//! refuses before it reaches the server, naming the tables and columns.

/// A report query the builder cannot turn into SQL; it surfaces as
/// [`Error::Query`](crate::Error::Query) from the call that runs the query
/// (`all`, `first`, `one`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No declared foreign key links the joined table to a table already in
    /// the query.
    #[error("no foreign key joins `{joined}` to {in_query}")]
    NoForeignKey {
        /// The table of the model passed to `join`.
        joined: &'static str,
        /// The tables already in the query, quoted and comma-separated.
        in_query: String,
    },

    /// Several declared foreign keys link the joined table to the query;
    /// the builder does not guess which one is meant.
    #[error("`{joined}` can be joined along several foreign keys: {candidates}")]
    AmbiguousForeignKey {
        /// The table of the model passed to `join`.
        joined: &'static str,
        /// The candidate keys as `table.column -> table.column`.
        candidates: String,
    },

    /// The model (or one of its parent tables) is in the query already;
    /// joining the same table twice is not supported.
    #[error("table `{0}` is already in the query")]
    AlreadyJoined(&'static str),

    /// The joined model is bound to another database than the query's first
    /// model.
    #[error("table `{joined}` is bound to `{joined_bind}`, the query to `{bind}`")]
    DifferentBind {
        /// The table of the model passed to `join`.
        joined: &'static str,
        /// Its bind.
        joined_bind: &'static str,
        /// The bind of the query's first model.
        bind: &'static str,
    },

    /// A filter or order term names a column of a model that is not in the
    /// query.
    #[error("column `{table}.{column}` belongs to no table of the query")]
    NotInQuery {
        /// The column's table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
}

impl From<QueryError> for crate::error::Error {
    fn from(e: QueryError) -> Self {
        crate::error::Error::Query(Box::new(e))
    }
}
