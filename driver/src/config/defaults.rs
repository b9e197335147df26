//! The defaults of a [`Config`]: what a setting is when neither the URL,
//! the builder nor the environment gives it (libpq's defaults where libpq
//! has the setting), and the range of `max_message_bytes`. `to_url` leaves
//! out every setting still at its default here.

use std::time::Duration;

use super::config::{config_error, Config, Host};
use super::{ChannelBindingMode, LoadBalanceHosts, SslMode, SslNegotiation, TargetSessionAttrs};
use crate::error::Error;

pub(super) const DEFAULT_PORT: u16 = 5432;
/// pgjdbc's default: long enough for a loaded server's authentication,
/// short enough that a silent peer surfaces as an error.
pub(super) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Statements slower than this are logged at warn level (`slow_statement_ms`).
pub(super) const DEFAULT_SLOW_STATEMENT: Duration = Duration::from_secs(1);
pub(super) const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(60);
pub(super) const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(10);
pub(super) const DEFAULT_KEEPALIVES_COUNT: u32 = 6;
pub(super) const DEFAULT_STATEMENT_CACHE_CAPACITY: usize = 256;
/// The default of `max_message_bytes`: PostgreSQL builds every message in
/// one buffer capped at 1 GB (`MaxAllocSize`), so a real server never sends
/// a larger one.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = (1 << 30) - 1;
/// The smallest `max_message_bytes`: every message type may be this long
/// (libpq's bound for the types that are never long).
pub const MIN_MAX_MESSAGE_BYTES: usize = 30_000;

/// A `Config` with every setting at its default and no host, user or
/// database given yet (the parsers fill those in): host `localhost`,
/// `sslmode=prefer`, the statement cache on. `scheme` is the URL scheme
/// that `to_url` writes.
pub(super) fn default_config(scheme: &'static str) -> Config {
    Config {
        scheme,
        user: String::new(),
        password: None,
        hosts: vec![Host::Tcp("localhost".to_owned())],
        ports: Vec::new(),
        target_session_attrs: TargetSessionAttrs::Any,
        load_balance_hosts: LoadBalanceHosts::Disable,
        dbname: String::new(),
        application_name: None,
        connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
        statement_timeout: None,
        query_timeout: None,
        slow_statement: Some(DEFAULT_SLOW_STATEMENT),
        keepalives: true,
        keepalives_idle: DEFAULT_KEEPALIVES_IDLE,
        keepalives_interval: DEFAULT_KEEPALIVES_INTERVAL,
        keepalives_count: DEFAULT_KEEPALIVES_COUNT,
        tcp_user_timeout: None,
        options: None,
        ssl_mode: SslMode::Prefer,
        channel_binding: ChannelBindingMode::Prefer,
        require_auth: None,
        ssl_root_cert: None,
        ssl_cert: None,
        ssl_key: None,
        ssl_negotiation: SslNegotiation::Postgres,
        statement_cache: true,
        coalesce_reads: true,
        statement_cache_capacity: DEFAULT_STATEMENT_CACHE_CAPACITY,
        max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        passfile_passwords: Vec::new(),
    }
}

/// Checks a `max_message_bytes` value against its range.
pub(super) fn check_max_message_bytes(bytes: usize) -> Result<usize, Error> {
    if (MIN_MAX_MESSAGE_BYTES..=DEFAULT_MAX_MESSAGE_BYTES).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(config_error(&format!(
            "invalid max_message_bytes `{bytes}`: expected {MIN_MAX_MESSAGE_BYTES} to {DEFAULT_MAX_MESSAGE_BYTES}"
        )))
    }
}
