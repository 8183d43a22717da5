//! Backing a run out: the steps it did, newest first, each by its declared `undo:` or by the
//! inverses its journal recorded before it changed anything. Journaled in the run's journal like
//! the run (a step's undo is on disk before it takes effect), so a rollback that is interrupted
//! continues where it stopped when run again; `dry_run` predicts it over an overlay instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{Runbook, Step};
use crate::engine::actions::{self, Context, StepError};
use crate::engine::events::Events;
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
    /// What undoing it does, for people.
    pub what: String,
    how: How,
    /// The folder the step ran in (an undo's relative paths are taken from it).
    cwd: PathBuf,
}

enum How {
    Ops(Vec<crate::state::undo::UndoOp>),
    Declared { scope: Arc<Scope>, index: usize },
    Impossible(String),
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
            (Some(_), _) if done => How::Declared { scope: found.scope.clone(), index: found.index },
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
            How::Declared { scope, index } => {
                let undo = scope.runbook.steps[*index].undo.as_ref().expect("a declared undo");
                render::undo_action(undo, scope).map_or_else(|_| undo.action.summary(), |r| r.describe(masker))
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
        let result = undo_one(step, &disk, &mut journal, config, events, masker);
        let (done, error) = match result {
            Ok(done) => (done, None),
            Err(e) => (UndoOutcome::Failed, Some(masker.mask(&e))),
        };
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

fn undo_one(
    step: &ToUndo,
    disk: &RealFs,
    journal: &mut Journal,
    config: &RollbackConfig,
    events: &dyn Events,
    masker: &Masker,
) -> Result<UndoOutcome, String> {
    match &step.how {
        How::Impossible(_) => Ok(UndoOutcome::Impossible),
        How::Ops(ops) => match undo::apply(ops, disk) {
            Ok(true) => Ok(UndoOutcome::Done),
            Ok(false) => Ok(UndoOutcome::Unchanged),
            Err(e) => Err(e.to_string()),
        },
        How::Declared { scope, index } => {
            let undo = scope.runbook.steps[*index].undo.as_ref().expect("a declared undo");
            scope.shared.set_cwd(step.cwd.clone());
            let rendered = render::undo_action(undo, scope).map_err(|e| masker.mask(&e.message))?;
            let mut world = RunWorld { events, journal, step: &step.id, confirm: config.confirm };
            let mut cx = Context { scope, fs: disk, world: &mut world, timeout: undo.timeout, read_later: false };
            match actions::execute(&rendered, &mut cx) {
                Ok(done) if done.outcome == Outcome::Done => Ok(UndoOutcome::Done),
                Ok(_) => Ok(UndoOutcome::Unchanged),
                Err(StepError::Command { message, .. }) => Err(message),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// The rollback predicted over an overlay of the disk: each step with its verdict.
pub fn predict(steps: &[ToUndo], masker: &Masker) -> Vec<(String, String, Result<bool, String>)> {
    let overlay = Overlay::default();
    steps
        .iter()
        .map(|step| {
            let verdict = match &step.how {
                How::Impossible(_) => Err("cannot be undone".to_string()),
                How::Ops(ops) => undo::apply(ops, &overlay).map_err(|e| e.to_string()),
                How::Declared { scope, index } => {
                    let undo = scope.runbook.steps[*index].undo.as_ref().expect("a declared undo");
                    match render::undo_action(undo, scope) {
                        Ok(rendered) => {
                            let mut world = actions::Silent;
                            let mut cx =
                                Context { scope, fs: &overlay, world: &mut world, timeout: None, read_later: false };
                            match actions::execute(&rendered, &mut cx) {
                                Ok(done) => Ok(done.outcome == Outcome::Done),
                                Err(StepError::NotYetKnown(_)) => Ok(true),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        Err(e) => Err(e.message),
                    }
                }
            };
            (step.id.clone(), step.what.clone(), verdict.map_err(|e| masker.mask(&e)))
        })
        .collect()
}
