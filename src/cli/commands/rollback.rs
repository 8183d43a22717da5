//! `rollback`: backs out the newest run of a runbook, or predicts it (`--dry-run`).

use std::path::{Path, PathBuf};

use crate::cli::args::RollbackArgs;
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::session::{self, RollbackChoice};
use crate::engine::rollback::{self, Refusal};
use crate::format::diagnostic::Diagnostic;
use crate::os::args::quote;
use crate::state::changes;
use crate::state::journal::{self, RollbackOutcome, RunOutcome, RunSummary};

pub fn run(config: &Config, args: &RollbackArgs) -> CmdResult {
    let ui = &config.ui;
    let (file, summary) = find_run(config, args)?;
    if summary.outcome == Some(RunOutcome::RolledBack) {
        ui.info(&format!(
            "nothing to roll back: run {} of `{}` was rolled back{}",
            summary.run_id,
            summary.runbook,
            summary.finished.as_ref().map(|t| format!(" at {t}")).unwrap_or_default()
        ));
        return Ok(ExitCode::Success);
    }
    let runbook = session::load_runbook(ui, &file)?;
    let changes = changes::since_run(&summary, &runbook, &config.cwd);
    if changes.any() && !args.force {
        let rendering = session::rendering_changes(config, &args.inputs, &runbook, &summary);
        return Err(Failure::refused(
            Diagnostic::error(format!(
                "the runbook {} changed since run {} started; steps that differ: {}{}",
                file.display(),
                summary.run_id,
                changes.steps_listed(),
                rendering.map(|r| format!("\n{}", r.trim_end())).unwrap_or_default()
            ))
            .hint("the undos are rendered from the runbook as it is now; if that is intended, roll back with --force"),
        ));
    }
    let mut input_args = config.input_args(&args.inputs);
    input_args.recorded = Some((summary.inputs.clone(), format!("the journal {}", summary.path.display())));
    let inputs = session::resolve_inputs(ui, &runbook, &input_args)?;
    let masker = inputs.masker(&runbook);
    let _lock = session::take_lock(ui, &args.run.state.state_dir, &runbook.name, "rollback")?;
    let choice = RollbackChoice { forced: args.force, redo: args.redo.clone(), mark_done: args.mark_done.clone() };
    if args.dry_run {
        return dry_run(args, &runbook, &inputs, &masker, &summary, choice);
    }
    let outcome = session::roll_back(config, &args.run, &runbook, &file, &inputs, &masker, &summary, choice)?;
    Ok(match outcome {
        RollbackOutcome::Complete => ExitCode::Success,
        RollbackOutcome::Partial | RollbackOutcome::Failed => ExitCode::StepFailed,
        RollbackOutcome::Interrupted => ExitCode::Interrupted,
    })
}

/// The rollback predicted over the disk as it is: each undo and what it would do.
fn dry_run(
    args: &RollbackArgs,
    runbook: &std::sync::Arc<crate::compile::runbook::Runbook>,
    inputs: &crate::compile::inputs::Inputs,
    masker: &crate::format::mask::Masker,
    summary: &RunSummary,
    choice: RollbackChoice,
) -> CmdResult {
    let rollback_config = choice.config(args.run.durability.into(), crate::engine::runner::Confirm::Yes);
    let steps = match rollback::to_undo(runbook, inputs, masker, summary, &rollback_config) {
        Ok(steps) => steps,
        Err(Refusal::Changed(changed)) => {
            let list: String = changed.iter().map(|(id, paths)| format!("\n  - {id}: {}", paths.join(", "))).collect();
            return Err(Failure::refused(Diagnostic::error(format!(
                "files the run left were changed since; a rollback would refuse:{list}"
            ))));
        }
        Err(Refusal::MayHaveRun(id)) => {
            return Err(Failure::refused(Diagnostic::error(format!(
                "the undo of step `{id}` started a command that never reported back; a rollback would ask what to do"
            ))));
        }
        Err(Refusal::Render(message)) => return Err(Diagnostic::error(message).into()),
    };
    let predicted = rollback::predict(&steps, masker);
    let mut out = format!(
        "Rollback of run {} of {} ({} steps to undo, newest first)\n\n",
        summary.run_id,
        runbook.name,
        steps.len()
    );
    let mut fails = false;
    for (i, (id, what, verdict)) in predicted.iter().enumerate() {
        let verdict = match verdict {
            Ok(true) => "would change".to_string(),
            Ok(false) => "unchanged".to_string(),
            Err(why) => {
                fails |= !why.starts_with("cannot be undone");
                if why.starts_with("cannot be undone") { why.clone() } else { format!("would fail: {why}") }
            }
        };
        out.push_str(&format!("{}. undo {id}: {what}\n   => {verdict}\n", i + 1));
    }
    if steps.is_empty() {
        out.push_str("Nothing to undo.\n");
    }
    print!("{out}");
    Ok(if fails { ExitCode::StepFailed } else { ExitCode::Success })
}

/// The newest run of FILE's runbook, or the newest run in the state folder.
fn find_run(config: &Config, args: &RollbackArgs) -> Result<(PathBuf, RunSummary), Failure> {
    let state = &args.run.state.state_dir;
    let no_run = |what: &str| {
        Failure::from(
            Diagnostic::error(format!("there is no run {what} in {}", state.display()))
                .hint("a rollback backs out a run that `runbook run` started"),
        )
    };
    let Some(file) = &args.file else {
        let path = journal::list_runs(state, None).into_iter().next().ok_or_else(|| no_run("to roll back"))?;
        let summary = journal::summarize(&path)?;
        let given = PathBuf::from(&summary.runbook_path);
        let file = if given.is_relative() && !given.exists() { Path::new(&summary.cwd).join(&given) } else { given };
        return Ok((file, summary));
    };
    let runbook = session::load_runbook(&config.ui, file)?;
    let summary = journal::newest_run(state, &runbook.name)?.ok_or_else(|| {
        no_run(&format!("of `{}` (start one with `runbook run {}`)", runbook.name, quote(&file.display().to_string())))
    })?;
    Ok((file.clone(), summary))
}
