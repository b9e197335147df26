//! [`Mapper`]: the binds (labelled engines) and the model registry. The
//! entry point of the ORM, as in pulsar-odm. Its other entry points live
//! with their concepts: sessions in [`crate::session`], table creation in
//! [`crate::ddl`], database administration in `database_admin.rs`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::engine::Engine;
use crate::error::{Error, MapperError, Result};
use crate::migrate::{
    self, MigrationError, MigrationReport, MigrationStatus, Migrations, PendingMigration,
};
use crate::model::{Model, Table};
use crate::replicas::ReadRoute;
use green_postgres::seam::require_green;

pub use crate::model::DEFAULT_BIND;

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
    /// Registered migrations, one set per bind label ([`crate::migrate`]).
    migrations: RwLock<Vec<Migrations>>,
    /// Whether new sessions read from replicas ([`Mapper::set_read_route`]).
    reads_on_replicas: AtomicBool,
    /// Sessions started so far: spreads sessions over replicas.
    sessions: AtomicUsize,
}

impl fmt::Debug for Mapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models: Vec<&str> = self.inner.registry.read().iter().map(|t| t.name).collect();
        f.debug_struct("Mapper")
            .field("binds", &self.inner.binds)
            .field("models", &models)
            .field("read_route", &self.read_route())
            .finish()
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
    pub fn with_options(
        config: green_postgres::Config,
        options: green_postgres::pool::PoolOptions,
    ) -> Result<Mapper> {
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
            return Err(MapperError::MissingDefaultBind.into());
        }
        for (i, (label, _)) in binds.iter().enumerate() {
            if binds[..i].iter().any(|(other, _)| other == label) {
                return Err(MapperError::DuplicateBind {
                    label: label.clone(),
                }
                .into());
            }
        }
        Ok(Mapper {
            inner: Arc::new(MapperInner {
                binds,
                registry: RwLock::new(Vec::new()),
                migrations: RwLock::new(Vec::new()),
                reads_on_replicas: AtomicBool::new(false),
                sessions: AtomicUsize::new(0),
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

    /// Where the ORM reads of sessions started from now on go before their
    /// first write on a bind (see [`crate::replicas`]); a session may
    /// override it ([`Session::set_read_route`](crate::Session::set_read_route)).
    /// Affects every clone of this mapper.
    ///
    /// ```
    /// use odm::{Engine, Mapper, ReadRoute};
    ///
    /// let primary = Engine::new("postgresql://odm@primary/app")?
    ///     .with_replicas(["postgresql://odm@standby/app"])?;
    /// let mp = Mapper::from_engines(vec![("default".into(), primary)])?;
    /// mp.set_read_route(ReadRoute::Replica);
    /// assert_eq!(mp.read_route(), ReadRoute::Replica);
    /// # Ok::<(), odm::Error>(())
    /// ```
    pub fn set_read_route(&self, route: ReadRoute) {
        self.inner
            .reads_on_replicas
            .store(route == ReadRoute::Replica, Ordering::Relaxed);
    }

    /// Where new sessions' reads before their first write go
    /// ([`Mapper::set_read_route`]; [`ReadRoute::Primary`] by default).
    pub fn read_route(&self) -> ReadRoute {
        if self.inner.reads_on_replicas.load(Ordering::Relaxed) {
            ReadRoute::Replica
        } else {
            ReadRoute::Primary
        }
    }

    /// A number for a new session, to spread sessions over replicas.
    pub(crate) fn next_session_seed(&self) -> usize {
        self.inner.sessions.fetch_add(1, Ordering::Relaxed)
    }

    /// A number naming this mapper (shared by its clones), for the task's
    /// transaction registry ([`crate::session`]).
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Registers the migrations of a bind ([`Migrations::on_bind`], default
    /// `"default"`), replacing the set registered for that bind before. No
    /// I/O.
    ///
    /// # Errors
    ///
    /// [`MigrationError::UnknownBind`] when the mapper has no such bind.
    pub fn register_migrations(&self, migrations: Migrations) -> Result<()> {
        if self.engine(Some(migrations.bind())).is_none() {
            let label = migrations.bind().to_owned();
            return Err(MigrationError::UnknownBind { label }.into());
        }
        let mut sets = self.inner.migrations.write();
        sets.retain(|set| set.bind() != migrations.bind());
        sets.push(migrations);
        Ok(())
    }

    /// Applies the pending registered migrations, bind by bind in
    /// registration order; see [`crate::migrate`] for the lock, the
    /// transactions and what is refused. With nothing registered it does
    /// nothing.
    ///
    /// # Errors
    ///
    /// The wrong-context error (`acquire in main greenlet: migrate ...`)
    /// off a green worker; [`Error::Migration`] naming the version for an
    /// edited or unknown applied migration (nothing applied) or a failed
    /// one (it rolled back; earlier ones stay applied); pool and
    /// connection errors.
    pub fn migrate(&self) -> Result<MigrationReport> {
        require_green("migrate")?;
        let sets = self.inner.migrations.read().clone();
        migrate::apply_registered(&sets, |label| self.engine(Some(label)))
    }

    /// The dry run of [`Mapper::migrate`]: the migrations it would apply,
    /// in order, without applying anything (nor creating `odm_migrations`).
    ///
    /// # Errors
    ///
    /// As [`Mapper::migrate`], except for failures of migrations, which do
    /// not run.
    pub fn migrate_plan(&self) -> Result<Vec<PendingMigration>> {
        require_green("migrate_plan")?;
        let sets = self.inner.migrations.read().clone();
        migrate::plan_registered(&sets, |label| self.engine(Some(label)))
    }

    /// Undoes the newest `steps` applied migrations of each registered
    /// set, newest first, with their down scripts (`U<version>__<name>.sql`,
    /// [`Migration::with_down`](crate::migrate::Migration::with_down)),
    /// under the same advisory lock as [`Mapper::migrate`]; the report's
    /// `reverted` lists them. See [`crate::migrate`].
    ///
    /// # Errors
    ///
    /// As [`Mapper::migrate`]; [`MigrationError::NoDown`] (nothing undone)
    /// when one of them has no down script.
    pub fn migrate_revert(&self, steps: usize) -> Result<MigrationReport> {
        require_green("migrate_revert")?;
        let sets = self.inner.migrations.read().clone();
        migrate::revert_registered(&sets, |label| self.engine(Some(label)), steps)
    }

    /// The dry run of [`Mapper::migrate_revert`]: the migrations it would
    /// undo, newest first, without undoing anything.
    ///
    /// # Errors
    ///
    /// As [`Mapper::migrate_revert`], except for failures of down scripts,
    /// which do not run.
    pub fn migrate_revert_plan(&self, steps: usize) -> Result<Vec<PendingMigration>> {
        require_green("migrate_revert_plan")?;
        let sets = self.inner.migrations.read().clone();
        migrate::revert_plan_registered(&sets, |label| self.engine(Some(label)), steps)
    }

    /// Where every registered migration stands in its bind's database
    /// (applied, pending, edited since it was applied), plus the applied
    /// ones this program does not know, by bind and version. Changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// The wrong-context error off a green worker; pool and connection
    /// errors.
    pub fn migrate_status(&self) -> Result<Vec<MigrationStatus>> {
        require_green("migrate_status")?;
        let sets = self.inner.migrations.read().clone();
        migrate::status_registered(&sets, |label| self.engine(Some(label)))
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
            Error::Mapper(MapperError::UnboundModel {
                model: table.model,
                label,
            })
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
            return Err(MapperError::TableTaken {
                table: table.name,
                model: table.model,
                existing: existing.model,
            }
            .into());
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

    /// Closes every bind's pool (and its replicas' pools): idle connections are closed, checked-out
    /// ones when returned, and further acquires fail with
    /// [`Error::PoolClosed`].
    pub fn close(&self) {
        for (_, engine) in &self.inner.binds {
            engine.pool().close();
            for replica in engine.replicas() {
                replica.pool().close();
            }
        }
    }
}
