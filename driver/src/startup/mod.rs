//! Starting a session on an open socket: the startup message, the
//! authentication exchange and what the client lets the server ask for, up
//! to the first `ReadyForQuery`. Uses `net` and below.

pub(crate) mod auth_policy;
pub(crate) mod connect;
