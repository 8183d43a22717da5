//! The dry run: the shared walk over an [`Overlay`] of the filesystem, so each step is judged
//! against what the steps before it would have done. Nothing is written; only `read-only` probes
//! run. Each step's verdict is the action's own effect, predicted (see `engine::actions`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{Runbook, Step};
use crate::engine::actions::{self, Confirmation, Context, StepError, World};
use crate::engine::fs::overlay::Overlay;
use crate::engine::render::{self, RenderError, Rendered};
use crate::engine::scope::{Scope, Shared};
use crate::engine::walk::{Flow, Phase, walk};
use crate::format::mask::Masker;
use crate::os::process::{Captured, Spec};
use crate::state::outcome::{Outcome, StepData};
use crate::state::saved_plan::{PlannedStep, Verdict};

/// Predicts every step of `runbook` run from `cwd` with these inputs; secrets are masked.
pub fn plan(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    cwd: PathBuf,
) -> Result<Vec<PlannedStep>, RenderError> {
    let shared = Shared::new(Arc::new(Overlay::default()), cwd, "plan", true);
    let scope = render::new_scope(runbook, inputs, shared)?;
    let mut planner = Planner { masker, steps: Vec::new() };
    let Ok(_) = walk(&mut planner, runbook, &scope, "");
    Ok(planner.steps)
}

struct Planner<'a> {
    masker: &'a Masker,
    steps: Vec<PlannedStep>,
}

/// A plan's world: only read-only probes run (for real: later steps are predicted from their
/// output); no one is asked anything, and nothing is shown.
struct PlanWorld;

impl World for PlanWorld {
    fn command(&mut self, spec: &Spec, probe: bool) -> Option<std::io::Result<Captured>> {
        if !probe {
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
    fn push(&mut self, id: &str, title: String, action: Option<String>, verdict: Verdict) {
        let m = self.masker;
        let verdict = match verdict {
            Verdict::WouldFail(w) => Verdict::WouldFail(m.mask(&w)),
            Verdict::DecidedAtRunTime(w) => Verdict::DecidedAtRunTime(m.mask(&w)),
            v => v,
        };
        self.steps.push(PlannedStep {
            id: id.to_owned(),
            title: m.mask(&title),
            action: action.map(|a| m.mask(&a)),
            verdict,
        });
    }
}

impl Phase for Planner<'_> {
    type Error = std::convert::Infallible;

    fn skipped(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> Result<Flow, Self::Error> {
        scope.set_step(&step.id, Outcome::Skipped, StepData::default());
        self.push(id, render::title(step, None, scope), None, Verdict::Skipped);
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
            (Some(r), _) if error.undefined => {
                Verdict::DecidedAtRunTime(format!("{what} depends on the output of `{r}`, known only when it runs"))
            }
            (_, Some(r)) if error.undefined => {
                Verdict::WouldFail(format!("{what} needs the results of `{r}`, which would fail"))
            }
            _ => Verdict::WouldFail(error.message),
        };
        scope.set_unknown(&step.id);
        self.push(id, render::title(step, None, scope), None, verdict);
        Ok(Flow::Continue)
    }

    fn perform(&mut self, step: &Step, id: &str, rendered: &Rendered, scope: &Arc<Scope>) -> Result<Flow, Self::Error> {
        let title = render::title(step, Some(rendered), scope);
        let mut world = PlanWorld;
        let mut cx = Context { scope, world: &mut world, timeout: step.timeout, read_later: step.read_later };
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
        self.push(id, title, Some(rendered.describe()), verdict);
        Ok(Flow::Continue)
    }

    fn include_failed(&mut self, _: &Step, _: &str, error: RenderError) -> Result<Flow, Self::Error> {
        if let Some(last) = self.steps.last_mut() {
            last.verdict = Verdict::WouldFail(self.masker.mask(&error.message));
        }
        Ok(Flow::Continue)
    }
}
