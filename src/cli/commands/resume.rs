//! `resume`: the newest unfinished run, continued where it stopped, once it is safe to.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::args::ResumeArgs;
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::session;
use crate::compile::runbook::Runbook;
use crate::engine::runner::Start;
use crate::format::diagnostic::Diagnostic;
use crate::os::args::quote;
use crate::state::changes;
use crate::state::journal::{self, RunOutcome, RunSummary, StepState};

pub fn run(config: &Config, args: &ResumeArgs) -> CmdResult {
    let ui = &config.ui;
    let Some((file, summary)) = find_run(config, args)? else {
        return Ok(ExitCode::Success);
    };
    let runbook = session::load_runbook(ui, &file)?;
    if summary.torn_tail {
        ui.diagnostics(&[Diagnostic::warning(format!(
            "the last line of {} was cut short (a crash while writing it); it is ignored",
            summary.path.display()
        ))]);
    }
    check_unchanged(config, args, &file, &runbook, &summary)?;
    check_lost_tail(config, args, &file, &summary)?;
    check_stopping_point(args, &file, &summary)?;
    // Inputs: the run's recorded values, then what is given now; secrets are asked again.
    let mut input_args = config.input_args(&args.inputs);
    input_args.recorded = Some((summary.inputs.clone(), format!("the journal {}", summary.path.display())));
    let inputs = session::resolve_inputs(ui, &runbook, &input_args)?;
    let masker = inputs.masker(&runbook);
    let _lock = session::take_lock(ui, &args.run.state.state_dir, &runbook.name, "resume")?;
    let start = Start::Resume {
        summary: Box::new(summary),
        forced: args.force,
        redo: args.redo.clone(),
        mark_done: args.mark_done.clone(),
    };
    session::execute(config, &args.run, &runbook, &file, &inputs, &masker, start)
}

/// Which run: the newest unfinished one of FILE's runbook, or of any runbook; `None` when the
/// newest run of FILE finished well (there is nothing to do).
fn find_run(config: &Config, args: &ResumeArgs) -> Result<Option<(PathBuf, RunSummary)>, Failure> {
    let state = &args.run.state.state_dir;
    let Some(file) = &args.file else {
        let summary = journal::list_runs(state, None)
            .iter()
            .map(|p| journal::summarize(p))
            .find(|s| s.as_ref().map_or(true, RunSummary::unfinished))
            .transpose()?
            .ok_or_else(|| Diagnostic::error(format!("there is no unfinished run to resume in {}", state.display())))?;
        // The recorded path is as it was given; from elsewhere, take it from where the run began.
        let given = PathBuf::from(&summary.runbook_path);
        let file = if given.is_relative() && !given.exists() { Path::new(&summary.cwd).join(&given) } else { given };
        return Ok(Some((file, summary)));
    };
    let runbook = session::load_runbook(&config.ui, file)?;
    match journal::newest_run(state, &runbook.name)? {
        Some(s) if s.unfinished() => Ok(Some((file.clone(), s))),
        // Resuming a finished run is not an error: there is simply nothing left to do.
        Some(s) if s.outcome == Some(RunOutcome::Succeeded) => {
            config.ui.info(&format!(
                "nothing to resume: run {} of `{}` finished successfully{}",
                s.run_id,
                runbook.name,
                s.finished.as_ref().map(|t| format!(" at {t}")).unwrap_or_default()
            ));
            Ok(None)
        }
        _ => Err(Diagnostic::error(format!(
            "there is no unfinished run of `{}` to resume in {}",
            runbook.name,
            state.display()
        ))
        .hint(format!("start one with `runbook run {}`", quote(&file.display().to_string())))
        .into()),
    }
}

