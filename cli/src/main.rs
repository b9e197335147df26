//! `odm`, the command line of odm: `odm database create|drop|exists` and
//! `odm migrate add|run|revert|status|check`. Run `odm --help`.
//!
//! Which module does what: `args` (the command line and its help),
//! `database_url` (finding the database: flag, `DATABASE_URL`, `.env`,
//! `PG*`), `database_command` and `migrate_command` (the commands),
//! `outcome` (exit codes).
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod args;
mod database_command;
mod database_url;
mod migrate_command;
mod outcome;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, MigrateCommand};
use outcome::{CliError, CliResult};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}

/// Runs the command: `migrate add` in place, the others on a green
/// worker, as odm's blocking calls need.
fn run(cli: Cli) -> CliResult {
    if let Command::Migrate(MigrateCommand::Add { name, down, source }) = &cli.command {
        return migrate_command::add(name, *down, &source.source);
    }
    let target = database_url::resolve(cli.database_url.as_deref(), Path::new(".env"))?;
    let green = green::GreenPool::new();
    let result = green.run(move || match &cli.command {
        Command::Database(command) => database_command::run(command, &target),
        Command::Migrate(command) => migrate_command::run(command, &target),
    });
    result.map_err(CliError::from)?
}
