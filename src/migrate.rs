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
//! A migration may have a down script undoing it, named as Flyway names
//! undo migrations: `U<version>__<name>.sql` (`U2__add_order_note.sql`
//! undoes `V2__add_order_note.sql`). [`Mapper::migrate_revert`] runs the
//! down scripts of the newest applied migrations (see its module,
//! `revert`); a down script is not part of the checksum, so one can be
//! added to a migration already applied.
//!
//! # Sources
//!
//! - Read at run time: [`Migrations::from_dir`] reads the folder when
//!   called (on a green worker the reads run on a helper thread, so no
//!   scheduler thread blocks on the file system).
//! - Embedded in the binary: [`embed_migrations!`](crate::embed_migrations)
//!   takes the folder (relative to the package root) and compiles every
//!   file in, or the folder (relative to the calling source file, as
//!   `include_str!`) and a list of file names.
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
//! [`Mapper::migrate_revert`]: crate::Mapper::migrate_revert
//! [`Error::NestedAcquire`]: crate::Error::NestedAcquire

mod revert;
mod run;
mod status;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::error::MigrationError;
pub(crate) use revert::{revert_plan_registered, revert_registered};
pub(crate) use run::{apply_registered, plan_registered};
pub use run::{AppliedMigration, MigrationReport, PendingMigration, LOCK_KEY};
pub(crate) use status::status_registered;
pub use status::{MigrationState, MigrationStatus};

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
    down: Option<String>,
}

impl Migration {
    /// A migration; it runs in a transaction unless its leading comment
    /// lines include [`NO_TRANSACTION`].
    pub fn new(version: i64, name: impl Into<String>, sql: impl Into<String>) -> Migration {
        let sql = sql.into();
        Migration {
            version,
            name: name.into(),
            transactional: is_transactional(&sql),
            sql,
            down: None,
        }
    }

    /// The same migration with a down script: the SQL that undoes it,
    /// run by a revert ([`Mapper::migrate_revert`]). It runs in a
    /// transaction unless its own leading comment lines include
    /// [`NO_TRANSACTION`]. It is not part of the checksum, so a down
    /// script may be added to an applied migration.
    ///
    /// [`Mapper::migrate_revert`]: crate::Mapper::migrate_revert
    pub fn with_down(mut self, sql: impl Into<String>) -> Migration {
        self.down = Some(sql.into());
        self
    }

    /// The down script, if it has one.
    pub fn down_sql(&self) -> Option<&str> {
        self.down.as_deref()
    }

    /// A migration from a file named `V<version>__<name>.sql` and its text.
    ///
    /// # Errors
    ///
    /// [`MigrationError::FileName`] for any other name.
    pub fn from_file(file: &str, sql: impl Into<String>) -> Result<Migration> {
        match parse_file_name(file) {
            Some((Direction::Up, version, name)) => Ok(Migration::new(version, name, sql)),
            _ => Err(MigrationError::FileName { file: file.into() }.into()),
        }
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
    /// `V<version>__<name>.sql`, each optionally with its down script
    /// `U<version>__<name>.sql` (what [`embed_migrations!`] expands to).
    ///
    /// # Errors
    ///
    /// [`MigrationError::FileName`], [`MigrationError::DownWithoutUp`],
    /// and as [`Migrations::new`].
    ///
    /// [`embed_migrations!`]: crate::embed_migrations
    pub fn from_files<'a, I>(files: I) -> Result<Migrations>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut list = Vec::new();
        let mut downs = Vec::new();
        for (file, sql) in files {
            match parse_file_name(file) {
                Some((Direction::Up, version, name)) => {
                    list.push(Migration::new(version, name, sql))
                }
                Some((Direction::Down, version, _)) => downs.push((version, sql)),
                None => return Err(MigrationError::FileName { file: file.into() }.into()),
            }
        }
        for (version, sql) in downs {
            match list.iter_mut().find(|m| m.version == version) {
                Some(m) if m.down.is_none() => m.down = Some(sql.to_owned()),
                _ => return Err(MigrationError::DownWithoutUp { version }.into()),
            }
        }
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
/// `odm::Result<`[`Migrations`]`>`.
///
/// With one argument, the folder, relative to the package's root
/// (`CARGO_MANIFEST_DIR`, as sqlx's `migrate!`): every `.sql` file in it
/// (`V<version>__<name>.sql` and the down scripts
/// `U<version>__<name>.sql`) is read at compile time. Cargo rebuilds when
/// one of the files changes; a file *added* to the folder is seen at the
/// crate's next rebuild, which a build script with
/// `println!("cargo:rerun-if-changed=migrations");` makes immediate
/// (stable Rust lets no macro watch a folder).
///
/// ```
/// # fn main() -> odm::Result<()> {
/// let migrations = odm::embed_migrations!("tests/migrations")?;
/// assert_eq!(migrations.list()[1].name(), "add_order_note");
/// # Ok(())
/// # }
/// ```
///
/// With the folder and a list of file names, the folder is relative to the
/// calling source file (as for `include_str!`) and only the files listed
/// are embedded:
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
    ($dir:literal) => {
        $crate::__private::embed_dir!($crate, $dir)
    };
    ($dir:literal, [$($file:literal),* $(,)?]) => {
        $crate::migrate::Migrations::from_files([
            $(($file, include_str!(concat!($dir, "/", $file)))),*
        ])
    };
}

/// Whether a migration file applies a migration or undoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// `V<version>__<name>.sql`.
    Up,
    /// `U<version>__<name>.sql` (Flyway's name for an undo script).
    Down,
}

