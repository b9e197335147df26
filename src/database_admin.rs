//! Database administration on every bind's server:
//! [`Mapper::database_create`], [`Mapper::database_drop`],
//! [`Mapper::database_exist`], [`Mapper::database_all`]. Each runs on a
//! pooled connection of the bind, outside any session.

use std::collections::HashMap;

use postgres_protocol::escape::escape_identifier;

use crate::engine::Engine;
use crate::error::{MapperError, Result};
use crate::mapper::Mapper;
use green_postgres::seam::require_green;
use green_postgres::sqlstate;
use green_postgres::Config;

impl Mapper {
    /// Creates database `name` on the server of every bind and returns a new
    /// mapper whose binds point at it (same labels, users and settings), with
    /// no models registered — as pulsar-odm does.
    ///
    /// # Errors
    ///
    /// [`MapperError::MissingDatabaseName`] for an empty name; the
    /// wrong-context error off a green worker; the server's error (e.g.
    /// 42P04 when it exists).
    pub fn database_create(&self, name: &str) -> Result<Mapper> {
        check_name("database_create", name)?;
        require_green("database_create")?;
        let mut binds = Vec::new();
        for (label, engine) in self.binds() {
            let conn = engine.pool().acquire()?;
            conn.batch_execute(&format!("CREATE DATABASE {}", escape_identifier(name)))?;
            let config: Config = engine.config().with_dbname(name);
            let options = engine.pool().options().clone();
            binds.push((label.to_owned(), Engine::with_options(config, options)));
        }
        Mapper::from_engines(binds)
    }

    /// Drops database `name` on the server of every bind, if it exists,
    /// closing other sessions connected to it (`WITH (FORCE)`).
    ///
    /// # Errors
    ///
    /// [`MapperError::MissingDatabaseName`] for an empty name; the
    /// wrong-context error off a green worker; the server's error (e.g.
    /// when `name` is the bind's own database).
    pub fn database_drop(&self, name: &str) -> Result<()> {
        check_name("database_drop", name)?;
        require_green("database_drop")?;
        for (_, engine) in self.binds() {
            let conn = engine.pool().acquire()?;
            conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                escape_identifier(name)
            ))?;
        }
        Ok(())
    }

    /// Whether each bind's database exists (it can be connected to): bind
    /// label → bool.
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker; connection errors other
    /// than "database does not exist" (3D000).
    pub fn database_exist(&self) -> Result<HashMap<String, bool>> {
        require_green("database_exist")?;
        let mut out = HashMap::new();
        for (label, engine) in self.binds() {
            let exists = match engine.pool().acquire() {
                Ok(conn) => conn
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = current_database())",
                        &[],
                    )?
                    .try_get::<usize, bool>(0)?,
                Err(e) if e.code() == Some(sqlstate::INVALID_CATALOG_NAME) => false,
                Err(e) => return Err(e.into()),
            };
            out.insert(label.to_owned(), exists);
        }
        Ok(out)
    }

    /// The databases on each bind's server (templates excluded, sorted):
    /// bind label → names.
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker; connection errors.
    pub fn database_all(&self) -> Result<HashMap<String, Vec<String>>> {
        require_green("database_all")?;
        let mut out = HashMap::new();
        for (label, engine) in self.binds() {
            let conn = engine.pool().acquire()?;
            let rows = conn.query(
                "SELECT datname::text FROM pg_database WHERE NOT datistemplate ORDER BY datname",
                &[],
            )?;
            let names = rows
                .iter()
                .map(|r| r.try_get::<usize, String>(0))
                .collect::<green_postgres::Result<Vec<_>>>()?;
            out.insert(label.to_owned(), names);
        }
        Ok(out)
    }
}

fn check_name(operation: &'static str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(MapperError::MissingDatabaseName { operation }.into());
    }
    Ok(())
}
