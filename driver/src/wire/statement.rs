//! Prepared statements and their result columns.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::RowDescriptionBody;
use postgres_types::Type;

use crate::error::Error;

/// A result column: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    type_: Type,
}

impl Column {
    pub(crate) fn new(name: String, type_: Type) -> Column {
        Column { name, type_ }
    }

    /// The column's name (its alias, if the query gave one).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's type.
    pub fn type_(&self) -> &Type {
        &self.type_
    }
}

/// A statement prepared on one connection: its parameter types and result
/// columns. Cheap to clone. Used on another connection, it is prepared
/// there again (through that connection's cache) from its SQL; so is one
/// whose server-side statement was closed meanwhile (`DISCARD ALL`,
/// `DEALLOCATE ALL`, a schema change). A statement held here is never
/// evicted from the connection's cache while held.
#[derive(Clone)]
pub struct Statement(Arc<StatementInner>);

struct StatementInner {
    /// Server-side name; empty for the unnamed statement (cache disabled),
    /// which is parsed again with every execution (in the same round trip,
    /// see `request/unnamed_statement.rs`).
    name: String,
    sql: String,
    connection_id: u64,
    params: Vec<Type>,
    columns: Arc<[Column]>,
    /// The server no longer has it (evicted, stale or forgotten): runs go
    /// through the connection's cache, which prepares the SQL again.
    closed: AtomicBool,
}

impl fmt::Debug for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statement")
            .field("name", &self.0.name)
            .field("sql", &self.0.sql)
            .field("params", &self.0.params)
            .field("columns", &self.0.columns)
            .finish()
    }
}

impl Statement {
    pub(crate) fn new(
        name: String,
        sql: String,
        connection_id: u64,
        params: Vec<Type>,
        columns: Vec<Column>,
    ) -> Statement {
        Statement(Arc::new(StatementInner {
            name,
            sql,
            connection_id,
            params,
            columns: columns.into(),
            closed: AtomicBool::new(false),
        }))
    }

    /// The same statement with other result columns (an unnamed one whose
    /// run the server described differently: the schema changed).
    pub(crate) fn with_columns(&self, columns: Arc<[Column]>) -> Statement {
        Statement(Arc::new(StatementInner {
            name: self.0.name.clone(),
            sql: self.0.sql.clone(),
            connection_id: self.0.connection_id,
            params: self.0.params.clone(),
            columns,
            closed: AtomicBool::new(false),
        }))
    }

    /// `Ok` when `given` parameter values fit the statement's parameters,
    /// else [`Error::ParameterCount`] (checked before anything is sent).
    pub(crate) fn check_param_count(&self, given: usize) -> Result<(), Error> {
        let expected = self.0.params.len();
        if given == expected {
            Ok(())
        } else {
            Err(Error::ParameterCount { expected, given })
        }
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.0.sql
    }

    /// The types the server inferred for `$1`, `$2`, ...
    pub fn params(&self) -> &[Type] {
        &self.0.params
    }

    /// The result columns (empty for statements that return no rows).
    pub fn columns(&self) -> &[Column] {
        &self.0.columns
    }

    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    pub(crate) fn shared_columns(&self) -> &Arc<[Column]> {
        &self.0.columns
    }

    pub(crate) fn connection_id(&self) -> u64 {
        self.0.connection_id
    }

    /// Records that the server-side statement is gone (or about to be:
    /// `Close` is queued).
    pub(crate) fn mark_closed(&self) {
        self.0.closed.store(true, Ordering::Relaxed);
    }

    /// True once the server-side statement is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Relaxed)
    }

    /// True while a handle other than this one exists: a task or caller
    /// holds the statement, so it must not be closed.
    pub(crate) fn is_held_elsewhere(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// True for the unnamed statement, which must be parsed again with
    /// each execution.
    pub(crate) fn is_unnamed(&self) -> bool {
        self.0.name.is_empty()
    }
}

/// The type for an OID; types outside the built-in catalog get a
/// placeholder that only raw access and `FromSql` impls accepting any type
/// can read.
pub(crate) fn type_for_oid(oid: u32) -> Type {
    Type::from_oid(oid).unwrap_or_else(|| {
        Type::new(
            format!("oid_{oid}"),
            oid,
            postgres_types::Kind::Simple,
            "public".to_owned(),
        )
    })
}

/// The columns a `RowDescription` describes.
pub(crate) fn columns_of(body: &RowDescriptionBody) -> Result<Vec<Column>, Error> {
    let mut columns = Vec::new();
    let mut fields = body.fields();
    while let Some(field) = fields.next()? {
        columns.push(Column::new(
            field.name().to_owned(),
            type_for_oid(field.type_oid()),
        ));
    }
    Ok(columns)
}

/// Makes `columns` the ones `body` describes: kept as they are (no
/// allocation) when they match by name and type, replaced otherwise.
pub(crate) fn adopt_described_columns(
    columns: &mut Arc<[Column]>,
    body: &RowDescriptionBody,
) -> Result<(), Error> {
    if !same_columns(columns, body)? {
        *columns = columns_of(body)?.into();
    }
    Ok(())
}

/// True when `body` describes exactly `columns`: the same number, names
/// and type OIDs, in order.
fn same_columns(columns: &[Column], body: &RowDescriptionBody) -> Result<bool, Error> {
    let mut fields = body.fields();
    let mut known = columns.iter();
    loop {
        match (fields.next()?, known.next()) {
            (None, None) => return Ok(true),
            (Some(field), Some(column)) => {
                if field.type_oid() != column.type_().oid() || field.name() != column.name() {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
}
