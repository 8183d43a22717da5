//! `rollback`: backs out the newest run of a runbook, or predicts it (`--dry-run`).

use std::path::{Path, PathBuf};

use crate::cli::args::Format;
use crate::cli::args::RollbackArgs;
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::session::{self, RollbackChoice, Session};
use crate::engine::rollback::{self, UndoVerdict};
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
        return dry_run(args, &file, &runbook, &inputs, &masker, &summary, choice);
    }
    let session =
        Session { config, flags: &args.run, runbook: &runbook, path: &file, inputs: &inputs, masker: &masker };
    let outcome = session.roll_back(&summary, choice)?;
    Ok(match outcome {
        RollbackOutcome::Complete => ExitCode::Success,
        RollbackOutcome::Partial | RollbackOutcome::Failed => ExitCode::StepFailed,
        RollbackOutcome::Interrupted => ExitCode::Interrupted,
    })
}

/// The rollback predicted over the disk as it is: each undo and what it would do, as text or
/// one JSON document (`rollback --dry-run --format json`).
fn dry_run(
    args: &RollbackArgs,
    file: &Path,
    runbook: &std::sync::Arc<crate::compile::runbook::Runbook>,
    inputs: &crate::compile::inputs::Inputs,
    masker: &crate::format::mask::Masker,
    summary: &RunSummary,
    choice: RollbackChoice,
) -> CmdResult {
    let rollback_config = choice.config(args.run.durability.into(), crate::engine::runner::Confirm::Yes);
    let steps = rollback::to_undo(runbook, inputs, masker, summary, &rollback_config)
        .map_err(|r| session::rollback_refused(r, &quote(&file.display().to_string()), true))?;
    let predicted = rollback::predict(&steps, masker);
    let fails = predicted.iter().any(|p| matches!(p.verdict, UndoVerdict::WouldFail(_)));
    match args.run.format {
        Format::Json => {
            let doc = serde_json::json!({
                "run_id": summary.run_id,
                "runbook": runbook.name,
                "steps": predicted.iter().enumerate().map(|(i, p)| serde_json::json!({
                    "index": i + 1,
                    "step": p.id,
                    "action": p.what,
                    "verdict": verdict_key(&p.verdict),
                    "reason": reason_of(&p.verdict),
                })).collect::<Vec<_>>(),
                "would_fail": fails,
            });
            println!("{doc}");
        }
        Format::Text => {
            let count = if steps.len() == 1 { "1 step".to_string() } else { format!("{} steps", steps.len()) };
            let mut out =
                format!("Rollback of run {} of {} ({count} to undo, newest first)\n\n", summary.run_id, runbook.name);
            for (i, p) in predicted.iter().enumerate() {
                let verdict = match &p.verdict {
                    UndoVerdict::WouldChange => "would change".to_string(),
                    UndoVerdict::Unchanged => "unchanged".to_string(),
                    UndoVerdict::WouldFail(why) => format!("would fail: {why}"),
                    UndoVerdict::Impossible(why) => format!("cannot be undone: {why}"),
                    UndoVerdict::DecidedAtRunTime(why) => format!("decided at run time: {why}"),
                };
                out.push_str(&format!("{}. undo {}: {}\n   => {verdict}\n", i + 1, p.id, p.what));
            }
            if steps.is_empty() {
                out.push_str("Nothing to undo.\n");
            }
            print!("{out}");
        }
    }
    Ok(if fails { ExitCode::StepFailed } else { ExitCode::Success })
}

/// A predicted undo's verdict, in the words a plan's JSON uses.
fn verdict_key(verdict: &UndoVerdict) -> &'static str {
    match verdict {
        UndoVerdict::WouldChange => "would_change",
        UndoVerdict::Unchanged => "unchanged",
        UndoVerdict::WouldFail(_) => "would_fail",
        UndoVerdict::Impossible(_) => "impossible",
        UndoVerdict::DecidedAtRunTime(_) => "decided_at_run_time",
    }
}

fn reason_of(verdict: &UndoVerdict) -> Option<&str> {
    match verdict {
        UndoVerdict::WouldChange | UndoVerdict::Unchanged => None,
        UndoVerdict::WouldFail(why) | UndoVerdict::Impossible(why) | UndoVerdict::DecidedAtRunTime(why) => Some(why),
    }
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