/// Whether `sql` runs in a transaction: not when its leading comment lines
/// include [`NO_TRANSACTION`].
fn is_transactional(sql: &str) -> bool {
    !sql.lines()
        .map(str::trim)
        .take_while(|line| line.is_empty() || line.starts_with("--"))
        .any(|line| line == NO_TRANSACTION)
}

/// `V<version>__<name>.sql` → `(Up, version, name)`,
/// `U<version>__<name>.sql` → `(Down, version, name)`.
fn parse_file_name(file: &str) -> Option<(Direction, i64, String)> {
    let (direction, rest) = match file.strip_prefix('V') {
        Some(rest) => (Direction::Up, rest),
        None => (Direction::Down, file.strip_prefix('U')?),
    };
    let stem = rest.strip_suffix(".sql")?;
    let (version, name) = stem.split_once("__")?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((direction, version.parse().ok()?, name.to_owned()))
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
            Some((Direction::Up, 1, "create_orders".into()))
        );
        assert_eq!(
            parse_file_name("V007__a.sql"),
            Some((Direction::Up, 7, "a".into()))
        );
        assert_eq!(
            parse_file_name("U2__add_note.sql"),
            Some((Direction::Down, 2, "add_note".into()))
        );
        for bad in [
            "v1__x.sql",
            "V1_x.sql",
            "V__x.sql",
            "V1__.sql",
            "V1.1__x.sql",
            "V1__x.SQL",
            "1__x.sql",
            "u1__x.sql",
            "D1__x.sql",
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
            "migration file `V1_oops.sql` is not named V<version>__<name>.sql \
             (or U<version>__<name>.sql for a down script)"
        );
    }

    #[test]
    fn down_scripts_attach_to_their_migration_and_need_one() {
        let set = Migrations::from_files([
            ("U1__create.sql", "DROP TABLE t"),
            ("V1__create.sql", "CREATE TABLE t ()"),
            ("V2__more.sql", "SELECT 1"),
        ])
        .unwrap();
        assert_eq!(set.list()[0].down_sql(), Some("DROP TABLE t"));
        assert_eq!(set.list()[1].down_sql(), None);
        assert_eq!(
            set.list()[0].checksum(),
            Migration::new(1, "create", "CREATE TABLE t ()").checksum(),
            "the down script is not part of the checksum"
        );
        let err = Migrations::from_files([("V1__a.sql", ""), ("U2__b.sql", "")]).unwrap_err();
        assert!(
            err.to_string().contains("version 2 has no migration"),
            "{err}"
        );
        let twice = [("V1__a.sql", ""), ("U1__a.sql", ""), ("U1__b.sql", "")];
        assert!(Migrations::from_files(twice).is_err());
        assert!(Migration::from_file("U1__a.sql", "").is_err());
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
