//! The protocol's bytes and values, without I/O: encoding `Bind`/`Execute`,
//! decoding rows, row descriptions, command tags, server errors and
//! notifications, and the values they carry (statements and columns, the
//! transaction status). Uses `error` only.

pub(crate) mod bind_execute;
pub(crate) mod command_tag;
pub(crate) mod frame;
pub(crate) mod message_shape;
pub(crate) mod notification;
pub(crate) mod row;
pub(crate) mod server_error;
pub(crate) mod statement;
pub(crate) mod transaction_status;
