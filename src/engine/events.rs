//! What a run tells while it goes, and what it asks of the operator. The CLI implements it (text
//! with progress on a terminal, or one JSON event per line); the engine only calls it, in the
//! order things happen: a step's start, its output, its end, then the next step's start.

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::format::model::Stream;
use crate::state::journal::{RollbackOutcome, RunOutcome, UndoOutcome};
use crate::state::outcome::Outcome;

pub trait Events {
    fn run_started(&self, runbook: &str, run_id: &str, journal: &Path, resumed: bool);
    /// `index` counts from 0 over every step, included ones too.
    fn step_started(&self, index: usize, step: &str, title: &str, action: &str);
    /// A line a command printed.
    fn output(&self, step: &str, stream: Stream, line: &str);
    /// A line for the operator (a `log`, a manual step's instructions, a note from the engine).
    fn message(&self, step: &str, text: &str);
    /// How far a large copy has got.
    fn bytes(&self, done: u64, total: u64);
    fn retrying(&self, step: &str, attempt: u32, of: u32, delay: Duration);
    fn step_finished(&self, step: &str, outcome: Outcome, duration: Duration, error: Option<&str>);
    fn run_finished(&self, outcome: RunOutcome, counts: &[(Outcome, usize)], elapsed: Duration);
    /// Asks the operator a yes/no question (with any progress display out of the way).
    fn ask(&self, question: &str) -> io::Result<bool>;

    /// A rollback of run `run_id` begins, with `steps` steps to undo.
    fn rollback_started(&self, run_id: &str, steps: usize);
    /// The undo of a step begins: `what` it does.
    fn undo_started(&self, index: usize, step: &str, what: &str);
    fn undo_finished(&self, step: &str, outcome: UndoOutcome, duration: Duration, error: Option<&str>);
    /// The rollback ends; `not_undone` lists the steps that could not be undone.
    fn rollback_finished(&self, outcome: RollbackOutcome, not_undone: &[String], elapsed: Duration);
}
