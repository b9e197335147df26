//! Versioned SQL migrations: [`Migrations`], [`Mapper::migrate`] and its
//! dry run [`Mapper::migrate_plan`].
//!
//! `table_create` only creates what is missing; a schema that changes over
//! an application's life needs migrations. A migration is a numbered SQL
//! script. They are applied once each, in version order, and recorded in
//! the table `odm_migrations` (`version`, `name`, `checksum`, `applied_at`,
//! `execution_ms`) of the bind's database (its current schema).
//!
//! # Naming
//!
//! Flyway's scheme: `V<version>__<name>.sql`, e.g. `V1__create_orders.sql`,
//! `V2__add_order_note.sql` (a capital `V`, a positive integer version,
//! two underscores). Versions run 1, 2, 3, ... without gaps; leading zeros
//! are allowed (`V001__...`). In a folder, files not ending in `.sql` are
//! ignored and a `.sql` file named otherwise is refused, so a typo never
//! skips a migration silently.
//!
//! # Sources
//!
//! - Read at run time: [`Migrations::from_dir`] reads the folder when
//!   called (on a green worker the reads run on a helper thread, so no
//!   scheduler thread blocks on the file system).
//! - Embedded in the binary: [`embed_migrations!`](crate::embed_migrations)
//!   takes the folder (relative to the calling source file, as
//!   `include_str!`) and the file names; the texts are compiled in.
//! - Built in code: [`Migrations::new`] over [`Migration::new`].
//!
//! # Applying
//!
//! [`Mapper::migrate`] applies, for each bind with registered migrations:
//!
//! - under a PostgreSQL session advisory lock held for the whole run, so
//!   two processes migrating one database at once are safe: the second
//!   waits, then finds everything applied;
//! - each pending migration in its own transaction, together with its row
//!   in `odm_migrations`. A failure rolls that migration back and stops the
//!   run with [`MigrationError::Failed`] naming its version and keeping the
//!   database error (and SQLSTATE); the earlier ones stay applied.
//! - A migration whose leading comment lines include
//!   `-- odm:no-transaction` runs outside a transaction, for statements
//!   PostgreSQL refuses inside one (`CREATE INDEX CONCURRENTLY`). It must
//!   then hold a single statement (several are sent as one implicit
//!   transaction by PostgreSQL); it is recorded after it succeeds.
//!
//! A run uses one connection of the bind's pool, so call it outside a
//! session that holds one (else [`Error::NestedAcquire`]); a
//! `query_timeout` on the bind also bounds the wait for the lock and each
//! migration. Run it at start-up, before serving: other processes' work
//! is not paused while the schema changes.
//!
//! Before anything runs, the run is refused — nothing applied — when an
//! applied migration's text changed ([`MigrationError::ChecksumMismatch`];
//! write a new migration instead of editing an applied one) or when the
//! database has applied a version this program does not know
//! ([`MigrationError::UnknownApplied`]: an older binary against a newer
//! schema). The checksum is the 64-bit FNV-1a hash of the text with `\r\n`
//! read as `\n`, so a checkout's line endings do not count as an edit.
//!
//! ```
//! use odm::migrate::{Migration, Migrations};
//! use odm::Mapper;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let db = odm::testing::test_database()?;
//! let mp = Mapper::new(&db.url())?;
//! // or Migrations::from_dir("migrations")?, or odm::embed_migrations!(...)?
//! mp.register_migrations(Migrations::new(vec![
//!     Migration::new(1, "create_orders", "CREATE TABLE orders (id serial PRIMARY KEY)"),
//!     Migration::new(2, "add_order_note", "ALTER TABLE orders ADD COLUMN note text"),
//! ])?)?;
//!
//! let pool = green::GreenPool::new();
//! let on_pool = mp.clone();
//! let (plan, report) = pool
//!     .submit(move || -> odm::Result<_> { Ok((on_pool.migrate_plan()?, on_pool.migrate()?)) })?
//!     .join()??;
//! assert_eq!(plan.len(), 2); // the dry run listed both, applied nothing
//! assert_eq!(report.applied.len(), 2);
//! assert_eq!(report.applied[1].name, "add_order_note");
//! # Ok(())
//! # }
//! ```
//!
//! [`Mapper::migrate`]: crate::Mapper::migrate
//! [`Mapper::migrate_plan`]: crate::Mapper::migrate_plan
//! [`Error::NestedAcquire`]: crate::Error::NestedAcquire

