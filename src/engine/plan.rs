//! The dry run: the shared walk over an [`Overlay`] of the filesystem, so each step is judged
//! against what the steps before it would have done. Nothing is written; only `read-only` probes
//! run. Each step's verdict is the action's own effect, predicted (see `engine::actions`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{Runbook, Step};
use crate::engine::actions::{self, Confirmation, Context, StepError, World};
use crate::engine::fs::overlay::Overlay;
use crate::engine::render::{self, Check, RenderError, RenderErrorKind, Rendered};
use crate::engine::scope::{Scope, Shared};
use crate::engine::undo::{Change, Recorder};
use crate::engine::walk::{Flow, Phase, walk};
use crate::format::mask::Masker;
use crate::os::process::{Captured, Spec};
use crate::state::outcome::{Outcome, StepData};
use crate::state::saved_plan::{PlannedBackout, PlannedStep, Verdict};

/// How much a run keeps of what its steps replace or remove, unless told otherwise.
pub const DEFAULT_BACKUP_LIMIT: u64 = 256 << 20;

/// Predicts every step of `runbook` run from `cwd` with these inputs; secrets are masked.
pub fn plan(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    cwd: PathBuf,
) -> Result<Vec<PlannedStep>, RenderError> {
    walk_plan(runbook, inputs, masker, cwd, true, DEFAULT_BACKUP_LIMIT)
}

/// [`plan`], with a run's limit on what it keeps to undo its steps.
pub fn plan_within(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    cwd: PathBuf,
    backup_limit: u64,
) -> Result<Vec<PlannedStep>, RenderError> {
    walk_plan(runbook, inputs, masker, cwd, true, backup_limit)
}

/// Every step as rendered, predicted without running anything, not even read-only probes (what
/// depends on them is rendered at run time): what a run records as its starting point.
pub fn rendering(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    cwd: PathBuf,
) -> Result<Vec<PlannedStep>, RenderError> {
    walk_plan(runbook, inputs, masker, cwd, false, DEFAULT_BACKUP_LIMIT)
}

fn walk_plan(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    cwd: PathBuf,
    probes: bool,
    backup_limit: u64,
) -> Result<Vec<PlannedStep>, RenderError> {
    let shared = Shared::new(Arc::new(Overlay::default()), cwd, "plan", true, masker.clone());
    let scope = render::new_scope(runbook, inputs, shared)?;
    let mut planner = Planner { masker, probes, steps: Vec::new(), kept: 0, backup_limit };
    let Ok(_) = walk(&mut planner, runbook, &scope, "");
    Ok(planner.steps)
}

struct Planner<'a> {
    masker: &'a Masker,
    /// Whether read-only probes run.
    probes: bool,
    steps: Vec<PlannedStep>,
    /// Bytes the run would keep to undo the steps so far, and the most it may.
    kept: u64,
    backup_limit: u64,
}

/// A plan's world: only read-only probes run, when they may (for real: later steps are
/// predicted from their output); no one is asked anything, and nothing is shown.
struct PlanWorld {
    probes: bool,
}

impl World for PlanWorld {
    fn command(&mut self, spec: &Spec, probe: bool) -> Option<std::io::Result<Captured>> {
        if !probe || !self.probes {
            return None;
        }
        let spec = Spec { timeout: spec.timeout.or(Some(actions::PROBE_TIMEOUT)), ..spec.clone() };
        Some(crate::os::process::run(&spec, &mut |_| {}, &mut |_, _| {}))
    }

    fn say(&mut self, _: &str) {}

    fn confirm(&mut self, _: &str) -> Confirmation {
        Confirmation::Later
    }

    fn bytes(&mut self, _: u64, _: u64) {}
}

impl Planner<'_> {
    /// Records a step's verdict, with its rendered action when there is one.
    fn push(&mut self, step: &Step, id: &str, title: String, rendered: Option<&Rendered>, verdict: Verdict) {
        let m = self.masker;
        let verdict = match verdict {
            Verdict::WouldFail(w) => Verdict::WouldFail(m.mask(&w)),
            Verdict::DecidedAtRunTime(w) => Verdict::DecidedAtRunTime(m.mask(&w)),
            v => v,
        };
        self.steps.push(PlannedStep {
            id: id.to_owned(),
            title: m.mask(&title),
            action: rendered.map(|r| r.describe(m)),
            details: rendered.map(|r| render::details(step, r, m)).unwrap_or_default(),
            verdict,
            backout: None,
        });
    }

    /// The backout of the step just predicted, from the changes it would make.
    fn back_out(&mut self, step: &Step, changes: &[Change], scope: &Arc<Scope>) {
        let backout = match &step.undo {
            Some(undo) => Some(match render::undo_action(undo, scope) {
                Ok(r) => PlannedBackout::Undo(vec![r.describe(self.masker)]),
                Err(_) => PlannedBackout::Undo(vec![format!("{} (rendered at run time)", undo.action.summary())]),
            }),
            None if step.action.needs_declared_undo() => Some(PlannedBackout::Impossible(format!(
                "`{}` has no automatic inverse and the step declares no `undo:`",
                step.action.key()
            ))),
            None if changes.is_empty() => None,
            None => {
                let needed: u64 = changes.iter().map(Change::kept_bytes).sum();
                if self.kept + needed > self.backup_limit {
                    Some(PlannedBackout::Impossible(crate::engine::undo::over_limit(needed, self.backup_limit)))
                } else {
                    self.kept += needed;
                    Some(PlannedBackout::Undo(changes.iter().rev().map(|c| c.inverse().describe()).collect()))
                }
            }
        };
        if let Some(last) = self.steps.last_mut() {
            last.backout = backout.map(|b| match b {
                PlannedBackout::Undo(lines) => {
                    PlannedBackout::Undo(lines.iter().map(|l| self.masker.mask(l)).collect())
                }
                PlannedBackout::Impossible(why) => PlannedBackout::Impossible(self.masker.mask(&why)),
            });
        }
    }
}

