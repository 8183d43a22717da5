//! What the commands share: loading a runbook, resolving its inputs, taking its lock, planning,
//! running with a reporter, and writing reports. Commands never use each other; they use this.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::args::{OnFailureArg, RunFlags};
use crate::cli::config::Config;
use crate::cli::exit::{ExitCode, Failure};
use crate::cli::junit::{self, Case};
use crate::cli::reporter::Reporter;
use crate::cli::ui::Ui;
use crate::compile::inputs::{self, InputArgs, Inputs};
use crate::compile::runbook::Runbook;
use crate::engine::fs::FsView;
use crate::engine::fs::real::RealFs;
use crate::engine::rollback::{self, Refusal, RollbackConfig};
use crate::engine::runner::Ending;
use crate::engine::runner::{self, Confirm, RunConfig, Start};
use crate::format::diagnostic::Diagnostic;
use crate::format::mask::Masker;
use crate::format::model::OnFailure;
use crate::state::drift::{self, StepText};
use crate::state::journal::RollbackOutcome;
use crate::state::journal::RunSummary;
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
    backup_limit: u64,
) -> Result<Vec<PlannedStep>, Failure> {
    crate::engine::plan::plan_within(runbook, inputs, masker, config.cwd.clone(), backup_limit)
        .map_err(|e| Diagnostic::error(masker.mask(&e.message)).into())
}

/// What running, resuming or rolling back a runbook takes: the command's settings and flags, the
/// runbook (and the file it came from) with its inputs resolved, and their masker.
pub struct Session<'a> {
    pub config: &'a Config,
    pub flags: &'a RunFlags,
    pub runbook: &'a Arc<Runbook>,
    pub path: &'a Path,
    pub inputs: &'a Inputs,
    pub masker: &'a Masker,
}

impl Session<'_> {
    /// Runs (or resumes) the runbook; the caller holds the lock. Writes the JUnit report when
    /// asked, and rolls back a failed run when asked to.
    pub fn execute(&self, start: Start) -> Result<ExitCode, Failure> {
        let Session { config, flags, runbook, path, inputs, masker } = *self;
        crate::os::signals::install_handlers();
        let run_config = RunConfig {
            state_dir: flags.state.state_dir.clone(),
            durability: flags.durability.into(),
            backup_limit: flags.backout.backup_limit,
            confirm: confirm_of(config, flags),
            step_confirm: flags.step,
        };
        let reporter = Reporter::new(&config.ui, flags.format, masker.clone(), runbook.count_steps(), path);
        let finished = runner::execute(runbook, path, inputs, masker, &run_config, start, &reporter)?;
        write_report(flags.report.as_deref(), runbook, junit::run_cases(&finished), masker)?;
        let wants_rollback = match flags.on_failure {
            Some(choice) => choice == OnFailureArg::Rollback,
            None => runbook.on_failure == OnFailure::Rollback,
        };
        if finished.ending == Ending::Failed && wants_rollback {
            drop(reporter);
            // The run failed: that stays its exit code, however the rollback goes.
            let rolled = crate::state::journal::summarize(&finished.journal)
                .map_err(Failure::from)
                .and_then(|summary| self.roll_back(&summary, RollbackChoice::default()));
            if let Err(failure) = rolled {
                config.ui.diagnostics(&failure.diagnostics);
            }
        }
        Ok(finished.ending.into())
    }

    /// Backs out run `summary` (the caller holds the lock): what to undo, refused with exit 3
    /// when a path the run left changed since (unless `forced`) or an undo command may have run;
    /// then each undo, journaled and reported. Returns how it ended.
    pub fn roll_back(&self, summary: &RunSummary, choice: RollbackChoice) -> Result<RollbackOutcome, Failure> {
        let Session { config, flags, runbook, path, inputs, masker } = *self;
        crate::os::signals::install_handlers();
        let file_word = crate::os::args::quote(&path.display().to_string());
        let rollback_config = choice.config(flags.durability.into(), confirm_of(config, flags));
        let steps = rollback::to_undo(runbook, inputs, masker, summary, &rollback_config)
            .map_err(|r| rollback_refused(r, &file_word, false))?;
        let reporter = Reporter::new(&config.ui, flags.format, masker.clone(), steps.len(), path);
        Ok(rollback::execute(&steps, summary, masker, &rollback_config, &reporter)?)
    }
}

