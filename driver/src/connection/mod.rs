//! One open connection: its shared state and write queue, the writer and
//! reader coroutines, and the slots the reader fills with each request's
//! answer. Uses `startup` and below.

#[allow(clippy::module_inception)]
pub(crate) mod connection;
pub(crate) mod reader;
pub(crate) mod slot;
pub(crate) mod write_holds;
pub(crate) mod write_queue;
