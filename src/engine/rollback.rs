//! Backing a run out: the steps it did, newest first, each by its declared `undo:` or by the
//! inverses its journal recorded before it changed anything. Journaled in the run's journal like
//! the run (a step's undo is on disk before it takes effect), so a rollback that is interrupted
//! continues where it stopped when run again; `dry_run` predicts it over an overlay instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{Runbook, Step};
use crate::engine::actions::{self, Context, StepError, World};
use crate::engine::events::Events;
use crate::engine::fs::FsView;
use crate::engine::fs::overlay::Overlay;
use crate::engine::fs::real::RealFs;
use crate::engine::render::{self, RenderError, Rendered};
use crate::engine::runner::{Confirm, RunError, RunWorld};
use crate::engine::scope::{Scope, Shared};
use crate::engine::undo;
use crate::engine::walk::{Flow, Phase, walk};
use crate::format::mask::Masker;
use crate::os::signals::interrupted;
use crate::state::journal::{self, Durability, Journal, Record, RollbackOutcome, RunSummary, StepState, UndoOutcome};
use crate::state::outcome::{Outcome, StepData};
use crate::state::undo::Backout;

/// How a rollback is done.
pub struct RollbackConfig {
    pub durability: Durability,
    pub confirm: Confirm,
    /// Accept paths changed since the run (their undo may then overwrite the change).
    pub forced: bool,
    /// The operator's word on an undo command that may have run: run it again, or take it done.
    pub redo: Option<String>,
    pub mark_done: Option<String>,
}

/// One step to back out, newest first.
pub struct ToUndo {
    pub id: String,
    /// What undoing it does, for people: the same words for the dry run, the rollback and its
    /// events, since each comes from the one [`How`] below.
    pub what: String,
    how: How,
    /// The folder the step ran in (an undo's relative paths are taken from it).
    cwd: PathBuf,
}

/// How one step is undone, decided once (its declared undo rendered in the step's own folder),
/// then carried out by [`undo`] over the disk, or over an overlay for the dry run.
enum How {
    Ops(Vec<crate::state::undo::UndoOp>),
    Declared { scope: Arc<Scope>, index: usize, rendered: Result<Box<Rendered>, String> },
    Impossible(String),
}

/// What undoing one step did, or (over the overlay) would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undone {
    pub outcome: UndoOutcome,
    /// Why it failed, or why it cannot be undone.
    pub reason: Option<String>,
}

impl Undone {
    fn new(outcome: UndoOutcome) -> Undone {
        Undone { outcome, reason: None }
    }

    fn because(outcome: UndoOutcome, reason: String) -> Undone {
        Undone { outcome, reason: Some(reason) }
    }
}

/// Why a rollback cannot start.
#[derive(Debug)]
pub enum Refusal {
    /// Paths the steps left were changed since (step id, paths).
    Changed(Vec<(String, Vec<String>)>),
    /// An undo command started and never reported back.
    MayHaveRun(String),
    Render(String),
}

