//! Continuing an unfinished run, once it is safe to (`resume`, and `run --continue`): the
//! runbook unchanged, no command still running or possibly run without a word from the
//! operator, and the steps that already ran rendering the same with the inputs given now. And
//! the other side of applying a runbook until it has succeeded once: a run that already
//! succeeded with the same files and inputs (`--skip-if-succeeded`).

use std::path::Path;
use std::sync::Arc;

use crate::cli::args::{InputFlags, RunFlags};
use crate::cli::config::Config;
use crate::cli::documents;
use crate::cli::event::{Event, Text};
use crate::cli::exit::{CmdResult, Failure};
use crate::cli::policy::Policy;
use crate::cli::session::{self, Session};
use crate::compile::inputs::Inputs;
use crate::compile::runbook::{FileDigest, Runbook};
use crate::engine::runner::Start;
use crate::format::diagnostic::{Diagnostic, plural};
use crate::os::args::quote;
use crate::state::approvals::Approver;
use crate::state::changes;
use crate::state::drift::{self, StepText};
use crate::state::journal::{self, RunOutcome, RunSummary, StepState};
use crate::state::outcome::Outcome;
use crate::state::saved_plan::PlannedStep;

/// What the operator said about continuing.
pub struct Continuation<'a> {
    pub inputs: &'a InputFlags,
    pub run: &'a RunFlags,
    /// The approvals a reviewed plan's run must still have.
    pub approval: &'a crate::cli::args::ApprovalFlags,
    /// Accept a runbook changed after the stopping point, a command still running, a tail that
    /// may be lost.
    pub force: bool,
    pub redo: Option<String>,
    pub mark_done: Option<String>,
}

/// Continues run `summary` of the runbook in `file` where it stopped.
pub fn continue_run(config: &Config, args: &Continuation, file: &Path, summary: RunSummary) -> CmdResult {
    let ui = &config.ui;
    let runbook = session::load_runbook(ui, file)?;
    if summary.torn_tail {
        ui.diagnostics(&[Diagnostic::warning(format!(
            "the last line of {} was cut short (a crash while writing it); it is ignored",
            summary.path.display()
        ))]);
    }
    let approvals = check_approvals(args, &summary)?;
    check_unchanged(config, args, file, &runbook, &summary)?;
    check_lost_tail(config, args, file, &summary)?;
    check_stopping_point(args, file, &summary)?;
    // Inputs: the run's recorded values, then what is given now; secrets are asked again.
    let mut input_args = config.input_args(args.inputs);
    input_args.recorded = Some((summary.inputs.clone(), format!("the journal {}", summary.path.display())));
    let inputs = session::resolve_inputs(ui, &runbook, &input_args)?;
    check_same_rendering(config, file, &runbook, &inputs, &summary)?;
    let masker = inputs.masker(&runbook);
    let _lock = session::take_lock(ui, &args.run.state.state_dir, &runbook.name, "resume")?;
    let start = Start::Resume {
        summary: Box::new(summary),
        forced: args.force,
        redo: args.redo.clone(),
        mark_done: args.mark_done.clone(),
        approvals,
    };
    let session = Session { config, flags: args.run, runbook: &runbook, path: file, inputs: &inputs, masker: &masker };
    session.execute(start)
}

/// Under a policy that requires approvals, a run goes on only if it is of a reviewed plan that is
/// still the same file and still approved now (an approver may have been removed since).
fn check_approvals(args: &Continuation, summary: &RunSummary) -> Result<Vec<Approver>, Failure> {
    let policy = Policy::resolve(args.approval)?;
    if !policy.requires_approval() {
        return Ok(Vec::new());
    }
    let Some(plan) = &summary.plan else {
        return policy.refuse_unreviewed(&format!("run {} not continued", summary.run_id)).map(|()| Vec::new());
    };
    let given = Path::new(&plan.path);
    let path = if given.is_relative() && !given.exists() { Path::new(&summary.cwd).join(given) } else { given.into() };
    let bytes = std::fs::read(&path).ok().filter(|b| crate::format::digest::sha256_hex(b) == plan.sha256).ok_or_else(|| {
        Failure::refused(Diagnostic::error(format!(
            "run {} ran the reviewed plan {} (sha256 {}), which is no longer there as it was; its approvals cannot be checked, and nothing was changed",
            summary.run_id,
            path.display(),
            plan.sha256
        )).hint("put the reviewed plan (and its .approvals folder) back where it was"))
    })?;
    policy.check_plan(&path, &bytes)
}