mod run;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::error::MigrationError;
pub(crate) use run::{apply_registered, plan_registered};
pub use run::{AppliedMigration, MigrationReport, PendingMigration, LOCK_KEY};

use crate::error::Result;
use crate::model::DEFAULT_BIND;

/// The marker, in a migration's leading comment lines, that runs it
/// outside a transaction.
pub const NO_TRANSACTION: &str = "-- odm:no-transaction";

/// One versioned SQL script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    name: String,
    sql: String,
    transactional: bool,
}

impl Migration {
    /// A migration; it runs in a transaction unless its leading comment
    /// lines include [`NO_TRANSACTION`].
    pub fn new(version: i64, name: impl Into<String>, sql: impl Into<String>) -> Migration {
        let sql = sql.into();
        let transactional = !sql
            .lines()
            .map(str::trim)
            .take_while(|line| line.is_empty() || line.starts_with("--"))
            .any(|line| line == NO_TRANSACTION);
        Migration {
            version,
            name: name.into(),
            sql,
            transactional,
        }
    }

    /// A migration from a file named `V<version>__<name>.sql` and its text.
    ///
    /// # Errors
    ///
    /// [`MigrationError::FileName`] for any other name.
    pub fn from_file(file: &str, sql: impl Into<String>) -> Result<Migration> {
        let (version, name) =
            parse_file_name(file).ok_or_else(|| MigrationError::FileName { file: file.into() })?;
        Ok(Migration::new(version, name, sql))
    }

    /// The version.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The name (the file name's part after `__`, without `.sql`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Whether it runs inside a transaction.
    pub fn transactional(&self) -> bool {
        self.transactional
    }

    /// The checksum recorded in `odm_migrations`: 64-bit FNV-1a of the
    /// text, `\r\n` counted as `\n`.
    pub fn checksum(&self) -> u64 {
        checksum(&self.sql)
    }
}

/// A checked set of migrations for one bind: versions 1, 2, 3, ... without
/// gaps or duplicates. A cheap clone.
#[derive(Debug, Clone)]
pub struct Migrations {
    bind: String,
    list: Arc<[Migration]>,
}

impl Migrations {
    /// The set of `migrations` (in any order) for the default bind.
    ///
    /// # Errors
    ///
    /// [`MigrationError::InvalidVersion`], [`MigrationError::Duplicate`]
    /// or [`MigrationError::Missing`] naming the version.
    pub fn new(mut migrations: Vec<Migration>) -> Result<Migrations> {
        migrations.sort_by_key(|m| m.version);
        for (i, m) in migrations.iter().enumerate() {
            if m.version < 1 {
                return Err(MigrationError::InvalidVersion { version: m.version }.into());
            }
            if i > 0 && migrations[i - 1].version == m.version {
                return Err(MigrationError::Duplicate { version: m.version }.into());
            }
            let expected = i as i64 + 1;
            if m.version != expected {
                return Err(MigrationError::Missing { version: expected }.into());
            }
        }
        Ok(Migrations {
            bind: DEFAULT_BIND.to_owned(),
            list: migrations.into(),
        })
    }

    /// The set from `(file name, text)` pairs, file names as
    /// `V<version>__<name>.sql` (what [`embed_migrations!`] expands to).
    ///
    /// # Errors
    ///
    /// [`MigrationError::FileName`], and as [`Migrations::new`].
    ///
    /// [`embed_migrations!`]: crate::embed_migrations
    pub fn from_files<'a, I>(files: I) -> Result<Migrations>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let list = files
            .into_iter()
            .map(|(file, sql)| Migration::from_file(file, sql))
            .collect::<Result<Vec<_>>>()?;
        Migrations::new(list)
    }

    /// The set read from the `.sql` files of folder `dir` (other files are
    /// ignored). Off a coroutine it reads in place; on one, on a helper
    /// thread while the coroutine parks.
    ///
    /// # Errors
    ///
    /// [`MigrationError::Read`] naming the folder or file,
    /// [`MigrationError::FileName`], and as [`Migrations::new`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Migrations> {
        let dir = dir.as_ref().to_owned();
        let files =
            green_postgres::seam::run_off_scheduler("odm-migrations-read", None, "", move || {
                read_dir(&dir)
            })??;
        Migrations::from_files(files.iter().map(|(f, s)| (f.as_str(), s.as_str())))
    }

    /// The same set, applied to the bind labelled `label` instead of the
    /// default one.
    pub fn on_bind(mut self, label: impl Into<String>) -> Migrations {
        self.bind = label.into();
        self
    }

    /// The bind label it applies to.
    pub fn bind(&self) -> &str {
        &self.bind
    }

    /// The migrations, in version order.
    pub fn list(&self) -> &[Migration] {
        &self.list
    }
}

