//! Applying migrations, for [`Mapper::migrate`] and the dry run
//! [`Mapper::migrate_plan`], over the pool's public API (one exclusive
//! connection per bind).
//!
//! [`Mapper::migrate`]: crate::Mapper::migrate
//! [`Mapper::migrate_plan`]: crate::Mapper::migrate_plan

use std::time::{Duration, Instant};

use super::{Migration, MigrationError, Migrations};
use crate::engine::Engine;
use crate::error::Result;
use green_postgres::{Client, TransactionStatus};

/// The key of the session advisory lock a run holds: "odm_migr" in ASCII.
/// Advisory locks are per database, so it serializes runs on one database.
pub const LOCK_KEY: i64 = 0x6f64_6d5f_6d69_6772;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS odm_migrations (\
     version BIGINT PRIMARY KEY, \
     name TEXT NOT NULL, \
     checksum BIGINT NOT NULL, \
     applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
     execution_ms BIGINT NOT NULL)";

const READ_APPLIED: &str = "SELECT version, name, checksum FROM odm_migrations ORDER BY version";

const RECORD: &str =
    "INSERT INTO odm_migrations (version, name, checksum, execution_ms) VALUES ($1, $2, $3, $4)";

/// A migration [`Mapper::migrate`](crate::Mapper::migrate) applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// The bind label it was applied on.
    pub bind: String,
    /// Its version.
    pub version: i64,
    /// Its name.
    pub name: String,
    /// How long its SQL took.
    pub duration: Duration,
}

/// A migration not applied yet, as listed by [`Mapper::migrate_plan`](crate::Mapper::migrate_plan).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingMigration {
    /// The bind label it would be applied on.
    pub bind: String,
    /// Its version.
    pub version: i64,
    /// Its name.
    pub name: String,
    /// Whether it would run inside a transaction.
    pub transactional: bool,
}

/// What [`Mapper::migrate`](crate::Mapper::migrate) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The migrations applied by this run, in order; empty when the
    /// database was up to date.
    pub applied: Vec<AppliedMigration>,
    /// The migrations a revert ([`Mapper::migrate_revert`](crate::Mapper::migrate_revert))
    /// undid, newest first; empty for a forward run.
    pub reverted: Vec<AppliedMigration>,
}

/// Applies the pending migrations of `sets` (what
/// [`Mapper::migrate`](crate::Mapper::migrate) runs), bind by bind in
/// order, each on the engine `engines` gives for its bind label.
pub(crate) fn apply_registered<'e>(
    sets: &[Migrations],
    engines: impl Fn(&str) -> Option<&'e Engine>,
) -> Result<MigrationReport> {
    let mut report = MigrationReport::default();
    for set in sets {
        report
            .applied
            .extend(migrate_bind(engine_of(&engines, set)?, set)?);
    }
    Ok(report)
}

/// The migrations of `sets` not applied yet (what
/// [`Mapper::migrate_plan`](crate::Mapper::migrate_plan) lists), in order,
/// without applying anything.
pub(crate) fn plan_registered<'e>(
    sets: &[Migrations],
    engines: impl Fn(&str) -> Option<&'e Engine>,
) -> Result<Vec<PendingMigration>> {
    let mut plan = Vec::new();
    for set in sets {
        let conn = engine_of(&engines, set)?.pool().acquire()?;
        let applied = read_applied_if_any(&conn)?;
        plan.extend(pending(set, &applied)?.map(|m| PendingMigration {
            bind: set.bind().to_owned(),
            version: m.version(),
            name: m.name().to_owned(),
            transactional: m.transactional(),
        }));
    }
    Ok(plan)
}

pub(super) fn engine_of<'e>(
    engines: &impl Fn(&str) -> Option<&'e Engine>,
    set: &Migrations,
) -> Result<&'e Engine> {
    engines(set.bind()).ok_or_else(|| {
        let label = set.bind().to_owned();
        MigrationError::UnknownBind { label }.into()
    })
}

/// One bind's run: [`apply_pending`] under the advisory lock ([`with_lock`]).
fn migrate_bind(engine: &Engine, set: &Migrations) -> Result<Vec<AppliedMigration>> {
    with_lock(engine, |conn| apply_pending(conn, set))
}

/// Runs `work` on one connection of `engine` holding the advisory lock
/// ([`LOCK_KEY`]), and gives the connection back only when the lock is
/// released and no transaction is open (else closes it, which ends the
/// server session and so the lock too).
pub(super) fn with_lock<T>(
    engine: &Engine,
    work: impl FnOnce(&mut Client) -> Result<T>,
) -> Result<T> {
    let mut conn = engine.pool().acquire()?;
    if let Err(e) = conn.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]) {
        conn.discard();
        return Err(e.into());
    }
    let outcome = work(&mut conn);
    let unlocked = conn.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]);
    if unlocked.is_err() || conn.transaction_status() != TransactionStatus::Idle {
        conn.discard();
    }
    outcome
}

