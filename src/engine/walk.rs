//! The one walk over a runbook's steps, shared by the plan and the run: for each step, `when`,
//! then the rendered action, then its effect (through the phase), then an include's own steps in
//! a scope of their own. What differs between predicting and doing is only the [`Phase`].

use std::sync::Arc;

use crate::compile::runbook::{Action, Runbook, Step};
use crate::engine::render::{self, RenderError, Rendered};
use crate::engine::scope::Scope;

/// Whether the walk goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// A walk's way of handling each step: predict it (the plan) or do it (the run).
pub trait Phase {
    type Error;

    /// A step a resumed run finished before: put its results back, and do not run it again.
    fn restored(&mut self, _step: &Step, _id: &str, _scope: &Arc<Scope>) -> bool {
        false
    }
    /// Before each step: an interruption stops the walk here.
    fn before(&mut self) -> Result<Flow, Self::Error> {
        Ok(Flow::Continue)
    }
    /// Its `when` is false.
    fn skipped(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> Result<Flow, Self::Error>;
    /// Its `when` (`in_when`) or its action cannot be rendered.
    fn unrenderable(
        &mut self,
        step: &Step,
        id: &str,
        error: RenderError,
        in_when: bool,
        scope: &Arc<Scope>,
    ) -> Result<Flow, Self::Error>;
    /// Its action, rendered: predict or do it.
    fn perform(&mut self, step: &Step, id: &str, rendered: &Rendered, scope: &Arc<Scope>) -> Result<Flow, Self::Error>;
    /// An included runbook's inputs cannot be bound.
    fn include_failed(&mut self, step: &Step, id: &str, error: RenderError) -> Result<Flow, Self::Error>;
}

/// Walks `runbook`'s steps in order; `prefix` makes the journal ids of an include's steps.
pub fn walk<P: Phase>(phase: &mut P, runbook: &Runbook, scope: &Arc<Scope>, prefix: &str) -> Result<Flow, P::Error> {
    for step in &runbook.steps {
        let id = format!("{prefix}{}", step.id);
        let (flow, descend) = if phase.restored(step, &id, scope) {
            (Flow::Continue, true)
        } else if phase.before()? == Flow::Stop {
            return Ok(Flow::Stop);
        } else {
            // A plan made without a secret cannot tell whether a `when` that reads it holds.
            let when = match scope.secret_later(&step.when_reads) {
                Some(secret) => {
                    Err(RenderError::needs_secret(format!("`when` needs the secret `{secret}`, asked at run time")))
                }
                None => render::should_run(step, scope),
            };
            match when {
                Ok(false) => (phase.skipped(step, &id, scope)?, false),
                Err(e) => (phase.unrenderable(step, &id, e, true, scope)?, false),
                Ok(true) => match render::action(step, scope) {
                    Ok(rendered) => (phase.perform(step, &id, &rendered, scope)?, true),
                    Err(e) => (phase.unrenderable(step, &id, e, false, scope)?, false),
                },
            }
        };
        if flow == Flow::Stop {
            return Ok(Flow::Stop);
        }
        if let (true, Action::Include(inc)) = (descend, &step.action) {
            let child = match render::action(step, scope) {
                Ok(Rendered::Include { with, .. }) => render::include_scope(&step.id, &inc.runbook, &with, scope),
                Ok(_) => unreachable!("an include renders as an include"),
                Err(e) => Err(e),
            };
            let flow = match child {
                Ok(child) => walk(phase, &inc.runbook, &child, &format!("{id}."))?,
                Err(e) => phase.include_failed(step, &id, e)?,
            };
            if flow == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
    }
    Ok(Flow::Continue)
}
