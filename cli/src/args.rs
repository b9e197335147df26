//! The command line: every command, flag and help text (`odm --help`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Create and drop PostgreSQL databases, and add, run, revert and check the SQL \
migrations of an odm application.";

const AFTER_HELP: &str = "\
Which database:
  --database-url URL, else DATABASE_URL, else DATABASE_URL in a .env file in
  the current folder, else the PG* variables alone (PGHOST, PGPORT, PGUSER,
  PGPASSWORD, PGDATABASE, ...). The PG* variables and ~/.pgpass (or
  PGPASSFILE) also fill in what the URL leaves out, as for psql.
  Example: postgresql://app:secret@localhost:5432/app

Migrations:
  A folder (default ./migrations) of V<n>__<name>.sql files, versions 1, 2,
  3, ... without gaps, each with an optional down script U<n>__<name>.sql
  that undoes it. Applied versions are recorded in the table odm_migrations.
  Embed the same folder in your program with odm::embed_migrations!(\"migrations\").

Exit codes:
  0  done, or yes
  1  failed (cannot connect, a statement or migration failed, bad settings)
  2  the command line is wrong
  3  no: `database exists` for a missing database, `migrate check` when
     the folder and the database differ

A first session:
  odm database create
  odm migrate add create_users --down
  (write the SQL into migrations/V1__create_users.sql and U1__create_users.sql)
  odm migrate run
  odm migrate status";

/// `odm`: the command line.
#[derive(Debug, Parser)]
#[command(name = "odm", version, about = ABOUT, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// The database URL [default: DATABASE_URL, .env, PG* variables]
    ///
    /// postgresql://user:password@host:port/dbname. Without it: DATABASE_URL,
    /// then DATABASE_URL in ./.env, then the PG* variables alone.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) database_url: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, drop or look for the database
    #[command(subcommand)]
    Database(DatabaseCommand),
    /// Add, apply, revert and check the migrations of a folder
    #[command(subcommand)]
    Migrate(MigrateCommand),
}

/// `odm database ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DatabaseCommand {
    /// Create the database named in the URL (nothing to do if it exists)
    Create,
    /// Drop the database named in the URL (needs --yes)
    Drop {
        /// Confirm that the database and all its data go.
        #[arg(short, long)]
        yes: bool,
        /// Also end the other sessions connected to it (PostgreSQL 13+),
        /// which otherwise make the drop fail.
        #[arg(long)]
        force: bool,
    },
    /// Say whether the database exists: exit code 0 if it does, 3 if not
    Exists,
}

/// Where the migrations are.
#[derive(Debug, Args)]
pub(crate) struct Source {
    /// The migrations folder.
    #[arg(long, value_name = "DIR", default_value = "migrations")]
    pub(crate) source: PathBuf,
}

/// `odm migrate ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Create the next migration file: V<n>__<name>.sql
    ///
    /// Numbered after the highest version in the folder; with --down also
    /// U<n>__<name>.sql, its down script.
    Add {
        /// What the migration does, in words or snake_case
        /// ("create users" becomes create_users).
        name: String,
        /// Also create the down script that undoes it.
        #[arg(short = 'r', long, visible_alias = "reversible")]
        down: bool,
        #[command(flatten)]
        source: Source,
    },
    /// Apply the pending migrations
    ///
    /// In version order, each in its own transaction, under an advisory
    /// lock so that two runs at once are safe.
    Run {
        /// Only list what would be applied.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        source: Source,
    },
    /// Undo the newest applied migrations with their down scripts
    ///
    /// Refused, with nothing undone, when one of them has no down script
    /// or an applied migration was edited since.
    Revert {
        /// How many migrations to undo, newest first.
        #[arg(long, default_value_t = 1, value_name = "N")]
        steps: usize,
        /// Only list what would be undone.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        source: Source,
    },
    /// List every migration and whether it is applied
    ///
    /// Each is applied, pending, edited since it was applied, or applied but
    /// missing from the folder.
    Status {
        #[command(flatten)]
        source: Source,
    },
    /// For CI: fail (exit code 3) unless folder and database agree
    ///
    /// Exit code 0 when every migration of the folder is applied unchanged
    /// and nothing else is applied; 3 otherwise, listing the differences.
    Check {
        #[command(flatten)]
        source: Source,
    },
}
