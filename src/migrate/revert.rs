//! Undoing applied migrations with their down scripts
//! (`U<version>__<name>.sql`), for [`Mapper::migrate_revert`] and its dry
//! run [`Mapper::migrate_revert_plan`].
//!
//! A revert takes the same advisory lock as a forward run and makes the
//! same checks first (an applied migration edited since, or unknown to
//! this program, refuses the revert with nothing undone). It then undoes
//! the newest applied migrations, newest first; every one of them must
//! have a down script, checked before any runs
//! ([`MigrationError::NoDown`]). Each down script runs in a transaction
//! with the deletion of its row in `odm_migrations` (unless its leading
//! comments hold `-- odm:no-transaction`); a failure rolls that one back
//! and stops, the ones undone before stay undone.
//!
//! [`Mapper::migrate_revert`]: crate::Mapper::migrate_revert
//! [`Mapper::migrate_revert_plan`]: crate::Mapper::migrate_revert_plan

use std::time::{Duration, Instant};

use super::run::{engine_of, pending, read_applied_if_any, run_step, with_lock};
use super::{is_transactional, AppliedMigration, Migration, MigrationError, Migrations};
use super::{MigrationReport, PendingMigration};
use crate::engine::Engine;
use crate::error::Result;
use green_postgres::Client;

const FORGET: &str = "DELETE FROM odm_migrations WHERE version = $1";

/// Reverts the newest `steps` applied migrations of each set in `sets`
/// (bind by bind), newest first.
pub(crate) fn revert_registered<'e>(
    sets: &[Migrations],
    engines: impl Fn(&str) -> Option<&'e Engine>,
    steps: usize,
) -> Result<MigrationReport> {
    let mut report = MigrationReport::default();
    for set in sets {
        let engine = engine_of(&engines, set)?;
        let reverted = with_lock(engine, |conn| revert_newest(conn, set, steps))?;
        report.reverted.extend(reverted);
    }
    Ok(report)
}

/// The migrations [`revert_registered`] would undo, newest first, without
/// undoing anything; `transactional` says whether the down script would
/// run in a transaction.
pub(crate) fn revert_plan_registered<'e>(
    sets: &[Migrations],
    engines: impl Fn(&str) -> Option<&'e Engine>,
    steps: usize,
) -> Result<Vec<PendingMigration>> {
    let mut plan = Vec::new();
    for set in sets {
        let conn = engine_of(&engines, set)?.pool().acquire()?;
        let newest = to_revert(&conn, set, steps)?;
        plan.extend(newest.into_iter().map(|(m, down)| PendingMigration {
            bind: set.bind().to_owned(),
            version: m.version(),
            name: m.name().to_owned(),
            transactional: is_transactional(down),
        }));
    }
    Ok(plan)
}

/// The newest `steps` applied migrations of `set` with their down
/// scripts, newest first, after the checks a forward run makes.
fn to_revert<'s>(
    conn: &Client,
    set: &'s Migrations,
    steps: usize,
) -> Result<Vec<(&'s Migration, &'s str)>> {
    let applied = read_applied_if_any(conn)?;
    // Refuses edited and unknown applied migrations, as a forward run.
    let _ = pending(set, &applied)?;
    applied
        .iter()
        .rev()
        .take(steps)
        .map(|(version, _, _)| {
            let m = set
                .list()
                .iter()
                .find(|m| m.version() == *version)
                .expect("pending() checked every applied version is known");
            let down = m.down_sql().ok_or_else(|| MigrationError::NoDown {
                version: m.version(),
                name: m.name().to_owned(),
            })?;
            Ok((m, down))
        })
        .collect()
}

/// Undoes the newest `steps` migrations; the caller holds the lock.
fn revert_newest(
    conn: &mut Client,
    set: &Migrations,
    steps: usize,
) -> Result<Vec<AppliedMigration>> {
    let mut done = Vec::new();
    for (m, down) in to_revert(conn, set, steps)? {
        done.push(run_step(set, m, "reverted", || revert_one(conn, m, down))?);
    }
    Ok(done)
}

/// Runs one down script and forgets the migration: in one transaction, or
/// one after the other for a down script marked `-- odm:no-transaction`.
fn revert_one(conn: &mut Client, m: &Migration, down: &str) -> Result<Duration> {
    let started = Instant::now();
    if is_transactional(down) {
        let tx = conn.transaction()?;
        tx.batch_execute(down)?;
        tx.execute(FORGET, &[&m.version()])?;
        tx.commit()?;
    } else {
        conn.batch_execute(down)?;
        conn.execute(FORGET, &[&m.version()])?;
    }
    Ok(started.elapsed())
}