impl Phase for Planner<'_> {
    type Error = std::convert::Infallible;

    fn skipped(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> Result<Flow, Self::Error> {
        scope.set_step(&step.id, Outcome::Skipped, StepData::default());
        // What it would have done, when that can be told, for the reviewer.
        let rendered = render::action(step, scope).ok();
        self.push(step, id, render::title(step, None, scope), rendered.as_ref(), Verdict::Skipped);
        Ok(Flow::Continue)
    }

    fn unrenderable(
        &mut self,
        step: &Step,
        id: &str,
        error: RenderError,
        in_when: bool,
        scope: &Arc<Scope>,
    ) -> Result<Flow, Self::Error> {
        let what = if in_when { "`when`" } else { "this step" };
        // A name left undefined by a command that did not run: known only when the run gets there;
        // by a step predicted to fail: that failure comes first.
        let waits_for = step.refs.iter().find(|r| scope.is_unknown(r));
        let failed = step.refs.iter().find(|r| scope.outcome(r) == Some(Outcome::Failed));
        let verdict = match (waits_for, failed) {
            _ if error.kind == RenderErrorKind::NeedsSecret => Verdict::DecidedAtRunTime(error.message),
            (Some(r), _) if error.kind == RenderErrorKind::Undefined => {
                Verdict::DecidedAtRunTime(format!("{what} depends on the output of `{r}`, known only when it runs"))
            }
            (_, Some(r)) if error.kind == RenderErrorKind::Undefined => {
                Verdict::WouldFail(format!("{what} needs the results of `{r}`, which would fail"))
            }
            _ => Verdict::WouldFail(error.message),
        };
        scope.set_unknown(&step.id);
        // When only the `when` waits, what the step would do can be told already.
        let rendered = if in_when { render::action(step, scope).ok() } else { None };
        self.push(step, id, render::title(step, None, scope), rendered.as_ref(), verdict);
        Ok(Flow::Continue)
    }

    fn perform(&mut self, step: &Step, id: &str, rendered: &Rendered, scope: &Arc<Scope>) -> Result<Flow, Self::Error> {
        let title = render::title(step, Some(rendered), scope);
        // A probe or a check that reads a secret only the run knows: the run decides.
        if let Some(secret) = scope.secret_later(&step.reads)
            && let Some(what) = decided_by_values(rendered)
        {
            scope.set_unknown(&step.id);
            let verdict =
                Verdict::DecidedAtRunTime(format!("this {what} needs the secret `{secret}`, asked at run time"));
            self.push(step, id, title, Some(rendered), verdict);
            return Ok(Flow::Continue);
        }
        let mut world = PlanWorld { probes: self.probes };
        let recorder = Recorder::new(&*scope.shared.fs);
        let mut cx =
            Context { scope, fs: &recorder, world: &mut world, timeout: step.timeout, read_later: step.read_later };
        let verdict = match actions::execute(rendered, &mut cx) {
            Ok(done) => {
                match done.data {
                    Some(data) => scope.set_step(&step.id, done.outcome, data),
                    None => scope.set_unknown(&step.id),
                }
                if done.outcome == Outcome::Done { Verdict::WouldChange } else { Verdict::Unchanged }
            }
            Err(StepError::NotYetKnown(why)) => {
                scope.set_unknown(&step.id);
                Verdict::DecidedAtRunTime(why)
            }
            Err(StepError::Command { message, data }) => {
                scope.set_step(&step.id, Outcome::Failed, *data);
                Verdict::WouldFail(message)
            }
            // A command that would not even start (its program is missing) has no output to
            // predict from; other steps' results are empty.
            Err(e) => {
                if step.is_command() {
                    scope.set_unknown(&step.id);
                } else {
                    scope.set_step(&step.id, Outcome::Failed, StepData::default());
                }
                Verdict::WouldFail(e.to_string())
            }
        };
        let changes = recorder.changes();
        let counts = matches!(verdict, Verdict::WouldChange | Verdict::DecidedAtRunTime(_));
        self.push(step, id, title, Some(rendered), verdict);
        if counts {
            self.back_out(step, &changes, scope);
        }
        Ok(Flow::Continue)
    }

    fn include_failed(&mut self, _: &Step, _: &str, error: RenderError) -> Result<Flow, Self::Error> {
        if let Some(last) = self.steps.last_mut() {
            last.verdict = Verdict::WouldFail(self.masker.mask(&error.message));
        }
        Ok(Flow::Continue)
    }
}

/// What a plan would learn from running or checking this action, if it had every value.
fn decided_by_values(rendered: &Rendered) -> Option<&'static str> {
    match rendered {
        Rendered::Exec(e) if e.read_only => Some("read-only probe"),
        Rendered::Assert { checks, .. } if checks.iter().any(|c| matches!(c, Check::That { .. })) => Some("check"),
        Rendered::ExpectOutput { .. } => Some("check"),
        _ => None,
    }
}
