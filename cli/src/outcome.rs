//! How a command ends, and the exit code each ending gives (listed in
//! `odm --help`).

use std::fmt;
use std::process::ExitCode;

/// Success: the command did what was asked, or the answer is yes.
pub(crate) const EXIT_OK: u8 = 0;
/// Failure: the server could not be reached, a statement or migration
/// failed, the configuration or a file is bad.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Usage: the command line itself is wrong (also clap's code).
pub(crate) const EXIT_USAGE: u8 = 2;
/// The answer is no: `database exists` for a missing database, `migrate
/// check` when the folder and the database differ.
pub(crate) const EXIT_NO: u8 = 3;

/// A command that ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done, or yes.
    Done,
    /// The answer is no (exit code 3).
    No,
}

impl Outcome {
    pub(crate) fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Done => ExitCode::from(EXIT_OK),
            Outcome::No => ExitCode::from(EXIT_NO),
        }
    }
}

/// A command that could not do its work: the message printed after
/// `error: `, and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A failure (exit code 1).
    pub(crate) fn failure(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: EXIT_FAILURE,
        }
    }

    /// A wrong command line (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<odm::Error> for CliError {
    fn from(err: odm::Error) -> CliError {
        CliError::failure(err.to_string())
    }
}

impl From<odm::pg::Error> for CliError {
    fn from(err: odm::pg::Error) -> CliError {
        CliError::failure(err.to_string())
    }
}

impl From<green::GreenError> for CliError {
    fn from(err: green::GreenError) -> CliError {
        CliError::failure(format!("the work could not run on a green worker: {err}"))
    }
}

/// The result of a command.
pub(crate) type CliResult = Result<Outcome, CliError>;
