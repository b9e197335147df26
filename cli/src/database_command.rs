//! `odm database create|drop|exists`: run on the server's maintenance
//! database (`postgres`, else `template1`, as `createdb` does), never on
//! the database concerned.

use odm::pg::{sqlstate, Client, Config};

use crate::args::DatabaseCommand;
use crate::database_url::Target;
use crate::outcome::{CliError, CliResult, Outcome};

/// SQLSTATE 55006: the database is being accessed by other users.
const OBJECT_IN_USE: &str = "55006";

/// Runs `command` on `target`'s server; call on a green worker.
pub(crate) fn run(command: &DatabaseCommand, target: &Target) -> CliResult {
    let name = target.config.dbname().to_owned();
    let client = maintenance_client(target)?;
    let exists = database_exists(&client, &name)?;
    match command {
        DatabaseCommand::Exists => {
            if exists {
                println!("{} exists", target.describe());
                Ok(Outcome::Done)
            } else {
                println!("{} does not exist", target.describe());
                Ok(Outcome::No)
            }
        }
        DatabaseCommand::Create => {
            if exists {
                println!("{} already exists", target.describe());
            } else {
                client.batch_execute(&format!("CREATE DATABASE {}", quote_identifier(&name)))?;
                println!("created {}", target.describe());
            }
            Ok(Outcome::Done)
        }
        DatabaseCommand::Drop { yes, force } => {
            if !yes {
                return Err(CliError::usage(format!(
                    "dropping {} deletes all its data: add --yes to confirm",
                    target.describe()
                )));
            }
            if !exists {
                println!("{} does not exist: nothing to drop", target.describe());
                return Ok(Outcome::Done);
            }
            let force = if *force { " WITH (FORCE)" } else { "" };
            client
                .batch_execute(&format!("DROP DATABASE {}{force}", quote_identifier(&name)))
                .map_err(|err| match err.code() {
                    Some(OBJECT_IN_USE) => CliError::failure(format!(
                        "{err} (add --force to end the other sessions first)"
                    )),
                    _ => err.into(),
                })?;
            println!("dropped {}", target.describe());
            Ok(Outcome::Done)
        }
    }
}

/// A connection to the maintenance database: `postgres`, or `template1`
/// when `postgres` does not exist.
fn maintenance_client(target: &Target) -> Result<Client, CliError> {
    let connect = |config: &Config| Client::connect(config);
    match connect(&target.with_dbname("postgres")) {
        Ok(client) => Ok(client),
        Err(err) if err.code() == Some(sqlstate::INVALID_CATALOG_NAME) => {
            Ok(connect(&target.with_dbname("template1"))?)
        }
        Err(err) => Err(CliError::failure(format!(
            "cannot connect to the server of {} (url from {}): {err}",
            target.describe(),
            target.source.describe()
        ))),
    }
}

fn database_exists(client: &Client, name: &str) -> Result<bool, CliError> {
    let rows = client.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])?;
    Ok(!rows.is_empty())
}

/// `name` as a quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
