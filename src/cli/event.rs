//! Every JSON event runbook prints (`run`, `resume`, `run --continue`, `rollback` with
//! `--format json`, and `already_done`), as one serde-tagged enum: the events' schema
//! (`runbook schema events`, `schemas/events.schema.json`) is generated from it, and every field
//! that can carry rendered or captured text is a [`Text`], which can only be made masked.

use schemars::JsonSchema;
use serde::Serialize;

use crate::format::mask::Masker;
use crate::format::model::Stream;
use crate::state::journal::{RollbackOutcome, RunOutcome, UndoOutcome};
use crate::state::outcome::Outcome;

/// Text that may hold what a template rendered or a command printed. It is masked when it is
/// made, so no event can carry a secret.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// `text` with every secret `masker` knows replaced by `****`.
    pub fn masked(masker: &Masker, text: &str) -> Text {
        Text(masker.mask(text))
    }

    /// Text read back from a journal, which holds it masked already.
    pub fn journaled(text: &str) -> Text {
        Text(text.to_owned())
    }
}

/// One line of `--format json` output.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A run begins.
    RunStarted {
        runbook: String,
        run_id: String,
        /// Path of the run's journal.
        journal: Text,
    },
    /// An unfinished run continues (`resume`, `run --continue`).
    RunResumed {
        runbook: String,
        run_id: String,
        /// Path of the run's journal.
        journal: Text,
    },
    /// A step begins (one skipped by `when`, or that cannot be rendered, too).
    StepStarted {
        /// Journal id: `<step id>` or `<include id>.<step id>`.
        step: String,
        /// Counts from 1 over every step, included ones too.
        #[schemars(range(min = 1))]
        index: usize,
        title: Text,
        /// The fully rendered action.
        action: Text,
    },
    /// A line a command printed.
    Output {
        step: String,
        stream: Pipe,
        line: Text,
    },
    /// A line for the operator: a `log`, a manual step's instructions, a note from the engine.
    Message {
        step: String,
        text: Text,
    },
    /// A step is tried again (`retries`).
    Retry {
        step: String,
        #[schemars(range(min = 2))]
        attempt: u32,
        #[schemars(range(min = 2))]
        of: u32,
    },
    /// A step ends; written once its journal record is on disk.
    StepFinished {
        step: String,
        outcome: Outcome,
        duration_ms: u64,
        error: Option<Text>,
    },
    /// The run ends.
    RunFinished {
        outcome: RunOutcome,
        steps: Counts,
        duration_ms: u64,
    },
    /// A rollback begins (`runbook rollback`, or `--on-failure rollback` after a failed step).
    RollbackStarted {
        run_id: String,
        steps: usize,
    },
    /// The undo of a step begins.
    UndoStarted {
        step: String,
        #[schemars(range(min = 1))]
        index: usize,
        /// What undoing it does.
        action: Text,
    },
    UndoFinished {
        step: String,
        outcome: UndoOutcome,
        duration_ms: u64,
        error: Option<Text>,
    },
    /// The rollback ends; `not_undone` lists the steps that could not be undone.
    RollbackFinished {
        outcome: RollbackOutcome,
        not_undone: Vec<String>,
        duration_ms: u64,
    },
    /// `run --skip-if-succeeded` has nothing to do: this run already succeeded with the same
    /// runbook files and inputs.
    AlreadyDone {
        runbook: String,
        /// The run that already succeeded.
        run_id: String,
        journal: Text,
        steps: Vec<StepRecord>,
    },
}

/// Which stream a command printed a line on.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pipe {
    Stdout,
    Stderr,
}

impl From<Stream> for Pipe {
    fn from(stream: Stream) -> Pipe {
        match stream {
            Stream::Stderr => Pipe::Stderr,
            _ => Pipe::Stdout,
        }
    }
}

/// How many steps ended each way.
#[derive(Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub done: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Counts {
    pub fn of(counts: &[(Outcome, usize)]) -> Counts {
        let mut out = Counts::default();
        for (outcome, n) in counts {
            *match outcome {
                Outcome::Done => &mut out.done,
                Outcome::Unchanged => &mut out.unchanged,
                Outcome::Skipped => &mut out.skipped,
                Outcome::Failed => &mut out.failed,
            } += n;
        }
        out
    }
}

/// One step of a run as journaled (`status --format json`, `already_done`).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    pub step: String,
    /// Its state in words, as `status` prints it.
    pub state: String,
    pub error: Option<Text>,
    pub duration_ms: Option<u64>,
    /// The last lines it printed.
    pub stdout_tail: Option<Text>,
    pub stderr_tail: Option<Text>,
}

impl Event {
    /// The event as one line of JSON.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an event serializes")
    }
}

/// The JSON Schema of the events, as `schemas/events.schema.json` holds it.
pub fn schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Event)).expect("a schema serializes");
    schema["title"] = "runbook events".into();
    schema["description"] = "One JSON object per line on stdout with `run`, `resume`, `rollback` and `run --continue` given `--format json`. Secrets are masked as ****. Events are strictly ordered: `run_started` (or `run_resumed`); then for each step N, `step_started` N, its `output` and `message` events, `step_finished` N, and only then `step_started` N+1; last `run_finished`. A rollback reports `rollback_started`, then for each step `undo_started` and `undo_finished`, then `rollback_finished`. `run --skip-if-succeeded` that has nothing to do prints one `already_done` event instead.".into();
    schema
}
