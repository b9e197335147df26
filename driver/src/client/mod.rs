//! The public client API: [`Client`](client::Client) and its
//! [`Transaction`](transaction::Transaction)s, COPY, notifications, the
//! cancel token, and choosing a host among several. Uses `request` and
//! below.

pub(crate) mod cancel_token;
#[allow(clippy::module_inception)]
pub(crate) mod client;
pub(crate) mod copy;
pub(crate) mod host_choice;
pub(crate) mod notifications;
pub(crate) mod observe;
pub(crate) mod read_only;
pub(crate) mod transaction;
pub(crate) mod transaction_abort;
