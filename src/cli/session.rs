//! What the commands share: loading a runbook, resolving its inputs, taking its lock, planning,
//! running with a reporter, and writing reports. Commands never use each other; they use this.

use std::path::Path;
use std::sync::Arc;

use crate::cli::args::RunFlags;
use crate::cli::config::Config;
use crate::cli::exit::{ExitCode, Failure};
use crate::cli::junit::{self, Case};
use crate::cli::reporter::Reporter;
use crate::cli::ui::Ui;
use crate::compile::inputs::{self, InputArgs, Inputs};
use crate::compile::runbook::Runbook;
use crate::engine::fs::FsView;
use crate::engine::fs::real::RealFs;
use crate::engine::runner::{self, Confirm, RunConfig, Start};
use crate::format::diagnostic::Diagnostic;
use crate::format::mask::Masker;
use crate::state::lock::{self, RunLock};
use crate::state::saved_plan::PlannedStep;

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

/// Every input's value; warnings are printed, every problem fails together with exit 2.
pub fn resolve_inputs(ui: &Ui, runbook: &Runbook, args: &InputArgs) -> Result<Inputs, Failure> {
    let (resolved, warnings) = inputs::resolve(runbook, args).map_err(Failure::invalid)?;
    ui.diagnostics(&warnings);
    Ok(resolved)
}

/// Takes the runbook's lock (or refuses, exit 3, naming the holder); says so when the previous
/// holder died without releasing its record.
pub fn take_lock(ui: &Ui, state: &Path, runbook: &str, command: &str) -> Result<RunLock, Failure> {
    let lock = lock::acquire(state, runbook, command)?;
    if let Some(stale) = &lock.stale {
        ui.info(&format!(
            "note: the previous holder of the lock (pid {} on {}) is gone; its lock was stale",
            stale.pid, stale.host
        ));
    }
    Ok(lock)
}

/// Predicts every step from the folder the command started in.
pub fn plan_steps(
    config: &Config,
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
) -> Result<Vec<PlannedStep>, Failure> {
    crate::engine::plan::plan(runbook, inputs, masker, config.cwd.clone())
        .map_err(|e| Diagnostic::error(masker.mask(&e.message)).into())
}

/// Runs (or resumes) a runbook with the run flags `run` and `resume` share; the caller holds
/// the lock. Writes the JUnit report when asked.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    config: &Config,
    flags: &RunFlags,
    runbook: &Arc<Runbook>,
    path: &Path,
    inputs: &Inputs,
    masker: &Masker,
    start: Start,
) -> Result<ExitCode, Failure> {
    crate::os::signals::install_handlers();
    let confirm = match (flags.yes, config.can_ask) {
        (true, _) => Confirm::Yes,
        (false, true) => Confirm::Ask,
        (false, false) => Confirm::Impossible,
    };
    let run_config = RunConfig {
        state_dir: flags.state.state_dir.clone(),
        durability: flags.durability.into(),
        confirm,
        step_confirm: flags.step,
    };
    let reporter = Reporter::new(&config.ui, flags.format, masker.clone(), runbook.count_steps(), path);
    let finished = runner::execute(runbook, path, inputs, masker, &run_config, start, &reporter)?;
    write_report(flags.report.as_deref(), runbook, junit::run_cases(&finished), masker)?;
    Ok(finished.ending.into())
}

/// Writes a JUnit report when one was asked for.
pub fn write_report(path: Option<&Path>, runbook: &Runbook, cases: Vec<Case>, masker: &Masker) -> Result<(), Failure> {
    let Some(path) = path else { return Ok(()) };
    save(path, &junit::render(&runbook.name, &cases, masker), "the report")
}

/// Writes a file the command produces (a plan, a report) in one step: never a partial file.
pub fn save(path: &Path, text: &str, what: &str) -> Result<(), Failure> {
    RealFs::default()
        .write(path, text.as_bytes())
        .map_err(|e| Diagnostic::error(format!("cannot save {what}: {e}")).into())
}
