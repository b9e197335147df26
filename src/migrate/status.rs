//! Where each migration stands in the database, for
//! [`Mapper::migrate_status`] (what `odm migrate status` and
//! `odm migrate check` print).
//!
//! [`Mapper::migrate_status`]: crate::Mapper::migrate_status

use super::run::{engine_of, read_applied_if_any};
use super::Migrations;
use crate::engine::Engine;
use crate::error::Result;

/// Where one migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationState {
    /// Applied, with the text this program holds.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but its text changed since (the checksums differ): a
    /// forward run or a revert refuses to start.
    Changed {
        /// The checksum recorded when it was applied.
        applied: u64,
        /// The checksum of the text this program holds.
        found: u64,
    },
    /// Applied in the database, unknown to this program.
    Unknown,
}

/// One line of [`Mapper::migrate_status`](crate::Mapper::migrate_status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The bind label.
    pub bind: String,
    /// The version.
    pub version: i64,
    /// Its name (as recorded in the database for an unknown one).
    pub name: String,
    /// Whether it has a down script (`false` for an unknown one).
    pub has_down: bool,
    /// Where it stands.
    pub state: MigrationState,
}

impl MigrationStatus {
    /// Whether the database and the program agree on it: applied with the
    /// same text. What `odm migrate check` requires of every migration.
    pub fn is_in_sync(&self) -> bool {
        self.state == MigrationState::Applied
    }
}

/// Every migration of `sets` and every applied one, by bind and version,
/// without changing anything (not even creating `odm_migrations`).
pub(crate) fn status_registered<'e>(
    sets: &[Migrations],
    engines: impl Fn(&str) -> Option<&'e Engine>,
) -> Result<Vec<MigrationStatus>> {
    let mut lines = Vec::new();
    for set in sets {
        let conn = engine_of(&engines, set)?.pool().acquire()?;
        let applied = read_applied_if_any(&conn)?;
        let mut bind_lines: Vec<MigrationStatus> = set
            .list()
            .iter()
            .map(|m| {
                let recorded = applied.iter().find(|(v, _, _)| *v == m.version());
                let state = match recorded {
                    None => MigrationState::Pending,
                    Some((_, _, checksum)) if *checksum == m.checksum() => MigrationState::Applied,
                    Some((_, _, checksum)) => MigrationState::Changed {
                        applied: *checksum,
                        found: m.checksum(),
                    },
                };
                MigrationStatus {
                    bind: set.bind().to_owned(),
                    version: m.version(),
                    name: m.name().to_owned(),
                    has_down: m.down_sql().is_some(),
                    state,
                }
            })
            .collect();
        for (version, name, _) in &applied {
            if !set.list().iter().any(|m| m.version() == *version) {
                bind_lines.push(MigrationStatus {
                    bind: set.bind().to_owned(),
                    version: *version,
                    name: name.clone(),
                    has_down: false,
                    state: MigrationState::Unknown,
                });
            }
        }
        bind_lines.sort_by_key(|line| line.version);
        lines.extend(bind_lines);
    }
    Ok(lines)
}