/// Why a rollback (or, `predicted`, its dry run) cannot start, for the operator.
pub fn rollback_refused(refusal: Refusal, file_word: &str, predicted: bool) -> Failure {
    let would = if predicted { "a rollback would refuse: " } else { "" };
    match refusal {
        Refusal::Changed(changed) => {
            let list: String = changed.iter().map(|(id, paths)| format!("\n  - {id}: {}", paths.join(", "))).collect();
            Failure::refused(
                Diagnostic::error(format!(
                    "{would}files the run left were changed since; undoing them would lose the changes:{list}"
                ))
                .hint(format!("check them; `runbook rollback {file_word} --force` restores them anyway")),
            )
        }
        Refusal::MayHaveRun(id) => Failure::refused(
            Diagnostic::error(format!(
                "{would}the undo of step `{id}` started a command that never reported back: it may have run"
            ))
            .hint(format!(
                "check what it did, then `runbook rollback {file_word} --redo {id}` to run it again, or `--mark-done {id}` if it completed"
            )),
        ),
        Refusal::Render(message) => Diagnostic::error(message).into(),
    }
}

/// The operator's word for a rollback.
#[derive(Debug, Default)]
pub struct RollbackChoice {
    pub forced: bool,
    pub redo: Option<String>,
    pub mark_done: Option<String>,
}

impl RollbackChoice {
    /// The engine's settings for this rollback.
    pub fn config(self, durability: crate::state::journal::Durability, confirm: Confirm) -> RollbackConfig {
        RollbackConfig { durability, confirm, forced: self.forced, redo: self.redo, mark_done: self.mark_done }
    }
}

fn confirm_of(config: &Config, flags: &RunFlags) -> Confirm {
    match (flags.yes, config.can_ask) {
        (true, _) => Confirm::Yes,
        (false, true) => Confirm::Ask,
        (false, false) => Confirm::Impossible,
    }
}

/// Writes a JUnit report when one was asked for.
pub fn write_report(path: Option<&Path>, runbook: &Runbook, cases: Vec<Case>, masker: &Masker) -> Result<(), Failure> {
    let Some(path) = path else { return Ok(()) };
    save(path, &junit::render(&runbook.name, &cases, masker), "the report")
}

/// Writes a file the command produces (a plan, a report) in one step: never a partial file.
pub fn save(path: &Path, text: &str, what: &str) -> Result<(), Failure> {
    save_bytes(path, text.as_bytes(), what)
}

/// Writes a file whole, atomically (never a partial file).
pub fn save_bytes(path: &Path, bytes: &[u8], what: &str) -> Result<(), Failure> {
    RealFs::default().write(path, bytes).map_err(|e| Diagnostic::error(format!("cannot save {what}: {e}")).into())
}

/// The changed runbook's steps as they render now against how they rendered when the run began
/// (with the run's inputs; secrets are not asked for, only their masks compared). `None` when
/// the journal has no rendering (an older version wrote it) or the runbook cannot render now.
pub fn rendering_changes(
    config: &Config,
    flags: &crate::cli::args::InputFlags,
    runbook: &Arc<Runbook>,
    summary: &RunSummary,
) -> Option<String> {
    if summary.rendered.is_empty() {
        return None;
    }
    let mut input_args = config.input_args(flags);
    input_args.recorded = Some((summary.inputs.clone(), format!("the journal {}", summary.path.display())));
    input_args.prompt = None;
    input_args.secrets_at_run_time = true;
    let (inputs, _) = crate::compile::inputs::resolve(runbook, &input_args).ok()?;
    let masker = inputs.masker(runbook);
    let now = crate::engine::plan::rendering(runbook, &inputs, &masker, PathBuf::from(&summary.cwd)).ok()?;
    let now: Vec<StepText> = now.iter().map(PlannedStep::text).collect();
    let differences = drift::steps(&summary.rendered, &now);
    Some(if differences.is_empty() {
        "  text changed; every step renders as it did when the run began".to_string()
    } else {
        drift::render(&differences, "then")
    })
}
