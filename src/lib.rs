//! runbook: declarative runbooks with a predictive dry run, a crash-safe journal and resume.
//!
//! The layers, each using only those below it (see ARCHITECTURE.md):
//! `cli` (arguments, commands, reports) → `engine` (plan | run) → `state` (journal, lock, saved
//! plans) → `compile` (the checked runbook) → `format` (text, YAML, diagnostics) → `os`.

// System calls that need `unsafe` live in the `os` layer alone, each with its reason.
#![deny(unsafe_code)]

mod cli;
mod compile;
mod engine;
mod format;
#[allow(unsafe_code)]
mod os;
mod state;

/// The command line: what `main` calls.
pub use cli::run;

// The library's own surface, for the benches and the fuzz target: load and check a runbook,
// resolve its inputs, plan it; and the pieces whose cost the benches measure.
pub use compile::inputs::{InputArgs, Inputs, resolve as resolve_inputs};
pub use compile::runbook::Runbook;
pub use compile::{Loaded, load, load_text};
pub use engine::plan::plan;
pub use format::diagnostic::Diagnostic;
pub use format::mask::Masker;
pub use state::journal::{Durability, Journal, Record};
pub use state::saved_plan::{PlannedStep, Verdict};