/// The steps of the run to back out, newest first, with what undoing each does; or why the
/// rollback cannot start.
pub fn to_undo(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    summary: &RunSummary,
    config: &RollbackConfig,
) -> Result<Vec<ToUndo>, Refusal> {
    let shared =
        Shared::new(Arc::new(RealFs::default()), PathBuf::from(&summary.cwd), &summary.run_id, false, masker.clone());
    let scope = render::new_scope(runbook, inputs, shared).map_err(|e| Refusal::Render(masker.mask(&e.message)))?;
    let mut restorer = Restorer { summary, found: Vec::new() };
    let Ok(_) = walk(&mut restorer, runbook, &scope, "");
    let undone = summary.rollback.as_ref().map(|r| &r.undone);
    let mut out = Vec::new();
    let mut changed = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut cwd = PathBuf::from(&summary.cwd);
    let mut cwds = Vec::new();
    for found in &restorer.found {
        cwds.push(cwd.clone());
        if let Some(StepState::Finished { cwd: after, .. }) = summary.step_states.get(&found.id) {
            cwd = PathBuf::from(after);
        }
    }
    for (found, cwd) in restorer.found.iter().zip(cwds).rev() {
        let state = summary.step_states.get(&found.id);
        let done = matches!(state, Some(StepState::Finished { outcome: Outcome::Done, .. } | StepState::MarkedDone));
        let previous = undone.and_then(|u| u.get(&found.id));
        match previous {
            // Undone by an earlier rollback: what it restored is as it left it.
            Some(Some((outcome, _))) if *outcome != UndoOutcome::Failed => {
                seen.extend(summary.lefts.get(&found.id).into_iter().flatten().map(|l| PathBuf::from(&l.path)));
                continue;
            }
            Some(None) if !undo_is_safe_again(found, summary) && !decided(config, &found.id) => {
                return Err(Refusal::MayHaveRun(found.id.clone()));
            }
            _ => {}
        }
        if config.mark_done.as_deref() == Some(found.id.as_str()) {
            continue;
        }
        let step = &found.scope.runbook.steps[found.index];
        let backout = summary.backouts.get(&found.id).cloned().unwrap_or_default();
        let how = match (&step.undo, backout) {
            (Some(undo), _) if done => {
                // Rendered in the folder the step ran in, as the step itself was.
                found.scope.shared.set_cwd(cwd.clone());
                let rendered =
                    render::undo_action(undo, &found.scope).map(Box::new).map_err(|e| masker.mask(&e.message));
                How::Declared { scope: found.scope.clone(), index: found.index, rendered }
            }
            (_, Backout::Ops { ops }) => How::Ops(ops),
            (_, Backout::Impossible { reason }) if done => How::Impossible(reason),
            (None, _) if done && step.action.needs_declared_undo() => How::Impossible(format!(
                "`{}` has no automatic inverse and the step declares no `undo:`",
                step.action.key()
            )),
            _ => continue,
        };
        // Only the newest step to touch a path left what is there now: an older one's state
        // comes back when the newer one is undone.
        // (A step whose undo began in an earlier rollback changed its paths itself.)
        if let (How::Ops(_), Some(left)) = (&how, summary.lefts.get(&found.id)) {
            // A later step's path covers this one when it is the same or a folder above it.
            let covered = |p: &str| seen.iter().any(|s: &PathBuf| std::path::Path::new(p).starts_with(s));
            let fresh: Vec<_> = left.iter().filter(|l| !covered(&l.path)).cloned().collect();
            seen.extend(left.iter().map(|l| PathBuf::from(&l.path)));
            let paths = undo::changed_since(&fresh);
            if !paths.is_empty() && previous.is_none() {
                changed.push((found.id.clone(), paths));
            }
        }
        let what = match &how {
            How::Ops(ops) => ops.iter().rev().map(|o| o.describe()).collect::<Vec<_>>().join("; "),
            How::Declared { rendered: Ok(r), .. } => r.describe(masker),
            How::Declared { scope, index, rendered: Err(_) } => {
                scope.runbook.steps[*index].undo.as_ref().map(|u| u.action.summary()).unwrap_or_default()
            }
            How::Impossible(why) => format!("cannot be undone: {why}"),
        };
        out.push(ToUndo { id: found.id.clone(), what: masker.mask(&what), how, cwd });
    }
    if !changed.is_empty() && !config.forced {
        return Err(Refusal::Changed(changed));
    }
    Ok(out)
}

fn decided(config: &RollbackConfig, id: &str) -> bool {
    config.redo.as_deref() == Some(id) || config.mark_done.as_deref() == Some(id)
}

/// A step's undo that started and never reported back may be applied again when it is the
/// inverses (each is applied only if still needed) or an idempotent command.
fn undo_is_safe_again(found: &Found, summary: &RunSummary) -> bool {
    let step = &found.scope.runbook.steps[found.index];
    match &step.undo {
        Some(undo) => match &undo.action {
            crate::compile::runbook::Action::Exec(e) => e.idempotent,
            crate::compile::runbook::Action::Shell(s) => s.idempotent,
            _ => true,
        },
        None => !matches!(summary.backouts.get(&found.id), Some(Backout::Declared)),
    }
}

/// A step the journal knows, with the scope it renders in.
struct Found {
    id: String,
    scope: Arc<Scope>,
    index: usize,
}

/// Walks the steps the run reached, putting their results back (for the undos' templates).
struct Restorer<'a> {
    summary: &'a RunSummary,
    found: Vec<Found>,
}

impl Restorer<'_> {
    fn note(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) {
        if let Some(index) = scope.runbook.steps.iter().position(|s| std::ptr::eq(s, step)) {
            self.found.push(Found { id: id.to_owned(), scope: scope.clone(), index });
        }
    }
}

