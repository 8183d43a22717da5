//! runbook: declarative runbooks with a predictive dry run, a crash-safe journal and resume.
//!
//! The layers, each using only those below it (see ARCHITECTURE.md):
//! `cli` (arguments, commands, reports) → `engine` (plan | run) → `state` (journal, lock) →
//! `compile` (the checked runbook) → `format` (text, YAML, diagnostics) → `os`.

pub mod cli;
pub mod compile;
pub mod engine;
pub mod format;
pub mod os;
pub mod state;

pub use cli::run;