/// Creates `odm_migrations` if missing, checks what is applied against
/// `set`, and applies what is pending; the caller holds the lock.
fn apply_pending(conn: &mut Client, set: &Migrations) -> Result<Vec<AppliedMigration>> {
    conn.batch_execute(CREATE_TABLE)?;
    let applied = read_applied(conn)?;
    let mut done = Vec::new();
    for m in pending(set, &applied)? {
        done.push(run_step(set, m, "applied", || apply_one(conn, m))?);
    }
    Ok(done)
}

/// Runs one step of a run or a revert on migration `m` of `set` (`step`
/// applies or undoes it and says how long that took) and reports it: a
/// failure is [`MigrationError::Failed`] naming the migration; a success is
/// logged at info level ("`{done}` migration 3 (add_email) on bind default
/// in 12 ms") and returned as what was done.
pub(super) fn run_step(
    set: &Migrations,
    m: &Migration,
    done: &str,
    step: impl FnOnce() -> Result<Duration>,
) -> Result<AppliedMigration> {
    let duration = step().map_err(|source| MigrationError::Failed {
        version: m.version(),
        name: m.name().to_owned(),
        source: Box::new(source),
    })?;
    log::info!(
        "{done} migration {} ({}) on bind {} in {} ms",
        m.version(),
        m.name(),
        set.bind(),
        duration.as_millis()
    );
    Ok(AppliedMigration {
        bind: set.bind().to_owned(),
        version: m.version(),
        name: m.name().to_owned(),
        duration,
    })
}

/// Runs one migration and records it: both in one transaction, or, for a
/// migration marked `-- odm:no-transaction`, one after the other.
fn apply_one(conn: &mut Client, m: &Migration) -> Result<Duration> {
    let checksum = m.checksum() as i64;
    let millis = |took: Duration| i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
    let started = Instant::now();
    if m.transactional() {
        let tx = conn.transaction()?;
        tx.batch_execute(m.sql())?;
        let took = started.elapsed();
        tx.execute(RECORD, &[&m.version(), &m.name(), &checksum, &millis(took)])?;
        tx.commit()?;
        Ok(took)
    } else {
        conn.batch_execute(m.sql())?;
        let took = started.elapsed();
        conn.execute(RECORD, &[&m.version(), &m.name(), &checksum, &millis(took)])?;
        Ok(took)
    }
}

/// As [`read_applied`], without creating `odm_migrations`: nothing is
/// applied when it does not exist.
pub(super) fn read_applied_if_any(conn: &Client) -> Result<Vec<(i64, String, u64)>> {
    let exists: bool = conn
        .query_one("SELECT to_regclass('odm_migrations') IS NOT NULL", &[])?
        .try_get(0)?;
    if exists {
        read_applied(conn)
    } else {
        Ok(Vec::new())
    }
}

/// `(version, name, checksum)` of every applied migration, in order.
pub(super) fn read_applied(conn: &Client) -> Result<Vec<(i64, String, u64)>> {
    conn.query(READ_APPLIED, &[])?
        .iter()
        .map(|row| {
            let checksum: i64 = row.try_get(2)?;
            Ok((row.try_get(0)?, row.try_get(1)?, checksum as u64))
        })
        .collect()
}

/// The migrations of `set` not in `applied`, after refusing an applied one
/// whose text changed or that `set` does not hold.
pub(super) fn pending<'s>(
    set: &'s Migrations,
    applied: &[(i64, String, u64)],
) -> Result<impl Iterator<Item = &'s Migration> + 's> {
    for (version, name, checksum) in applied {
        let known = set.list().iter().find(|m| m.version() == *version);
        match known {
            None => {
                let (version, name) = (*version, name.clone());
                return Err(MigrationError::UnknownApplied { version, name }.into());
            }
            Some(m) if m.checksum() != *checksum => {
                return Err(MigrationError::ChecksumMismatch {
                    version: *version,
                    name: m.name().to_owned(),
                    applied: *checksum,
                    found: m.checksum(),
                }
                .into());
            }
            Some(_) => {}
        }
    }
    let versions: Vec<i64> = applied.iter().map(|(v, _, _)| *v).collect();
    Ok(set
        .list()
        .iter()
        .filter(move |m| !versions.contains(&m.version())))
}