/// A changed runbook is refused, listing what changed; `--force` accepts it when no step that
/// already ran changed.
fn check_unchanged(
    config: &Config,
    args: &ResumeArgs,
    file: &Path,
    runbook: &Arc<Runbook>,
    summary: &RunSummary,
) -> Result<(), Failure> {
    let changes = changes::since_run(summary, runbook, &config.cwd);
    if !changes.any() {
        return Ok(());
    }
    let listed = changes.steps_listed();
    let rendering = session::rendering_changes(config, &args.inputs, runbook, summary);
    if args.force && changes.before_stop.is_empty() {
        config.ui.info(&format!("note: the runbook changed (steps: {listed}); accepted with --force"));
        return Ok(());
    }
    let hint = if changes.before_stop.is_empty() {
        "if the change is intended, resume with --force".to_string()
    } else {
        format!(
            "steps that already ran changed ({}); --force cannot accept that. Start over with `runbook run {} --fresh`",
            changes.before_stop.join(", "),
            quote(&file.display().to_string())
        )
    };
    Err(Failure::refused(
        Diagnostic::error(format!(
            "the runbook {} changed since run {} started ({} changed); steps that differ: {listed}{}",
            file.display(),
            summary.run_id,
            changes.files.join(", "),
            rendering.map(|r| format!("\n{}", r.trim_end())).unwrap_or_default()
        ))
        .hint(hint),
    ))
}

/// A run that did not sync its journal (`--durability process`) may have lost its last records
/// when the machine went down: a command after the last one recorded may have run without a
/// trace. Those that are not safe to run twice need the operator's word (`--force`).
fn check_lost_tail(config: &Config, args: &ResumeArgs, file: &Path, summary: &RunSummary) -> Result<(), Failure> {
    if !summary.unfinished() || !summary.tail_may_be_lost() {
        return Ok(());
    }
    let last_done = summary.steps.iter().rposition(|s| {
        matches!(summary.step_states.get(&s.id), Some(StepState::Finished { .. } | StepState::MarkedDone))
    });
    let after = &summary.steps[last_done.map_or(0, |i| i + 1)..];
    let unsafe_commands: Vec<&str> =
        after.iter().filter(|s| s.command && !s.idempotent).map(|s| s.id.as_str()).collect();
    let note = format!(
        "run {} was not synced (--durability process) and the machine has restarted since its last record: the records after it may be lost",
        summary.run_id
    );
    if unsafe_commands.is_empty() || args.force {
        config.ui.info(&format!("note: {note}; the steps after it are run again"));
        return Ok(());
    }
    Err(Failure::refused(Diagnostic::error(format!("{note}, so these commands may have run: {}", unsafe_commands.join(", "))).hint(format!(
        "check what they did, then `runbook resume {} --force` to continue from the last recorded step (use --mark-done ID first for one that completed)",
        quote(&file.display().to_string())
    ))))
}

/// Where the run stopped must be safe to continue from: a command still running (left by an
/// engine that was killed) is waited for, and one that may have run needs the operator's word.
fn check_stopping_point(args: &ResumeArgs, file: &Path, summary: &RunSummary) -> Result<(), Failure> {
    for decision in [&args.redo, &args.mark_done].into_iter().flatten() {
        if !summary.steps.iter().any(|s| s.id == *decision) {
            return Err(Diagnostic::error(format!("`{decision}` is not a step of run {}", summary.run_id)).into());
        }
    }
    let Some((id, state)) = summary.stopped_at() else { return Ok(()) };
    let file_word = quote(&file.display().to_string());
    if let StepState::Started { command: Some(process) } = state
        && process.still_running()
        && !args.force
    {
        return Err(Failure::refused(
            Diagnostic::error(format!(
                "step `{id}` is still running: pid {} since {} (its engine was stopped, not the command)",
                process.pid, process.since
            ))
            .hint(format!(
                "wait for it to end, or stop it, then run `runbook resume {file_word}` again; --force resumes anyway"
            )),
        ));
    }
    let digest = summary.steps.iter().find(|s| s.id == id);
    let decided = args.redo.as_deref() == Some(id) || args.mark_done.as_deref() == Some(id);
    let may_have_run = matches!(state, StepState::Started { .. } | StepState::Interrupted);
    if may_have_run && digest.is_some_and(|d| d.command && !d.idempotent) && !decided {
        return Err(Failure::refused(Diagnostic::error(format!("step `{id}` started a command that never reported back: it may have run")).hint(format!(
            "check what it did, then either `runbook resume {file_word} --redo {id}` to run it again, or `runbook resume {file_word} --mark-done {id}` if it completed"
        ))));
    }
    Ok(())
}
