//! `run`: a runbook, or exactly a reviewed plan (`--plan`), journaled step by step.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::args::RunArgs;
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, Failure};
use crate::cli::session;
use crate::compile::inputs::Inputs;
use crate::compile::runbook::{FileDigest, Runbook};
use crate::engine::runner::Start;
use crate::format::diagnostic::Diagnostic;
use crate::os::args::quote;
use crate::state::journal::{self, Journal, Record, RunOutcome};
use crate::state::saved_plan::SavedPlan;

pub fn run(config: &Config, args: &RunArgs) -> CmdResult {
    if let Some(plan) = &args.plan {
        return run_reviewed_plan(config, args, plan);
    }
    let file: PathBuf = args.file.clone().expect("clap requires FILE without --plan");
    let runbook = session::load_runbook(&config.ui, &file)?;
    let inputs = session::resolve_inputs(&config.ui, &runbook, &config.input_args(&args.inputs))?;
    start(config, args, &file, &runbook, &inputs, None)
}

/// Takes the lock, refuses while an unfinished run exists (unless `--fresh`), then runs.
fn start(
    config: &Config,
    args: &RunArgs,
    file: &Path,
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    plan: Option<FileDigest>,
) -> CmdResult {
    let masker = inputs.masker(runbook);
    let state = &args.run.state.state_dir;
    let _lock = session::take_lock(&config.ui, state, &runbook.name, "run")?;
    if let Some(summary) = journal::newest_run(state, &runbook.name)?.filter(|s| s.unfinished()) {
        let file_word = quote(&file.display().to_string());
        if !args.fresh {
            let at = summary
                .stopped_at()
                .map_or_else(|| "before its first step".to_string(), |(id, _)| format!("at step `{id}`"));
            return Err(Failure::refused(
                Diagnostic::error(format!("run {} of `{}` is unfinished: it stopped {at}", summary.run_id, runbook.name))
                    .hint(format!(
                        "continue it with `runbook resume {file_word}`, or start over with `runbook run {file_word} --fresh` (the old run is kept, marked abandoned)"
                    )),
            ));
        }
        let mut old = Journal::open(&summary.path, masker.clone())?;
        old.append(&Record::RunFinished { outcome: RunOutcome::Abandoned, time: journal::now() }, true)?;
        config.ui.info(&format!("run {} marked abandoned (--fresh)", summary.run_id));
    }
    let start = Start::Fresh { plan, cwd: config.cwd.clone() };
    session::execute(config, &args.run, runbook, file, inputs, &masker, start)
}

/// `run --plan`: runs only if the runbook and inputs still render to exactly the reviewed plan.
fn run_reviewed_plan(config: &Config, args: &RunArgs, plan_path: &Path) -> CmdResult {
    let ui = &config.ui;
    let (plan, digest) = SavedPlan::read(plan_path)?;
    let file = PathBuf::from(&plan.path);
    let runbook = session::load_runbook(ui, &file)?;
    // Inputs: exactly the reviewed values; secrets are asked for again.
    let mut input_args = config.input_args(&Default::default());
    input_args.recorded = Some((plan.inputs.clone(), format!("the reviewed plan {}", plan_path.display())));
    let inputs = session::resolve_inputs(ui, &runbook, &input_args)?;
    let masker = inputs.masker(&runbook);
    let steps = session::plan_steps(config, &runbook, &inputs, &masker)?;
    let differences = plan.drift(&runbook, &inputs, &steps);
    if !differences.is_empty() {
        let list: String = differences.iter().map(|d| format!("\n  - {d}")).collect();
        return Err(Failure::refused(
            Diagnostic::error(
                masker.mask(&format!(
                    "the runbook no longer renders to the reviewed plan {}:{list}",
                    plan_path.display()
                )),
            )
            .hint("review a new plan (`runbook plan ... --out PLAN`) before running"),
        ));
    }
    ui.info(&format!("the runbook renders to the reviewed plan {} ({} steps)", plan_path.display(), steps.len()));
    let reference = FileDigest { path: plan_path.display().to_string(), sha256: digest };
    start(config, args, &file, &runbook, &inputs, Some(reference))
}
