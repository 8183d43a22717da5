//! What each line of a journal says.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{FileDigest, Runbook, StepDigest};
use crate::state::approvals::Approver;
use crate::state::drift::StepText;
use crate::state::outcome::{Outcome, StepData};
use crate::state::undo::{Backout, LeftAt};

use super::Durability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    Failed,
    Interrupted,
    /// Replaced by a `run --fresh`.
    Abandoned,
    /// Backed out by `runbook rollback` (or `--on-failure rollback`).
    RolledBack,
}

/// How one step's undo ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UndoOutcome {
    /// Its changes were undone.
    Done,
    /// There was nothing left to undo.
    Unchanged,
    Failed,
    /// It cannot be undone (a command with no declared `undo:`, or past the backup limit).
    Impossible,
}

impl UndoOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoOutcome::Done => "undone",
            UndoOutcome::Unchanged => "nothing to undo",
            UndoOutcome::Failed => "undo failed",
            UndoOutcome::Impossible => "cannot be undone",
        }
    }
}

/// How a rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollbackOutcome {
    /// Every step the run did is undone.
    Complete,
    /// It went to the end, but some steps cannot be undone.
    Partial,
    /// An undo failed; `rollback` again continues there.
    Failed,
    Interrupted,
}

impl RollbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackOutcome::Complete => "complete",
            RollbackOutcome::Partial => "partial",
            RollbackOutcome::Failed => "failed",
            RollbackOutcome::Interrupted => "interrupted",
        }
    }

    /// Whether the rollback went to its end.
    pub fn ended(self) -> bool {
        matches!(self, RollbackOutcome::Complete | RollbackOutcome::Partial)
    }
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Abandoned => "abandoned",
            RunOutcome::RolledBack => "rolled back",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    RunStarted {
        run_id: String,
        runbook: String,
        path: String,
        files: Vec<FileDigest>,
        steps: Vec<StepDigest>,
        /// Non-secret input values.
        inputs: IndexMap<String, serde_json::Value>,
        /// Names of secret inputs (their values are never written).
        secret_inputs: Vec<String>,
        tool_version: String,
        host: String,
        user: String,
        pid: u32,
        cwd: String,
        time: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<FileDigest>,
        /// Every step as it rendered when the run began (secrets masked).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rendered: Vec<StepText>,
        #[serde(default)]
        durability: Durability,
        /// The machine's boot this was written in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot: Option<String>,
        /// Who approved the reviewed plan, as checked before the run began.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvals: Vec<Approver>,
    },
    RunResumed {
        host: String,
        user: String,
        pid: u32,
        time: String,
        forced: bool,
        #[serde(default)]
        durability: Durability,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot: Option<String>,
        /// The non-secret inputs, when they differ from the run's until now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<IndexMap<String, serde_json::Value>>,
        /// Who approved the reviewed plan, as checked again before the run went on.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvals: Vec<Approver>,
    },
    OperatorDecision {
        step: String,
        decision: String,
        host: String,
        user: String,
        time: String,
    },
    StepStarted {
        step: String,
        attempt: u32,
        time: String,
        /// How the step is backed out, recorded before it changes anything.
        #[serde(default, skip_serializing_if = "Backout::is_nothing")]
        backout: Backout,
    },
    StepFinished {
        step: String,
        outcome: Outcome,
        duration_ms: u64,
        /// The working folder after the step.
        cwd: String,
        #[serde(flatten)]
        data: StepData,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmed_by: Option<String>,
        time: String,
        /// What the step left at each path its undo touches (a rollback refuses to undo a step
        /// whose paths changed since).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        left: Vec<LeftAt>,
    },
    /// A step's command was started: its process, to tell on resume whether it still runs.
    CommandStarted {
        step: String,
        pid: u32,
        /// When the process started, as the system counts it (tells a reused pid apart).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process_start: Option<u64>,
        time: String,
    },
    StepInterrupted {
        step: String,
        time: String,
    },
    RunFinished {
        outcome: RunOutcome,
        time: String,
    },
    /// A rollback of the run begins (or continues).
    RollbackStarted {
        host: String,
        user: String,
        pid: u32,
        time: String,
        forced: bool,
        #[serde(default)]
        durability: Durability,
    },
    /// A step's undo begins: on disk before it changes anything.
    UndoStarted {
        step: String,
        time: String,
    },
    UndoFinished {
        step: String,
        outcome: UndoOutcome,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        time: String,
    },
    RollbackFinished {
        outcome: RollbackOutcome,
        time: String,
    },
}

/// How a run begins, besides its runbook and inputs.
pub struct Beginning<'a> {
    pub run_id: &'a str,
    pub cwd: &'a Path,
    /// The reviewed plan it runs (`run --plan`).
    pub plan: Option<FileDigest>,
    /// Every step as it renders now.
    pub rendered: Vec<StepText>,
    pub durability: Durability,
    /// The plan's approvals that counted.
    pub approvals: Vec<Approver>,
}

impl Record {
    /// The first record of a run: what it runs, with which inputs (secrets by name only), where.
    pub fn run_started(runbook: &Runbook, path: &Path, inputs: &Inputs, start: Beginning) -> Record {
        let Beginning { run_id, cwd, plan, rendered, durability, approvals } = start;
        Record::RunStarted {
            run_id: run_id.to_owned(),
            runbook: runbook.name.clone(),
            path: path.display().to_string(),
            files: runbook.file_digests(),
            steps: runbook.step_digests(),
            inputs: inputs.recordable(runbook),
            secret_inputs: runbook.secret_names().map(str::to_owned).collect(),
            tool_version: crate::format::version::LONG.into(),
            host: host(),
            user: user(),
            pid: std::process::id(),
            cwd: cwd.display().to_string(),
            time: now(),
            plan,
            rendered,
            durability,
            boot: crate::os::sys::boot_id(),
            approvals,
        }
    }

    pub fn rollback_started(forced: bool, durability: Durability) -> Record {
        Record::RollbackStarted { host: host(), user: user(), pid: std::process::id(), time: now(), forced, durability }
    }

    pub fn run_resumed(
        forced: bool,
        durability: Durability,
        inputs: Option<IndexMap<String, serde_json::Value>>,
        approvals: Vec<Approver>,
    ) -> Record {
        Record::RunResumed {
            host: host(),
            user: user(),
            pid: std::process::id(),
            time: now(),
            forced,
            durability,
            boot: crate::os::sys::boot_id(),
            inputs,
            approvals,
        }
    }

    pub fn operator_decision(step: &str, decision: &str) -> Record {
        Record::OperatorDecision {
            step: step.into(),
            decision: decision.into(),
            host: host(),
            user: user(),
            time: now(),
        }
    }

    pub fn command_started(step: &str, pid: u32) -> Record {
        Record::CommandStarted {
            step: step.into(),
            pid,
            process_start: crate::os::sys::process_start(pid),
            time: now(),
        }
    }
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

pub use crate::os::sys::{host, user};
