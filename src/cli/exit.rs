//! The process exit codes (SPEC §2), and the one error a command returns: what to tell the user,
//! and the exit code. Each layer's typed errors become it here, in one place each.

use crate::engine::runner::{Ending, RunError};
use crate::format::diagnostic::Diagnostic;
use crate::state::journal::JournalError;
use crate::state::lock::LockError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything succeeded (for `plan`: every step is predicted to succeed).
    Success,
    /// A step failed (for `plan`: a step is predicted to fail).
    StepFailed,
    /// Invalid runbook, inputs or usage.
    Invalid,
    /// Refused: lock held, plan or journal no longer matches, unfinished run exists.
    Refused,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::StepFailed => 1,
            ExitCode::Invalid => 2,
            ExitCode::Refused => 3,
            ExitCode::Interrupted => 130,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// A command that could not do its job: what to tell the user, and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{}", diagnostics.first().map(|d| d.message.as_str()).unwrap_or("failed"))]
pub struct Failure {
    pub code: ExitCode,
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    pub fn invalid(diagnostics: Vec<Diagnostic>) -> Failure {
        Failure { code: ExitCode::Invalid, diagnostics }
    }

    pub fn refused(diagnostic: Diagnostic) -> Failure {
        Failure { code: ExitCode::Refused, diagnostics: vec![diagnostic] }
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Failure {
        Failure::invalid(vec![d])
    }
}

impl From<JournalError> for Failure {
    fn from(e: JournalError) -> Failure {
        let hint = match e {
            JournalError::StateDir { .. } => "choose a writable state folder with --state-dir or RUNBOOK_STATE_DIR",
            JournalError::Write { .. } => "check that the state folder (--state-dir) is writable and has space",
            JournalError::Read { .. } | JournalError::Garbled { .. } => {
                "the journal is the record of the run; repair or move that file by hand"
            }
        };
        Diagnostic::error(e.to_string()).hint(hint).into()
    }
}

impl From<LockError> for Failure {
    fn from(e: LockError) -> Failure {
        match e {
            LockError::Held { .. } => Failure::refused(Diagnostic::error(e.to_string()).hint(
                "wait for it to finish; if that process is gone, the OS has released the lock and you can try again",
            )),
            LockError::StateDir { .. } => Diagnostic::error(e.to_string())
                .hint("choose a writable state folder with --state-dir or RUNBOOK_STATE_DIR")
                .into(),
        }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Failure {
        match e {
            RunError::Vars(message) => Diagnostic::error(message).into(),
            RunError::Journal(e) => e.into(),
        }
    }
}

impl From<Ending> for ExitCode {
    fn from(ending: Ending) -> ExitCode {
        match ending {
            Ending::Succeeded => ExitCode::Success,
            Ending::Failed | Ending::Declined => ExitCode::StepFailed,
            Ending::Interrupted => ExitCode::Interrupted,
        }
    }
}

pub type CmdResult = Result<ExitCode, Failure>;
