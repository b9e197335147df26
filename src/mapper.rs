//! [`Mapper`]: the binds (labelled engines), the model registry, DDL and
//! database management. The entry point of the ORM, as in pulsar-odm.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::ddl;
use crate::model::{Model, Table};
use crate::pg::Config;
use crate::query::quote_ident;
use crate::session::Session;
use crate::{Engine, Error, Result};

/// The label of the bind used by models without `#[odm(bind = "...")]`.
pub const DEFAULT_BIND: &str = "default";

/// The object data mapper: labelled database engines ("binds"), the models
/// registered on them, and the entry points to sessions.
///
/// A cheap, cloneable handle (clones share engines and registry), `Send +
/// Sync`. Creating one does no I/O; everything that talks to the database
/// must run on a green worker and otherwise fails at once with an error
/// starting `acquire in main greenlet`.
///
/// ```
/// let mp = odm::Mapper::new("postgresql+green://odm:odmtest@127.0.0.1:5432/odmtests?pool_size=7&pool_timeout=15")?;
/// assert_eq!(mp.engine(None).unwrap().pool().max_size(), 7);
/// let err = odm::Mapper::with_binds([("archive", "postgresql://odm@localhost/archive")]).unwrap_err();
/// assert_eq!(err.to_string(), "default datastore not specified");
/// # Ok::<(), odm::Error>(())
/// ```
#[derive(Clone)]
pub struct Mapper {
    inner: Arc<MapperInner>,
}

struct MapperInner {
    /// Labelled engines, in the order given.
    binds: Vec<(String, Engine)>,
    /// Registered models, in registration order.
    registry: RwLock<Vec<&'static Table>>,
}

impl fmt::Debug for Mapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models: Vec<&str> = self.inner.registry.read().iter().map(|t| t.name).collect();
        f.debug_struct("Mapper")
            .field("binds", &self.inner.binds)
            .field("models", &models)
            .finish()
    }
}

/// Fails at once off a green worker.
pub(crate) fn check_context(operation: &'static str) -> Result<()> {
    if may::coroutine::is_coroutine() {
        Ok(())
    } else {
        Err(Error::wrong_context(operation))
    }
}

impl Mapper {
    /// A mapper with one bind, `"default"`, on `url`. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a malformed URL.
    pub fn new(url: &str) -> Result<Mapper> {
        Mapper::with_binds([(DEFAULT_BIND, url)])
    }

    /// A mapper with one bind, `"default"`, on `config` with a pool of
    /// `options`: the same as [`Mapper::new`] without a URL. No I/O.
    ///
    /// ```
    /// use odm::pg::Config;
    /// use odm::pool::PoolOptions;
    ///
    /// let config = Config::builder().host("127.0.0.1").user("odm").dbname("app").build()?;
    /// let mp = odm::Mapper::with_options(config, PoolOptions::new().max_size(7))?;
    /// assert_eq!(mp.engine(None).unwrap().pool().max_size(), 7);
    /// # Ok::<(), odm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// None today; a `Result` as every other constructor returns one.
    pub fn with_options(config: Config, options: crate::pool::PoolOptions) -> Result<Mapper> {
        let engine = Engine::with_options(config, options);
        Mapper::from_engines(vec![(DEFAULT_BIND.to_owned(), engine)])
    }

