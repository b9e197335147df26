//! [`MigrationError`]: what can be wrong with a set of migrations or with
//! applying it. Each variant names the version (or file) concerned.

use std::path::PathBuf;

use crate::error::Error;
use green_postgres::DbError;

/// A migration problem, carried by [`Error::Migration`].
///
/// Refused before anything runs: a malformed file name, a version given
/// twice or missing from the sequence, an applied migration whose text
/// changed, a version the database has applied but this program does not
/// know. [`MigrationError::Failed`] is a migration that ran and failed: it
/// was rolled back, the ones before it stay applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// A `.sql` file in the migrations folder is not named
    /// `V<version>__<name>.sql` (nor `U<version>__<name>.sql`, a down
    /// script).
    #[error(
        "migration file `{file}` is not named V<version>__<name>.sql \
         (or U<version>__<name>.sql for a down script)"
    )]
    FileName {
        /// The file name.
        file: String,
    },

    /// The migrations folder or one of its files could not be read.
    #[error("cannot read migrations from {}: {source}", .path.display())]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },

    /// A version below 1.
    #[error("migration version {version} is not a positive number")]
    InvalidVersion {
        /// The version given.
        version: i64,
    },

    /// Two migrations share a version.
    #[error("migration version {version} is given twice")]
    Duplicate {
        /// The version given twice.
        version: i64,
    },

    /// The versions do not run 1, 2, 3, ... without a hole.
    #[error("migration version {version} is missing (versions run 1, 2, 3, ... without gaps)")]
    Missing {
        /// The first missing version.
        version: i64,
    },

    /// An applied migration's text is not what was applied.
    #[error(
        "migration version {version} (`{name}`) was edited after it was applied \
         (checksum {applied:016x} applied, {found:016x} now)"
    )]
    ChecksumMismatch {
        /// The version.
        version: i64,
        /// Its name in this program.
        name: String,
        /// The checksum recorded when it was applied.
        applied: u64,
        /// The checksum of the text this program holds.
        found: u64,
    },

    /// The database has applied a version this program does not hold
    /// (a newer program migrated it, or a migration was deleted).
    #[error("migration version {version} (`{name}`) is applied in the database but unknown to this program")]
    UnknownApplied {
        /// The version.
        version: i64,
        /// Its name as recorded in the database.
        name: String,
    },

    /// A down script (`U<version>__<name>.sql`) whose version has no
    /// migration (`V<version>__<name>.sql`), or a second one for it.
    #[error("down script for migration version {version} has no migration V{version}__<name>.sql, or is given twice")]
    DownWithoutUp {
        /// The version.
        version: i64,
    },

    /// A revert reached a migration without a down script; nothing was
    /// reverted.
    #[error(
        "migration version {version} (`{name}`) has no down script \
         (U{version}__{name}.sql), so it cannot be reverted"
    )]
    NoDown {
        /// The version.
        version: i64,
        /// Its name.
        name: String,
    },

    /// Migrations were registered for a bind label the mapper does not have.
    #[error("migrations are bound to `{label}`, which is not a bind of this mapper")]
    UnknownBind {
        /// The label.
        label: String,
    },

    /// A migration failed; it was rolled back (or, without a transaction,
    /// left as far as it got) and not recorded. `source` keeps the
    /// database's error and SQLSTATE ([`Error::code`]).
    #[error("migration version {version} (`{name}`) failed: {source}")]
    Failed {
        /// The version.
        version: i64,
        /// Its name.
        name: String,
        /// Why.
        source: Box<Error>,
    },
}

impl MigrationError {
    /// The server's error fields when a migration failed on the server.
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            MigrationError::Failed { source, .. } => source.as_db_error(),
            _ => None,
        }
    }

    /// The version concerned, when there is one.
    pub fn version(&self) -> Option<i64> {
        match self {
            MigrationError::InvalidVersion { version }
            | MigrationError::Duplicate { version }
            | MigrationError::Missing { version }
            | MigrationError::ChecksumMismatch { version, .. }
            | MigrationError::UnknownApplied { version, .. }
            | MigrationError::DownWithoutUp { version }
            | MigrationError::NoDown { version, .. }
            | MigrationError::Failed { version, .. } => Some(*version),
            _ => None,
        }
    }
}

impl From<MigrationError> for Error {
    fn from(e: MigrationError) -> Error {
        Error::Migration(Box::new(e))
    }
}
