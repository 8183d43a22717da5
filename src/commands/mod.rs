//! One module per subcommand; each `run` returns the exit code or a [`crate::exit::Failure`].

pub mod plan;
pub mod resume;
pub mod run;
pub mod schema;
pub mod show;
pub mod status;
pub mod validate;

use std::path::Path;
use std::sync::Arc;

use crate::exit::Failure;
use crate::runbook::Runbook;
use crate::ui::Ui;

/// Loads and checks a runbook; warnings are printed, errors fail with exit 2.
pub fn load_runbook(ui: &Ui, path: &Path) -> Result<Arc<Runbook>, Failure> {
    let loaded = crate::loader::load(path);
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
pub fn lock(state: &Path, runbook: &str, command: &str) -> Result<crate::lock::RunLock, Failure> {
    crate::lock::acquire(state, runbook, command).map_err(|e| match e {
        crate::lock::LockError::Held { .. } => {
            Failure::refused(crate::diagnostic::Diagnostic::error(e.to_string()).hint(
                "wait for it to finish; if that process is gone, the OS has released the lock and you can try again",
            ))
        }
        crate::lock::LockError::StateDir { .. } => Failure::invalid(vec![
            crate::diagnostic::Diagnostic::error(e.to_string())
                .hint("choose a writable state folder with --state-dir or RUNBOOK_STATE_DIR"),
        ]),
    })
}

/// The run's configuration from the flags `run` and `resume` share.
pub fn run_config(flags: &crate::cli::RunFlags) -> crate::runner::Config {
    crate::runner::Config {
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
    cases: Vec<crate::junit::Case>,
    masker: &crate::secrets::Masker,
) -> Result<(), Failure> {
    let Some(path) = path else { return Ok(()) };
    crate::junit::write(path, &runbook.name, &cases, masker)
        .map_err(|e| Failure::invalid(vec![crate::diagnostic::Diagnostic::error(e)]))
}
