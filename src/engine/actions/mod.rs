//! Every action's effect, written once: over the filesystem view (`engine::fs`: the disk in a run,
//! the overlay in a plan) and the [`World`] (commands, the operator, messages: real in a run; in a
//! plan, only read-only probes run and no one is asked). A plan and a run therefore decide alike
//! by construction, and a new action is added here, in one place.

mod command;
mod files;

pub use command::PROBE_TIMEOUT;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::fs::{FsError, FsView};
use crate::engine::render::Rendered;
use crate::engine::scope::Scope;
use crate::format::diagnostic::indent;
use crate::os::process::{Captured, Pipe, Spec};
use crate::state::outcome::{Outcome, StepData};

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Failed(String),
    /// A command failed; its output is kept for the journal and `steps.<id>`.
    #[error("{message}")]
    Command { message: String, data: Box<StepData> },
    /// What decides the step is known only when a run gets there (a plan: a command's output).
    #[error("{0}")]
    NotYetKnown(String),
    /// Ctrl-C or SIGTERM arrived while the step ran.
    #[error("interrupted")]
    Interrupted,
}

impl From<FsError> for StepError {
    fn from(e: FsError) -> StepError {
        StepError::Failed(e.0)
    }
}

pub fn fail<T>(message: impl Into<String>) -> Result<T, StepError> {
    Err(StepError::Failed(message.into()))
}

/// A step that ended well: its outcome, and its results (`None` when a plan cannot know them
/// before the run, as a command's output).
#[derive(Debug, Clone)]
pub struct Done {
    pub outcome: Outcome,
    pub data: Option<StepData>,
}

impl Done {
    pub fn known(outcome: Outcome) -> Done {
        Done { outcome, data: Some(StepData::default()) }
    }
}

pub type StepResult = Result<Done, StepError>;

/// An operator's answer to a manual step.
#[derive(Debug)]
pub enum Confirmation {
    Given,
    Refused,
    /// No terminal to ask on, and no `--yes`.
    NoOneToAsk,
    /// A plan: the operator is asked only when the run gets there.
    Later,
    Failed(io::Error),
    Interrupted,
}

/// The side of a step that is not the filesystem.
pub trait World {
    /// Runs a command to the end (its output going where the run shows output). `probe`: a
    /// read-only one, which a plan runs too; a plan answers `None` for any other.
    fn command(&mut self, spec: &Spec, probe: bool) -> Option<io::Result<Captured>>;
    /// A message for the operator (a `log` line, a manual step's instructions).
    fn say(&mut self, text: &str);
    /// Asks the operator to confirm a manual step.
    fn confirm(&mut self, question: &str) -> Confirmation;
    /// How far a large copy has got.
    fn bytes(&mut self, done: u64, total: u64);
}

/// What a step needs besides its rendered action.
/// A world where nothing happens: no command runs, no one is asked, nothing is shown (a step's
/// changes predicted before it runs).
pub struct Silent;

impl World for Silent {
    fn command(&mut self, _: &Spec, _: bool) -> Option<std::io::Result<Captured>> {
        None
    }

    fn say(&mut self, _: &str) {}

    fn confirm(&mut self, _: &str) -> Confirmation {
        Confirmation::Later
    }

    fn bytes(&mut self, _: u64, _: u64) {}
}

pub struct Context<'a> {
    pub scope: &'a Arc<Scope>,
    /// Where the step's effects go: the disk, the plan's overlay, or a recorder of either.
    pub fs: &'a dyn FsView,
    pub world: &'a mut dyn World,
    pub timeout: Option<Duration>,
    /// A later step reads this step's results (only then does a plan compute a copy's digest).
    pub read_later: bool,
}

impl Context<'_> {
    fn fs(&self) -> &dyn FsView {
        self.fs
    }
}

/// Carries out (over the disk) or predicts (over the overlay) one rendered action.
pub fn execute(rendered: &Rendered, cx: &mut Context) -> StepResult {
    let known = |o: Outcome| Ok(Done::known(o));
    match rendered {
        Rendered::Copy { from, to, overwrite } => {
            let Context { world, read_later, .. } = cx;
            let digest = *read_later;
            let mut progress = |done, total| world.bytes(done, total);
            files::copy(cx.fs, from, to, *overwrite, digest, &mut progress)
        }
        Rendered::Rename { from, to, overwrite } => {
            let world = &mut *cx.world;
            files::rename(cx.fs, from, to, *overwrite, &mut |done, total| world.bytes(done, total))
        }
        Rendered::Cd(path) => {
            files::cd(cx.fs(), path)?;
            cx.scope.shared.set_cwd(path.clone());
            // The run's working folder moved; nothing on disk changed.
            known(Outcome::Unchanged)
        }
        Rendered::Mkdir(path) => files::mkdir(cx.fs(), path),
        Rendered::Remove { path, recursive } => files::remove(cx.fs(), path, *recursive),
        Rendered::Write { path, content, overwrite } => files::write(cx.fs(), path, content, *overwrite),
        Rendered::Assert { checks, message } => {
            let failed = files::failed_checks(cx.fs(), checks);
            if failed.is_empty() {
                known(Outcome::Unchanged)
            } else {
                fail(message.clone().unwrap_or_else(|| format!("assertion failed: {}", failed.join("; "))))
            }
        }
        Rendered::Exec(e) => command::exec(e, cx),
        Rendered::Shell { script, shell, expect } => command::shell(script, shell, expect.as_ref(), cx),
        Rendered::ExpectOutput { step, expect } => {
            if cx.scope.is_unknown(step) {
                return Err(StepError::NotYetKnown(format!("checks the output of `{step}`, which runs only for real")));
            }
            let data = cx.scope.step_data(step);
            match expect.check(&data) {
                Ok(captures) => {
                    Ok(Done { outcome: Outcome::Unchanged, data: Some(StepData { captures, ..StepData::default() }) })
                }
                Err(why) => fail(format!("`{step}`: {why}")),
            }
        }
        Rendered::Fail(message) => fail(message.clone()),
        Rendered::Log(message) => {
            cx.world.say(message);
            known(Outcome::Unchanged)
        }
        Rendered::Manual { instructions, confirm } => manual(instructions, *confirm, cx),
        // The included runbook's steps change things; the include itself does not.
        Rendered::Include { .. } => known(Outcome::Unchanged),
    }
}

/// `manual`: instructions for the operator, confirmed on a terminal or by `--yes`.
fn manual(instructions: &str, confirm: bool, cx: &mut Context) -> StepResult {
    cx.world.say(&format!("Manual step:\n{}", indent(instructions.trim_end())));
    if !confirm {
        return Ok(Done::known(Outcome::Done));
    }
    match cx.world.confirm("Done? Type yes to continue, no to stop: ") {
        Confirmation::Given | Confirmation::Later => Ok(Done::known(Outcome::Done)),
        Confirmation::Refused => fail("the operator did not confirm the manual step"),
        Confirmation::NoOneToAsk => fail(
            "this manual step needs an operator's confirmation, and there is no terminal to ask on; run it on a terminal, or pass --yes once it is done",
        ),
        Confirmation::Interrupted => Err(StepError::Interrupted),
        Confirmation::Failed(e) => fail(format!("could not read the confirmation: {e}")),
    }
}

/// Which stream a command's line came from, in the format's words.
pub fn stream_of(pipe: Pipe) -> crate::format::model::Stream {
    match pipe {
        Pipe::Stdout => crate::format::model::Stream::Stdout,
        Pipe::Stderr => crate::format::model::Stream::Stderr,
    }
}
