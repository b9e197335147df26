//! `odm migrate add|run|revert|status|check` over a migrations folder
//! (`odm::migrate`: `V<n>__<name>.sql`, down scripts `U<n>__<name>.sql`).

use std::path::Path;

use odm::migrate::{MigrationState, MigrationStatus, PendingMigration};
use odm::{Engine, Mapper, Migrations};

use crate::args::MigrateCommand;
use crate::database_url::Target;
use crate::outcome::{CliError, CliResult, Outcome};

/// `odm migrate add`: creates the next migration file (and its down
/// script), printing their paths. No database needed.
pub(crate) fn add(name: &str, down: bool, folder: &Path) -> CliResult {
    let name = file_name_part(name)?;
    std::fs::create_dir_all(folder).map_err(|err| {
        CliError::failure(format!(
            "cannot create the folder {}: {err}",
            folder.display()
        ))
    })?;
    let (latest, width) = latest_version(folder)?;
    let version = format!("{:0width$}", latest + 1);
    let up = folder.join(format!("V{version}__{name}.sql"));
    write_new(
        &up,
        &format!("-- Migration {version}: {name}. Write the SQL that applies it here.\n"),
    )?;
    println!("created {}", up.display());
    if down {
        let undo = folder.join(format!("U{version}__{name}.sql"));
        write_new(
            &undo,
            &format!(
                "-- Undoes migration {version} ({name}). Write the SQL that reverts it here.\n"
            ),
        )?;
        println!("created {}", undo.display());
    }
    Ok(Outcome::Done)
}

/// The commands that need the database; call on a green worker.
pub(crate) fn run(command: &MigrateCommand, target: &Target) -> CliResult {
    match command {
        MigrateCommand::Add { .. } => unreachable!("add needs no database: main runs it"),
        MigrateCommand::Run { dry_run, source } => {
            let mapper = mapper(target, &source.source)?;
            if *dry_run {
                let plan = mapper.migrate_plan()?;
                print_plan(
                    "would apply",
                    &plan,
                    "nothing to apply: the database is up to date",
                );
            } else {
                let report = mapper.migrate()?;
                for m in &report.applied {
                    println!(
                        "applied {} {} ({} ms)",
                        m.version,
                        m.name,
                        m.duration.as_millis()
                    );
                }
                if report.applied.is_empty() {
                    println!("nothing to apply: {} is up to date", target.describe());
                }
            }
            Ok(Outcome::Done)
        }
        MigrateCommand::Revert {
            steps,
            dry_run,
            source,
        } => {
            let mapper = mapper(target, &source.source)?;
            if *dry_run {
                let plan = mapper.migrate_revert_plan(*steps)?;
                print_plan(
                    "would revert",
                    &plan,
                    "nothing to revert: no migration is applied",
                );
            } else {
                let report = mapper.migrate_revert(*steps)?;
                for m in &report.reverted {
                    println!(
                        "reverted {} {} ({} ms)",
                        m.version,
                        m.name,
                        m.duration.as_millis()
                    );
                }
                if report.reverted.is_empty() {
                    println!("nothing to revert: no migration is applied");
                }
            }
            Ok(Outcome::Done)
        }
        MigrateCommand::Status { source } => {
            let status = mapper(target, &source.source)?.migrate_status()?;
            println!(
                "migrations of {} in {}:",
                source.source.display(),
                target.describe()
            );
            if status.is_empty() {
                println!("  (none)");
            }
            for line in &status {
                println!("{}", status_line(line));
            }
            Ok(Outcome::Done)
        }
        MigrateCommand::Check { source } => {
            let status = mapper(target, &source.source)?.migrate_status()?;
            let differences: Vec<&MigrationStatus> =
                status.iter().filter(|line| !line.is_in_sync()).collect();
            if differences.is_empty() {
                println!(
                    "ok: all {} migrations of {} are applied to {}",
                    status.len(),
                    source.source.display(),
                    target.describe()
                );
                return Ok(Outcome::Done);
            }
            println!(
                "{} of {} migrations differ between {} and {}:",
                differences.len(),
                status.len(),
                source.source.display(),
                target.describe()
            );
            for line in differences {
                println!("{}", status_line(line));
            }
            Ok(Outcome::No)
        }
    }
}

/// A mapper on `target` with the migrations of `folder` registered.
fn mapper(target: &Target, folder: &Path) -> Result<Mapper, CliError> {
    let migrations = Migrations::from_dir(folder)?;
    let engine = Engine::with_options(target.config.clone(), target.options.clone());
    let mapper = Mapper::from_engines(vec![("default".to_owned(), engine)])?;
    mapper.register_migrations(migrations)?;
    Ok(mapper)
}

fn print_plan(verb: &str, plan: &[PendingMigration], nothing: &str) {
    for m in plan {
        let how = if m.transactional {
            ""
        } else {
            " (outside a transaction)"
        };
        println!("{verb} {} {}{how}", m.version, m.name);
    }
    if plan.is_empty() {
        println!("{nothing}");
    }
}

/// `  3  create_invoices  pending  (no down script)`.
fn status_line(line: &MigrationStatus) -> String {
    let state = match line.state {
        MigrationState::Applied => "applied".to_owned(),
        MigrationState::Pending => "pending".to_owned(),
        MigrationState::Changed { .. } => "EDITED since it was applied".to_owned(),
        MigrationState::Unknown => "applied, but MISSING from the folder".to_owned(),
        _ => format!("{:?}", line.state),
    };
    let down = match (line.state, line.has_down) {
        (MigrationState::Unknown, _) => "",
        (_, true) => "",
        (_, false) => "  (no down script)",
    };
    format!("  {:>4}  {:<32}  {state}{down}", line.version, line.name)
}

/// A migration's name as it goes into the file name: lower case, words
/// joined by `_`; only letters, digits and `_`.
fn file_name_part(name: &str) -> Result<String, CliError> {
    let joined = name
        .trim()
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if joined.is_empty()
        || !joined
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(CliError::usage(format!(
            "invalid migration name `{name}`: use letters, digits, spaces, `-` and `_`"
        )));
    }
    Ok(joined)
}

/// The highest version among the folder's `V<n>__*.sql` files (0 for
/// none) and the digit count its file name used (to keep zero padding).
fn latest_version(folder: &Path) -> Result<(u64, usize), CliError> {
    let entries = std::fs::read_dir(folder).map_err(|err| {
        CliError::failure(format!(
            "cannot read the folder {}: {err}",
            folder.display()
        ))
    })?;
    let mut latest = (0, 1);
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(digits) = file
            .strip_prefix('V')
            .and_then(|rest| rest.split_once("__"))
            .map(|(digits, _)| digits)
            .filter(|_| file.ends_with(".sql"))
        else {
            continue;
        };
        if let Ok(version) = digits.parse::<u64>() {
            if version > latest.0 {
                latest = (version, digits.len());
            }
        }
    }
    Ok(latest)
}

/// Writes a new file, refusing to overwrite one.
fn write_new(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|err| CliError::failure(format!("cannot create {}: {err}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|err| CliError::failure(format!("cannot write {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case_file_name_parts() {
        assert_eq!(file_name_part("create users").unwrap(), "create_users");
        assert_eq!(
            file_name_part(" Add-Email  column ").unwrap(),
            "add_email_column"
        );
        assert_eq!(file_name_part("v2_fix").unwrap(), "v2_fix");
        for bad in ["", "   ", "drop; table", "naïve", "a/b"] {
            assert!(file_name_part(bad).is_err(), "{bad}");
        }
    }
}