    /// A mapper with several labelled binds; one must be `"default"`. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] `"default datastore not specified"` without a
    /// `"default"` label, or naming a label given twice; [`Error::Config`]
    /// for a malformed URL.
    pub fn with_binds<I, K, V>(binds: I) -> Result<Mapper>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        let mut engines = Vec::new();
        for (label, url) in binds {
            let label = label.into();
            let engine = Engine::new(url.as_ref())?;
            engines.push((label, engine));
        }
        Mapper::from_engines(engines)
    }

    /// A mapper over existing engines; one label must be `"default"`.
    ///
    /// # Errors
    ///
    /// As [`Mapper::with_binds`].
    pub fn from_engines(binds: Vec<(String, Engine)>) -> Result<Mapper> {
        if !binds.iter().any(|(label, _)| label == DEFAULT_BIND) {
            return Err(Error::Mapper("default datastore not specified".into()));
        }
        for (i, (label, _)) in binds.iter().enumerate() {
            if binds[..i].iter().any(|(other, _)| other == label) {
                return Err(Error::Mapper(format!("bind `{label}` is given twice")));
            }
        }
        Ok(Mapper {
            inner: Arc::new(MapperInner {
                binds,
                registry: RwLock::new(Vec::new()),
            }),
        })
    }

    /// The binds: `(label, engine)` pairs, in the order given.
    pub fn binds(&self) -> Vec<(&str, &Engine)> {
        self.inner
            .binds
            .iter()
            .map(|(l, e)| (l.as_str(), e))
            .collect()
    }

    /// The engine of a bind label; `None` is the default bind.
    pub fn engine(&self, label: Option<&str>) -> Option<&Engine> {
        let label = label.unwrap_or(DEFAULT_BIND);
        self.inner
            .binds
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, e)| e)
    }

    /// The engine a table lives on.
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] naming the model and label when the mapper has no
    /// such bind.
    pub fn engine_for(&self, table: &Table) -> Result<&Engine> {
        let label = table.bind_label();
        self.engine(Some(label)).ok_or_else(|| {
            Error::Mapper(format!(
                "model `{}` is bound to `{label}`, which is not a bind of this mapper",
                table.model
            ))
        })
    }

    /// Registers a model (and its parents, for joined-table inheritance).
    /// Registering the same model again does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] when the model's bind label is not a bind of this
    /// mapper, or another model already uses its table name.
    pub fn register<M: Model>(&self) -> Result<()> {
        for table in M::table().lineage() {
            self.register_table(table)?;
        }
        Ok(())
    }

    fn register_table(&self, table: &'static Table) -> Result<()> {
        self.engine_for(table)?;
        let mut registry = self.inner.registry.write();
        if let Some(existing) = registry.iter().find(|t| t.name == table.name) {
            if std::ptr::eq(*existing, table) {
                return Ok(());
            }
            return Err(Error::Mapper(format!(
                "table `{}` of model `{}` is already registered by model `{}`",
                table.name, table.model, existing.model
            )));
        }
        if table.create_sql.is_some() && table.drop_sql.is_none() {
            log::warn!(
                "model `{}` has create_sql but no drop_sql; table_drop will not drop `{}` \
                 (add #[odm(drop_sql = \"...\")] to mute this warning)",
                table.model,
                table.name
            );
        }
        registry.push(table);
        Ok(())
    }

    /// The registered models' tables, in registration order.
    pub fn models(&self) -> Vec<&'static Table> {
        self.inner.registry.read().clone()
    }

    /// A registered model by its lower-case name (`"task"` for `Task`) or
    /// its table name.
    pub fn model(&self, name: &str) -> Option<&'static Table> {
        let registry = self.inner.registry.read();
        registry
            .iter()
            .find(|t| t.model.eq_ignore_ascii_case(name))
            .or_else(|| registry.iter().find(|t| t.name == name))
            .copied()
    }

    /// The SQL dialect of a registered model's engine: `Some("postgresql")`,
    /// or `None` for an unknown model.
    pub fn dialect(&self, model: &str) -> Option<&'static str> {
        let table = self.model(model)?;
        self.engine_for(table).ok().map(|e| e.dialect())
    }

    /// The registered tables living on bind `label`.
    fn tables_of(&self, label: &str) -> Vec<&'static Table> {
        self.inner
            .registry
            .read()
            .iter()
            .copied()
            .filter(|t| t.bind_label() == label)
            .collect()
    }

    /// Creates every registered table that does not exist yet, bind by bind,
    /// tables before the tables referencing them, custom (`create_sql`)
    /// models such as views last. Idempotent. Each bind's DDL runs in one
    /// transaction.
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker; [`Error::Mapper`] for a
    /// foreign-key cycle; the server's error for bad DDL.
    pub fn table_create(&self) -> Result<()> {
        check_context("table_create")?;
        self.ddl_per_bind(ddl::creation_order, |session, label, table| {
            if table.is_custom() {
                if relation_exists(session, label, table.name)? {
                    return Ok(());
                }
                for sql in ddl::create_table_sql(table) {
                    session.batch_execute_on(label, &sql)?;
                }
                Ok(())
            } else {
                let sql = ddl::create_table_sql(table).join(";\n");
                session.batch_execute_on(label, &sql)
            }
        })
    }

    /// Runs `apply` on every registered table of each bind, in `order`, in
    /// one session (one transaction) per bind that has tables.
    fn ddl_per_bind(
        &self,
        order: fn(&[&'static Table]) -> Result<Vec<&'static Table>>,
        mut apply: impl FnMut(&mut Session, &str, &'static Table) -> Result<()>,
    ) -> Result<()> {
        for (label, _) in &self.inner.binds {
            let tables = order(&self.tables_of(label))?;
            if tables.is_empty() {
                continue;
            }
            let mut session = self.session()?;
            for table in tables {
                apply(&mut session, label, table)?;
            }
            session.commit()?;
        }
        Ok(())
    }

    /// Drops every registered table that exists, bind by bind, in the reverse
    /// of the creation order: custom models (views) first with their
    /// `drop_sql` (a custom model without `drop_sql` is skipped with a
    /// warning). Idempotent.
    ///
    /// # Errors
    ///
    /// As [`Mapper::table_create`].
    pub fn table_drop(&self) -> Result<()> {
        check_context("table_drop")?;
        self.ddl_per_bind(ddl::drop_order, |session, label, table| {
            match ddl::drop_table_sql(table) {
                Some(sql) if table.is_custom() => {
                    if relation_exists(session, label, table.name)? {
                        session.batch_execute_on(label, &sql)?;
                    }
                }
                Some(sql) => session.batch_execute_on(label, &sql)?,
                None => log::warn!(
                    "model `{}` has create_sql but no drop_sql; `{}` is not dropped",
                    table.model,
                    table.name
                ),
            }
            Ok(())
        })
    }

    /// The base tables of the current schema on every bind: `(label, sorted
    /// table names)` pairs, in bind order.
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker; connection errors.
    pub fn tables(&self) -> Result<Vec<(String, Vec<String>)>> {
        check_context("tables")?;
        let mut out = Vec::new();
        for (label, engine) in &self.inner.binds {
            let conn = engine.pool().acquire()?;
            let rows = conn.query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 ORDER BY table_name",
                &[],
            )?;
            let names = rows
                .iter()
                .map(|r| r.try_get::<usize, String>(0))
                .collect::<Result<Vec<_>>>()?;
            out.push((label.clone(), names));
        }
        Ok(out)
    }

    /// Creates database `name` on the server of every bind and returns a new
    /// mapper whose binds point at it (same labels, users and settings), with
    /// no models registered — as pulsar-odm does.
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] for an empty name; the wrong-context error off a
    /// green worker; the server's error (e.g. 42P04 when it exists).
    pub fn database_create(&self, name: &str) -> Result<Mapper> {
        check_name("database_create", name)?;
        check_context("database_create")?;
        let mut binds = Vec::new();
        for (label, engine) in &self.inner.binds {
            let conn = engine.pool().acquire()?;
            conn.batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))?;
            let config: Config = engine.config().with_dbname(name);
            let options = engine.pool().options().clone();
            binds.push((label.clone(), Engine::with_options(config, options)));
        }
        Mapper::from_engines(binds)
    }

    /// Drops database `name` on the server of every bind, if it exists,
    /// closing other sessions connected to it (`WITH (FORCE)`).
    ///
    /// # Errors
    ///
    /// [`Error::Mapper`] `"database_drop needs a database name"` for an
    /// empty name; the wrong-context error off a green worker; the server's
    /// error (e.g. when `name` is the bind's own database).
    pub fn database_drop(&self, name: &str) -> Result<()> {
        check_name("database_drop", name)?;
        check_context("database_drop")?;
        for (_, engine) in &self.inner.binds {
            let conn = engine.pool().acquire()?;
            conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
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
        check_context("database_exist")?;
        let mut out = HashMap::new();
        for (label, engine) in &self.inner.binds {
            let exists = match engine.pool().acquire() {
                Ok(conn) => conn
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = current_database())",
                        &[],
                    )?
                    .try_get::<usize, bool>(0)?,
                Err(e) if e.code() == Some("3D000") => false,
                Err(e) => return Err(e),
            };
            out.insert(label.clone(), exists);
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
        check_context("database_all")?;
        let mut out = HashMap::new();
        for (label, engine) in &self.inner.binds {
            let conn = engine.pool().acquire()?;
            let rows = conn.query(
                "SELECT datname::text FROM pg_database WHERE NOT datistemplate ORDER BY datname",
                &[],
            )?;
            let names = rows
                .iter()
                .map(|r| r.try_get::<usize, String>(0))
                .collect::<Result<Vec<_>>>()?;
            out.insert(label.clone(), names);
        }
        Ok(out)
    }

    /// Closes every bind's pool: idle connections are closed, checked-out
    /// ones when returned, and further acquires fail with
    /// [`Error::PoolClosed`].
    pub fn close(&self) {
        for (_, engine) in &self.inner.binds {
            engine.pool().close();
        }
    }

    /// A new session. No connection is taken until the first statement; the
    /// transaction starts with the first write (see [`crate::session`] for
    /// exactly what that guarantees). Dropped without [`Session::commit`],
    /// it rolls back.
    ///
    /// # Errors
    ///
    /// The wrong-context error (`acquire in main greenlet: session ...`) off
    /// a green worker.
    pub fn session(&self) -> Result<Session> {
        check_context("session")?;
        Ok(Session::new(self.clone()))
    }

    /// Runs `work` in a new session's transaction: commits when it returns
    /// `Ok`, rolls back when it returns `Err` (that error is returned) or
    /// panics (the panic continues after the rollback).
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker (before `work` runs);
    /// `work`'s error; [`Error::RolledBack`] when `work` returned `Ok` but
    /// nothing was committed: a statement inside it failed and its error was
    /// ignored (the cause is that error), or the commit itself failed (a
    /// deferred constraint, a serialization failure). See
    /// [`Session::commit`].
    pub fn begin<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&mut Session) -> Result<T>,
    {
        let mut session = self.session()?;
        match work(&mut session) {
            Ok(value) => {
                session.commit()?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = session.rollback() {
                    log::warn!("rollback after a failed transaction failed too: {rollback}");
                }
                Err(e)
            }
        }
    }

    /// Like [`Mapper::begin`], but runs `work` again in a fresh transaction
    /// when it fails with a serialization failure (40001) or a deadlock
    /// (40P01), up to `attempts` runs in all — whether `work` returned the
    /// error or the commit reported it ([`Error::RolledBack`] with such a
    /// cause).
    ///
    /// # Errors
    ///
    /// As [`Mapper::begin`]; after the last attempt, its retryable error.
    pub fn begin_with_retry<T, F>(&self, attempts: usize, mut work: F) -> Result<T>
    where
        F: FnMut(&mut Session) -> Result<T>,
    {
        let attempts = attempts.max(1);
        let mut run = 1;
        loop {
            match self.begin(&mut work) {
                Err(e) if e.is_retryable() && run < attempts => {
                    log::debug!("retrying transaction after {e} (attempt {run} of {attempts})");
                    run += 1;
                }
                result => return result,
            }
        }
    }
}

fn check_name(operation: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::Mapper(format!("{operation} needs a database name")));
    }
    Ok(())
}

/// Whether a table, view or other relation named `name` exists in the
/// current schema of bind `label`.
fn relation_exists(session: &mut Session, label: &str, name: &str) -> Result<bool> {
    let rows = session.query_raw_on(
        label,
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname = $1 AND n.nspname = current_schema())",
        &[&name],
    )?;
    match rows.first() {
        Some(row) => row.try_get::<usize, bool>(0),
        None => Err(Error::RowCount(0)),
    }
}
