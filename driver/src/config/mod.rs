//! Connection settings: [`Config`], built with [`Config::builder`] or
//! parsed from a database URL or a libpq `key=value` string, and written
//! back as a URL.
//!
//! Where each part lives: the key table and value parsers in `settings`,
//! the defaults in `defaults`, the URL form in `url`, the `key=value` form in `key_values`,
//! percent-encoding in `percent`, the builder in `builder`, writing a URL
//! in `to_url`, the authentication policy settings in `auth_settings`,
//! `sslmode`/`sslnegotiation` in `ssl_mode`, libpq's `PG*` environment
//! variables in `environment` and its password file in `passfile`.
//!
//! Parsing does no I/O; only [`Config::parse_with_env`] and
//! [`Config::from_env`] read the environment and the password file. Every error names the offending part of the input
//! and never contains the password.

mod auth_settings;
mod builder;
#[allow(clippy::module_inception)]
mod config;
mod defaults;
mod environment;
mod host_selection;
mod key_values;
mod passfile;
mod percent;
mod settings;
mod ssl_mode;
mod to_url;
mod url;

pub use auth_settings::{AuthMethod, ChannelBindingMode, RequireAuth};
pub use builder::ConfigBuilder;
pub use config::{Config, Host};
pub use defaults::{DEFAULT_MAX_MESSAGE_BYTES, MIN_MAX_MESSAGE_BYTES};
pub use environment::Environment;
pub use host_selection::{LoadBalanceHosts, TargetSessionAttrs};
pub(crate) use settings::parse_seconds;
pub use ssl_mode::{SslMode, SslNegotiation};