/// With inputs that differ from the run's, the steps that already ran must render exactly as
/// they did: continuing is then the same as having run with the new values from the start.
fn check_same_rendering(
    config: &Config,
    file: &Path,
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    summary: &RunSummary,
) -> Result<(), Failure> {
    let now = inputs.recordable(runbook);
    if now == summary.inputs || summary.rendered.is_empty() {
        return Ok(());
    }
    let masker = inputs.masker(runbook);
    let rendering = crate::engine::plan::rendering(runbook, inputs, &masker, std::path::PathBuf::from(&summary.cwd))
        .map_err(|e| Failure::from(Diagnostic::error(masker.mask(&e.message))))?;
    // A failed step runs again with the new inputs: fixing them is why one continues.
    let ran = |id: &str| match summary.step_states.get(id) {
        Some(StepState::Finished { outcome, .. }) => *outcome != Outcome::Failed,
        Some(StepState::MarkedDone) => true,
        _ => false,
    };
    let then: Vec<StepText> = summary.rendered.iter().filter(|s| ran(&s.id)).cloned().collect();
    let now_steps: Vec<StepText> =
        rendering.iter().map(PlannedStep::text).filter(|s| then.iter().any(|t| t.id == s.id)).collect();
    let differences = drift::steps(&then, &now_steps);
    if differences.is_empty() {
        let n = then.len();
        config.ui.info(&format!(
            "note: continuing with other inputs; the {n} {} that ran {} the same",
            plural(n, "step", "steps"),
            plural(n, "renders", "render")
        ));
        return Ok(());
    }
    let ids: Vec<String> = differences
        .iter()
        .filter_map(|d| match d {
            drift::Difference::Changed { id, .. } | drift::Difference::Removed { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    Err(Failure::refused(
        Diagnostic::error(masker.mask(&format!(
            "with the inputs given now, steps that already ran would render differently: {}\n{}",
            ids.join(", "),
            drift::render(&differences, "then").trim_end()
        )))
        .hint(format!(
            "continue with the run's inputs, or start over with `runbook run {} --fresh`",
            quote(&file.display().to_string())
        )),
    ))
}

/// A changed runbook is refused, listing what changed; `--force` accepts it when no step that
/// already ran changed.
fn check_unchanged(
    config: &Config,
    args: &Continuation,
    file: &Path,
    runbook: &Arc<Runbook>,
    summary: &RunSummary,
) -> Result<(), Failure> {
    let changes = changes::since_run(summary, runbook, &config.cwd);
    if !changes.any() {
        return Ok(());
    }
    let listed = changes.steps_listed();
    let rendering = session::rendering_changes(config, args.inputs, runbook, summary);
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
fn check_lost_tail(config: &Config, args: &Continuation, file: &Path, summary: &RunSummary) -> Result<(), Failure> {
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
fn check_stopping_point(args: &Continuation, file: &Path, summary: &RunSummary) -> Result<(), Failure> {
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

/// The newest run of this runbook in `state`, when it succeeded with these runbook files and
/// inputs.
pub fn already_succeeded(state: &Path, runbook: &Runbook, inputs: &Inputs) -> Result<Option<RunSummary>, Failure> {
    Ok(journal::newest_run(state, &runbook.name)?.filter(|s| already_done(s, runbook, inputs)))
}

/// Whether `run` succeeded with these runbook files and inputs (secrets are not recorded, so
/// they are not compared).
pub fn already_done(run: &RunSummary, runbook: &Runbook, inputs: &Inputs) -> bool {
    let digests = |files: &[FileDigest]| {
        let mut d: Vec<String> = files.iter().map(|f| f.sha256.clone()).collect();
        d.sort();
        d
    };
    run.outcome == Some(RunOutcome::Succeeded)
        && digests(&run.files) == digests(&runbook.file_digests())
        && run.inputs == inputs.recordable(runbook)
}

/// Nothing to do: one `already_done` event, or a line for people.
pub fn report_already_done(config: &Config, json: bool, run: &RunSummary) {
    if json {
        let event = Event::AlreadyDone {
            runbook: run.runbook.clone(),
            run_id: run.run_id.clone(),
            journal: Text::journaled(&run.path.display().to_string()),
            steps: run.step_states.iter().map(|(id, s)| documents::step_record(id, s)).collect(),
        };
        println!("{}", event.to_line());
    } else {
        config.ui.info(&format!(
            "nothing to do: run {} of `{}` succeeded with the same runbook and inputs{}",
            run.run_id,
            run.runbook,
            run.finished.as_ref().map(|t| format!(" (finished {t})")).unwrap_or_default()
        ));
    }
}
