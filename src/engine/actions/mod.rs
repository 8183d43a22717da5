//! The only place with side effects: one file per family of actions. Each returns the step's
//! outcome and results, or a [`StepError`].

pub mod command;
pub mod copy;
pub mod files;
pub mod manual;

use std::sync::Arc;

use crate::engine::render::{Check, Rendered};
use crate::engine::scope::Scope;
use crate::state::outcome::{Outcome, StepData};

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Failed(String),
    /// A command failed; its output is kept for the journal and `steps.<id>`.
    #[error("{message}")]
    Command { message: String, data: Box<StepData> },
    /// Ctrl-C or SIGTERM arrived while the step ran.
    #[error("interrupted")]
    Interrupted,
}

pub type StepResult = Result<(Outcome, StepData), StepError>;

pub fn fail<T>(message: impl Into<String>) -> Result<T, StepError> {
    Err(StepError::Failed(message.into()))
}

/// What the executor may need from the run around it.
pub struct Context<'a> {
    pub scope: &'a Arc<Scope>,
    pub timeout: Option<std::time::Duration>,
    /// Each line of a command's output, as it arrives.
    pub on_line: &'a mut dyn FnMut(crate::format::model::Stream, &str),
    /// Prints a message for the operator (log, manual instructions).
    pub say: &'a mut dyn FnMut(&str),
    pub manual: manual::Confirm,
    /// How far a large copy has got (bytes done, bytes in all).
    pub bytes: &'a mut dyn FnMut(u64, u64),
    /// Asks the operator a yes/no question (with any progress display out of the way).
    pub ask: &'a mut dyn FnMut(&str) -> std::io::Result<bool>,
}

pub fn execute(rendered: &Rendered, cx: &mut Context) -> StepResult {
    let none = |o: Outcome| Ok((o, StepData::default()));
    match rendered {
        Rendered::Copy { from, to, overwrite } => {
            let (outcome, sha) = copy::copy(from, to, *overwrite, cx.bytes)?;
            Ok((outcome, StepData::with_sha256(sha)))
        }
        Rendered::Rename { from, to, overwrite } => none(copy::rename(from, to, *overwrite, cx.bytes)?),
        Rendered::Cd(path) => {
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return fail(format!("{} is not a folder", path.display())),
                Err(e) => {
                    return fail(format!("cannot enter {}: {}", path.display(), crate::os::fs::io_reason(&e)));
                }
            }
            cx.scope.shared.set_cwd(path.clone());
            // The run's working folder moved; nothing on disk changed.
            none(Outcome::Unchanged)
        }
        Rendered::Mkdir(path) => none(files::mkdir(path)?),
        Rendered::Remove { path, recursive } => none(files::remove(path, *recursive)?),
        Rendered::Write { path, content, overwrite } => none(files::write(path, content, *overwrite)?),
        Rendered::Exec(e) => command::exec(e, cx),
        Rendered::Shell { script, shell, expect } => command::shell(script, shell, expect.as_ref(), cx),
        Rendered::ExpectOutput { step, expect } => {
            let data = cx.scope.step_data(step);
            match expect.check(&data) {
                Ok(captures) => Ok((Outcome::Unchanged, StepData { captures, ..StepData::default() })),
                Err(why) => fail(format!("`{step}`: {why}")),
            }
        }
        Rendered::Assert { checks, message } => {
            let failed: Vec<String> = checks.iter().filter_map(failed_check).collect();
            if failed.is_empty() {
                none(Outcome::Unchanged)
            } else {
                fail(message.clone().unwrap_or_else(|| format!("assertion failed: {}", failed.join("; "))))
            }
        }
        Rendered::Fail(message) => fail(message.clone()),
        Rendered::Log(message) => {
            (cx.say)(message);
            none(Outcome::Unchanged)
        }
        Rendered::Manual { instructions, confirm } => manual::manual(instructions, *confirm, cx),
        Rendered::Include { .. } => none(Outcome::Done),
    }
}

fn failed_check(check: &Check) -> Option<String> {
    let meta = |p: &std::path::Path| std::fs::metadata(p).ok();
    match check {
        Check::Exists(p) => meta(p).is_none().then(|| format!("{} does not exist", p.display())),
        Check::Missing(p) => meta(p).is_some().then(|| format!("{} exists", p.display())),
        Check::File(p) => (!meta(p).is_some_and(|m| m.is_file())).then(|| format!("{} is not a file", p.display())),
        Check::Dir(p) => (!meta(p).is_some_and(|m| m.is_dir())).then(|| format!("{} is not a folder", p.display())),
        Check::That { expr, holds } => (!holds).then(|| format!("`{expr}` is false")),
    }
}
