//! The way to the server: sockets (TCP, unix, TLS) and their split halves,
//! opening one with TLS as `sslmode` asks, deadlines, which scheduler
//! thread serves a connection, work moved off the scheduler, and the
//! `CancelRequest`'s own socket. Uses `wire` and below.

pub(crate) mod cancel_request;
pub(crate) mod deadline;
pub(crate) mod off_scheduler;
pub(crate) mod open_socket;
pub(crate) mod placement;
pub(crate) mod socket;
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(feature = "tls")]
pub(crate) mod tls_end_point;
#[cfg(feature = "tls")]
pub(crate) mod tls_halves;