impl Phase for Restorer<'_> {
    type Error = std::convert::Infallible;

    fn restored(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> bool {
        match self.summary.step_states.get(id) {
            Some(StepState::Finished { outcome, data, .. })
                if *outcome != Outcome::Failed || step.continue_on_error =>
            {
                scope.set_step(&step.id, *outcome, data.clone());
                self.note(step, id, scope);
                true
            }
            Some(StepState::MarkedDone) => {
                scope.set_step(&step.id, Outcome::Done, StepData::default());
                self.note(step, id, scope);
                true
            }
            // Where the run stopped: its changes so far may be undone; nothing after it ran.
            Some(_) => {
                self.note(step, id, scope);
                false
            }
            None => false,
        }
    }

    fn before(&mut self) -> Result<Flow, Self::Error> {
        Ok(Flow::Stop)
    }

    fn skipped(&mut self, _: &Step, _: &str, _: &Arc<Scope>) -> Result<Flow, Self::Error> {
        Ok(Flow::Stop)
    }

    fn unrenderable(
        &mut self,
        _: &Step,
        _: &str,
        _: RenderError,
        _: bool,
        _: &Arc<Scope>,
    ) -> Result<Flow, Self::Error> {
        Ok(Flow::Stop)
    }

    fn perform(&mut self, _: &Step, _: &str, _: &Rendered, _: &Arc<Scope>) -> Result<Flow, Self::Error> {
        Ok(Flow::Stop)
    }

    fn include_failed(&mut self, _: &Step, _: &str, _: RenderError) -> Result<Flow, Self::Error> {
        Ok(Flow::Stop)
    }
}

/// Backs the run out, step by step, journaled in its journal.
pub fn execute(
    steps: &[ToUndo],
    summary: &RunSummary,
    masker: &Masker,
    config: &RollbackConfig,
    events: &dyn Events,
) -> Result<RollbackOutcome, RunError> {
    let started = Instant::now();
    let mut journal = Journal::open(&summary.path, masker.clone(), config.durability)?;
    journal.append(&Record::rollback_started(config.forced, config.durability), true)?;
    events.rollback_started(&summary.run_id, steps.len());
    let disk = RealFs::for_run(config.durability.syncs(), crate::os::path::parent_dir(&summary.path));
    let mut not_undone = Vec::new();
    let mut outcome = RollbackOutcome::Complete;
    for (index, step) in steps.iter().enumerate() {
        if interrupted() {
            outcome = RollbackOutcome::Interrupted;
            break;
        }
        journal.append(&Record::UndoStarted { step: step.id.clone(), time: journal::now() }, true)?;
        events.undo_started(index, &step.id, &step.what);
        let t0 = Instant::now();
        let mut world = RunWorld { events, journal: &mut journal, step: &step.id, confirm: config.confirm };
        let undone = undo(step, &disk, &mut world);
        let done = undone.outcome;
        // An impossible undo's reason was shown when it started; a failure's is the error.
        let error = (done == UndoOutcome::Failed).then(|| masker.mask(undone.reason.as_deref().unwrap_or_default()));
        let duration = t0.elapsed();
        let record = Record::UndoFinished {
            step: step.id.clone(),
            outcome: done,
            duration_ms: duration.as_millis() as u64,
            error: error.clone(),
            time: journal::now(),
        };
        journal.append(&record, true)?;
        events.undo_finished(&step.id, done, duration, error.as_deref());
        match done {
            UndoOutcome::Failed => {
                outcome = if interrupted() { RollbackOutcome::Interrupted } else { RollbackOutcome::Failed };
                break;
            }
            UndoOutcome::Impossible => {
                not_undone.push(step.id.clone());
                outcome = RollbackOutcome::Partial;
            }
            UndoOutcome::Done | UndoOutcome::Unchanged => {}
        }
    }
    // Steps an earlier, interrupted rollback of this run could not undo.
    if let Some(rollback) = &summary.rollback {
        for (id, undone) in &rollback.undone {
            if matches!(undone, Some((UndoOutcome::Impossible, _))) && !not_undone.contains(id) {
                not_undone.insert(0, id.clone());
                if outcome == RollbackOutcome::Complete {
                    outcome = RollbackOutcome::Partial;
                }
            }
        }
    }
    journal.append(&Record::RollbackFinished { outcome, time: journal::now() }, true)?;
    if outcome.ended() {
        // Nothing is left to undo: what was kept for it goes.
        let _ = std::fs::remove_dir_all(undo::backups_dir(state_dir_of(summary), &summary.runbook, &summary.run_id));
    }
    events.rollback_finished(outcome, &not_undone, started.elapsed());
    Ok(outcome)
}

