//! The request engine: encoding a request, queueing it on a connection and
//! reading its answer — simple and extended queries, unnamed statements,
//! atomic batches, the statement cache and running statements through it
//! (`prepared.rs`). Uses `connection` and below.

pub(crate) mod atomic_batch;
pub(crate) mod prepared;
#[allow(clippy::module_inception)]
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod row_sink;
pub(crate) mod simple_query;
pub(crate) mod statement_cache;
pub(crate) mod statement_log;
pub(crate) mod unnamed_statement;
