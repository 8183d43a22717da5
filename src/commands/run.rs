use std::path::PathBuf;

use crate::cli::{PlanArgs, RunArgs};
use crate::diagnostic::Diagnostic;
use crate::exit::{CmdResult, Failure};
use crate::inputs;
use crate::journal::{self, Record, RunOutcome};
use crate::runner::{self, Config, Start, shell_word};
use crate::ui::Ui;

pub fn run(ui: &Ui, args: &RunArgs) -> CmdResult {
    if args.plan.is_some() {
        return Err(Failure::invalid(vec![
            Diagnostic::error("`run --plan` is not available in this version")
                .hint("run `runbook plan` to review, then `runbook run FILE` with the same inputs"),
        ]));
    }
    let file: PathBuf = args.file.clone().expect("clap requires FILE without --plan");
    if args.dry_run {
        return super::plan::run(ui, &PlanArgs { file, inputs: args.inputs.clone(), format: args.format, out: None });
    }
    crate::process::install_signal_handlers();
    let runbook = super::load_runbook(ui, &file)?;
    let inputs = super::plan::resolve_inputs(ui, &runbook, &args.inputs.to_args(inputs::can_prompt()))?;
    let masker = super::plan::masker(&runbook, &inputs);
    let lock = super::lock(&args.state.state_dir, &runbook.name, "run")?;
    if let Some(stale) = &lock.stale {
        ui.info(&format!(
            "note: the previous holder of the lock (pid {} on {}) is gone; its lock was stale",
            stale.pid, stale.host
        ));
    }
    // An unfinished run must be resumed or explicitly abandoned.
    for path in journal::list_runs(&args.state.state_dir, Some(&runbook.name)) {
        let Ok(summary) = journal::summarize(&path) else {
            continue;
        };
        if !summary.unfinished() {
            break;
        }
        if !args.fresh {
            let at = summary
                .stopped_at()
                .map_or_else(|| "before its first step".to_string(), |(id, _)| format!("at step `{id}`"));
            let file_word = shell_word(&file.display().to_string());
            return Err(Failure::refused(
                Diagnostic::error(format!("run {} of `{}` is unfinished: it stopped {at}", summary.run_id, runbook.name)).hint(format!(
                    "continue it with `runbook resume {file_word}`, or start over with `runbook run {file_word} --fresh` (the old run is kept, marked abandoned)"
                )),
            ));
        }
        let mut j = journal::Journal::open(&path, masker.clone())
            .map_err(|e| Failure::invalid(vec![Diagnostic::error(e.to_string())]))?;
        j.append(&Record::RunFinished { outcome: RunOutcome::Abandoned, time: journal::now() }, true)
            .map_err(|e| Failure::invalid(vec![Diagnostic::error(e.to_string())]))?;
        ui.info(&format!("run {} marked abandoned (--fresh)", summary.run_id));
        break;
    }
    let cwd = std::env::current_dir().map_err(|e| Diagnostic::error(format!("cannot read the current folder: {e}")))?;
    let config =
        Config { yes: args.yes, step_confirm: args.step, format: args.format, state_dir: args.state.state_dir.clone() };
    let finished = runner::execute(ui, &runbook, &file, &inputs, masker, &config, Start::Fresh { plan: None }, cwd)?;
    drop(lock);
    Ok(finished.code)
}