/// The state folder a run's journal is in (`<state>/runs/<runbook>/<run>.jsonl`).
fn state_dir_of(summary: &RunSummary) -> &std::path::Path {
    summary.path.ancestors().nth(3).unwrap_or(std::path::Path::new("."))
}

/// Undoes one step over `fs` (the disk, or the dry run's overlay) in `world`: the one place
/// each kind of undo is carried out, so a rollback and its dry run decide alike.
fn undo(step: &ToUndo, fs: &dyn FsView, world: &mut dyn World) -> Undone {
    match &step.how {
        How::Impossible(why) => Undone::because(UndoOutcome::Impossible, why.clone()),
        How::Ops(ops) => match undo::apply(ops, fs) {
            Ok(true) => Undone::new(UndoOutcome::Done),
            Ok(false) => Undone::new(UndoOutcome::Unchanged),
            Err(e) => Undone::because(UndoOutcome::Failed, e.to_string()),
        },
        How::Declared { rendered: Err(why), .. } => Undone::because(UndoOutcome::Failed, why.clone()),
        How::Declared { scope, index, rendered: Ok(rendered) } => {
            let timeout = scope.runbook.steps[*index].undo.as_ref().and_then(|u| u.timeout);
            scope.shared.set_cwd(step.cwd.clone());
            let mut cx = Context { scope, fs, world, timeout, read_later: false };
            match actions::execute(rendered, &mut cx) {
                Ok(done) if done.outcome == Outcome::Done => Undone::new(UndoOutcome::Done),
                Ok(_) => Undone::new(UndoOutcome::Unchanged),
                // A command a dry run does not run: it would run.
                Err(StepError::NotYetKnown(_)) => Undone::new(UndoOutcome::Done),
                Err(StepError::Command { message, .. }) => Undone::because(UndoOutcome::Failed, message),
                Err(e) => Undone::because(UndoOutcome::Failed, e.to_string()),
            }
        }
    }
}

/// What a rollback's dry run predicts for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoVerdict {
    WouldChange,
    Unchanged,
    WouldFail(String),
    Impossible(String),
    /// An earlier undo runs a command, whose effect on files is known only when it runs.
    DecidedAtRunTime(String),
}

/// One undo of a rollback's dry run.
pub struct Predicted<'a> {
    pub id: &'a str,
    pub what: &'a str,
    pub verdict: UndoVerdict,
}

/// The rollback predicted over an overlay of the disk, step by step, by the same [`undo`] a
/// rollback runs.
pub fn predict<'a>(steps: &'a [ToUndo], masker: &Masker) -> Vec<Predicted<'a>> {
    let overlay = Overlay::default();
    // The first undo that runs a command: what it does to files is not in the overlay.
    let mut command: Option<&str> = None;
    steps
        .iter()
        .map(|step| {
            let undone = undo(step, &overlay, &mut actions::Silent);
            let reason = undone.reason.map(|r| masker.mask(&r)).unwrap_or_default();
            let verdict = match undone.outcome {
                UndoOutcome::Done => UndoVerdict::WouldChange,
                UndoOutcome::Unchanged => UndoVerdict::Unchanged,
                UndoOutcome::Impossible => UndoVerdict::Impossible(reason),
                UndoOutcome::Failed => match command {
                    Some(earlier) => UndoVerdict::DecidedAtRunTime(format!(
                        "the undo of `{earlier}` runs a command first, and what it changes is known only when it runs (as it stands: {reason})"
                    )),
                    None => UndoVerdict::WouldFail(reason),
                },
            };
            if command.is_none() && step.runs_command() {
                command = Some(&step.id);
            }
            Predicted { id: &step.id, what: &step.what, verdict }
        })
        .collect()
}

impl ToUndo {
    fn runs_command(&self) -> bool {
        matches!(&self.how, How::Declared { rendered: Ok(r), .. } if matches!(**r, Rendered::Exec(_) | Rendered::Shell { .. }))
    }
}
