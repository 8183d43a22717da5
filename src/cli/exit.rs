//! The process exit codes (SPEC §2), mapped in one place.

use crate::format::diagnostic::Diagnostic;

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

    pub fn new(code: ExitCode, diagnostic: Diagnostic) -> Failure {
        Failure { code, diagnostics: vec![diagnostic] }
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Failure {
        Failure::invalid(vec![d])
    }
}

pub type CmdResult = Result<ExitCode, Failure>;
