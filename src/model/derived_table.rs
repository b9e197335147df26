//! What the `Table` static of `#[derive(Model)]` is built with and no user
//! names: the const helpers that decide a column's identity and default
//! from its attributes, and the per-table cache of SQL text. Public only
//! through the hidden [`odm::__private`](crate::__private), which the
//! derive's generated code names; not a public API.

use std::sync::OnceLock;

/// SQL text that depends only on the table, built on first use and kept for
/// the life of the process (the derive puts one in every [`Table`](crate::model::Table)).
#[derive(Debug)]
pub struct SqlCache {
    pub(crate) select: OnceLock<String>,
    pub(crate) get: OnceLock<String>,
}

impl SqlCache {
    /// An empty cache (const, for the derive's static).
    pub const fn new() -> SqlCache {
        SqlCache {
            select: OnceLock::new(),
            get: OnceLock::new(),
        }
    }
}

impl Default for SqlCache {
    fn default() -> Self {
        SqlCache::new()
    }
}

/// Decides whether a key column is an identity column (const helper for the
/// derive): an `Option` integer key without an explicit default.
pub const fn key_identity(
    primary_key: bool,
    nullable: bool,
    integer: bool,
    has_default: bool,
) -> bool {
    primary_key && nullable && integer && !has_default
}

/// The default of a column (const helper for the derive): the explicit one,
/// else the type's key default for an `Option` key (UUID keys).
pub const fn column_default(
    explicit: Option<&'static str>,
    primary_key: bool,
    nullable: bool,
    key_default: Option<&'static str>,
) -> Option<&'static str> {
    match explicit {
        Some(d) => Some(d),
        None if primary_key && nullable => key_default,
        None => None,
    }
}