/// A set of migrations compiled into the binary, as
/// `odm::Result<`[`Migrations`]`>`: the folder (relative to the calling
/// source file, as for `include_str!`) and its file names, each
/// `V<version>__<name>.sql`.
///
/// ```
/// # fn main() -> odm::Result<()> {
/// let migrations = odm::embed_migrations!(
///     "../tests/migrations",
///     ["V1__create_orders.sql", "V2__add_order_note.sql"]
/// )?;
/// assert_eq!(migrations.list()[1].name(), "add_order_note");
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! embed_migrations {
    ($dir:literal, [$($file:literal),* $(,)?]) => {
        $crate::migrate::Migrations::from_files([
            $(($file, include_str!(concat!($dir, "/", $file)))),*
        ])
    };
}

/// `V<version>__<name>.sql` → `(version, name)`.
fn parse_file_name(file: &str) -> Option<(i64, String)> {
    let stem = file.strip_prefix('V')?.strip_suffix(".sql")?;
    let (version, name) = stem.split_once("__")?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((version.parse().ok()?, name.to_owned()))
}

/// The `(file name, text)` of every `.sql` file of `dir`.
fn read_dir(dir: &Path) -> std::result::Result<Vec<(String, String)>, MigrationError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| MigrationError::Read { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let path: PathBuf = entry.map_err(read_error(dir))?.path();
        if path.extension() != Some(OsStr::new("sql")) {
            continue;
        }
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sql = std::fs::read_to_string(&path).map_err(read_error(&path))?;
        files.push((file, sql));
    }
    Ok(files)
}

/// 64-bit FNV-1a of `sql`, `\r\n` counted as `\n`.
fn checksum(sql: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = sql.as_bytes();
    let mut hash = OFFSET;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_flyway_versioned_naming() {
        assert_eq!(
            parse_file_name("V1__create_orders.sql"),
            Some((1, "create_orders".into()))
        );
        assert_eq!(parse_file_name("V007__a.sql"), Some((7, "a".into())));
        for bad in [
            "v1__x.sql",
            "V1_x.sql",
            "V__x.sql",
            "V1__.sql",
            "V1.1__x.sql",
            "V1__x.SQL",
            "1__x.sql",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_set_must_run_one_two_three_without_gaps_or_duplicates() {
        let m = |v| Migration::new(v, "m", "SELECT 1");
        let set = Migrations::new(vec![m(2), m(1), m(3)]).unwrap();
        let versions: Vec<i64> = set.list().iter().map(Migration::version).collect();
        assert_eq!(versions, [1, 2, 3]);
        assert_eq!(set.bind(), "default");
        let err = Migrations::new(vec![m(1), m(3)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "migration version 2 is missing (versions run 1, 2, 3, ... without gaps)"
        );
        let err = Migrations::new(vec![m(1), m(2), m(2)]).unwrap_err();
        assert_eq!(err.to_string(), "migration version 2 is given twice");
        let err = Migrations::new(vec![m(0)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "migration version 0 is not a positive number"
        );
        let err = Migrations::from_files([("V1_oops.sql", "")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "migration file `V1_oops.sql` is not named V<version>__<name>.sql"
        );
    }

    #[test]
    fn the_no_transaction_marker_is_read_from_the_leading_comments_only() {
        assert!(Migration::new(1, "a", "CREATE TABLE t ()").transactional());
        let marked = "-- build the index without locking writes\n-- odm:no-transaction\n\
                      CREATE INDEX CONCURRENTLY i ON t (a)";
        assert!(!Migration::new(1, "a", marked).transactional());
        let late = "SELECT 1;\n-- odm:no-transaction\n";
        assert!(Migration::new(1, "a", late).transactional());
    }

    #[test]
    fn the_checksum_is_stable_and_ignores_line_endings() {
        // FNV-1a 64 reference values
        assert_eq!(checksum(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(checksum("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(checksum("a\r\nb"), checksum("a\nb"));
        assert_ne!(checksum("a\nb"), checksum("a\nc"));
    }
}
