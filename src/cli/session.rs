//! What the commands share: loading a runbook, taking its lock, the run configuration, reports.
use std::path::Path;
use std::sync::Arc;

use crate::cli::exit::Failure;
use crate::cli::ui::Ui;
use crate::compile::runbook::Runbook;

/// Loads and checks a runbook; warnings are printed, errors fail with exit 2.
pub fn load_runbook(ui: &Ui, path: &Path) -> Result<Arc<Runbook>, Failure> {
    let loaded = crate::compile::load(path);
    match loaded.runbook {
        Some(runbook) => {
            if !ui.quiet {
                ui.diagnostics(&loaded.diagnostics);
            }
            Ok(runbook)
        }
        None => Err(Failure::invalid(loaded.diagnostics)),
    }
}

/// Takes the runbook's lock, or refuses (exit 3) naming the holder.
pub fn lock(state: &Path, runbook: &str, command: &str) -> Result<crate::state::lock::RunLock, Failure> {
    crate::state::lock::acquire(state, runbook, command).map_err(|e| match e {
        crate::state::lock::LockError::Held { .. } => {
            Failure::refused(crate::format::diagnostic::Diagnostic::error(e.to_string()).hint(
                "wait for it to finish; if that process is gone, the OS has released the lock and you can try again",
            ))
        }
        crate::state::lock::LockError::StateDir { .. } => Failure::invalid(vec![
            crate::format::diagnostic::Diagnostic::error(e.to_string())
                .hint("choose a writable state folder with --state-dir or RUNBOOK_STATE_DIR"),
        ]),
    })
}

/// The run's configuration from the flags `run` and `resume` share.
pub fn run_config(flags: &crate::cli::args::RunFlags) -> crate::engine::runner::Config {
    crate::engine::runner::Config {
        yes: flags.yes,
        step_confirm: flags.step,
        format: flags.format,
        state_dir: flags.state.state_dir.clone(),
    }
}

/// Writes a JUnit report when one was asked for.
pub fn write_report(
    path: Option<&Path>,
    runbook: &Runbook,
    cases: Vec<crate::cli::junit::Case>,
    masker: &crate::format::mask::Masker,
) -> Result<(), Failure> {
    let Some(path) = path else { return Ok(()) };
    crate::cli::junit::write(path, &runbook.name, &cases, masker)
        .map_err(|e| Failure::invalid(vec![crate::format::diagnostic::Diagnostic::error(e)]))
}
