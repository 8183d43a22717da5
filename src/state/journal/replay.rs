//! Reading a journal back: a torn last line ignored with a warning, a garbled one elsewhere an
//! error naming the line; the records folded into what a run did ([`RunSummary`]).

use std::fs;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::compile::runbook::{FileDigest, StepDigest};
use crate::state::approvals::Approver;
use crate::state::drift::StepText;
use crate::state::outcome::{Outcome, StepData};
use crate::state::undo::{Backout, LeftAt};

use super::{Durability, JournalError, Record, RollbackOutcome, RunOutcome, UndoOutcome};

/// A journal read back.
#[derive(Debug)]
pub struct Replay {
    pub records: Vec<Record>,
    /// Set when the last line was torn (and ignored).
    pub torn_tail: bool,
}

pub fn read(path: &Path) -> Result<Replay, JournalError> {
    let bytes = fs::read(path)
        .map_err(|e| JournalError::Read { path: path.to_path_buf(), reason: crate::os::fs::io_reason(&e) })?;
    parse(&bytes, path)
}

/// A journal's bytes read back (`path` names it in errors).
fn parse(bytes: &[u8], path: &Path) -> Result<Replay, JournalError> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut records = Vec::new();
    let mut torn_tail = false;
    let last_nonempty = lines.iter().rposition(|l| !l.trim().is_empty());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(_) if Some(i) == last_nonempty && !text.ends_with('\n') => torn_tail = true,
            Err(e) if Some(i) == last_nonempty => {
                let _ = e;
                torn_tail = true;
            }
            Err(e) => {
                return Err(JournalError::Garbled { path: path.to_path_buf(), line: i + 1, reason: e.to_string() });
            }
        }
    }
    Ok(Replay { records, torn_tail })
}

/// What the journal says of one run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub path: PathBuf,
    pub run_id: String,
    pub runbook: String,
    pub runbook_path: String,
    /// The working folder the run started in.
    pub cwd: String,
    pub started: String,
    pub files: Vec<FileDigest>,
    pub steps: Vec<StepDigest>,
    pub inputs: IndexMap<String, serde_json::Value>,
    pub secret_inputs: Vec<String>,
    /// Who ran it, where, when: the start, then each resume.
    pub sessions: Vec<Session>,
    pub tool_version: String,
    /// The reviewed plan it ran (`run --plan`).
    pub plan: Option<FileDigest>,
    /// Every step as it rendered when the run began (empty in journals of older versions).
    pub rendered: Vec<StepText>,
    /// The durability of the latest sitting, and the machine's boot it ran in.
    pub durability: Durability,
    pub boot: Option<String>,
    /// How each step is backed out, as recorded when it first started.
    pub backouts: IndexMap<String, Backout>,
    /// What each step left, as recorded when it last finished.
    pub lefts: IndexMap<String, Vec<LeftAt>>,
    /// The run's rollback, once one began.
    pub rollback: Option<Rollback>,
    /// Who approved the reviewed plan it runs: as checked when it began, then at each resume.
    pub approvals: Vec<Approver>,
    pub outcome: Option<RunOutcome>,
    pub finished: Option<String>,
    /// Per journal step id, its last state.
    pub step_states: IndexMap<String, StepState>,
    pub torn_tail: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    /// Started and never finished; a command's process, if one was started.
    Started {
        command: Option<CommandProcess>,
    },
    Interrupted,
    Finished {
        outcome: Outcome,
        data: StepData,
        cwd: String,
        error: Option<String>,
        duration_ms: u64,
    },
    /// The operator said it was done by hand (`--mark-done`).
    MarkedDone,
}

/// A run's rollback, as journaled.
#[derive(Debug, Clone, Default)]
pub struct Rollback {
    pub sessions: Vec<Session>,
    /// Per step, its undo: `None` while started and not finished.
    pub undone: IndexMap<String, Option<(UndoOutcome, Option<String>)>>,
    pub outcome: Option<RollbackOutcome>,
    pub finished: Option<String>,
}

/// One sitting of a run: its start or a resume.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub resumed: bool,
    pub host: String,
    pub user: String,
    pub time: String,
}

/// The process a step's command ran in, as journaled when it started.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandProcess {
    pub pid: u32,
    pub process_start: Option<u64>,
    pub since: String,
}

impl CommandProcess {
    /// Whether that very process still runs (a pid reused by another process does not count,
    /// when the system tells when processes start).
    pub fn still_running(&self) -> bool {
        crate::os::sys::pid_alive(self.pid)
            && match (self.process_start, crate::os::sys::process_start(self.pid)) {
                (Some(then), Some(now)) => then == now,
                _ => true,
            }
    }
}

impl RunSummary {
    /// Whether the journal's last records may have been lost: it was not synced (`process`
    /// durability) and the machine has restarted since it was written.
    pub fn tail_may_be_lost(&self) -> bool {
        self.durability == Durability::Process
            && match (&self.boot, crate::os::sys::boot_id()) {
                (Some(then), Some(now)) => !crate::os::sys::same_boot(then, &now),
                // Unknown on this system: assume the worst.
                _ => true,
            }
    }

    pub fn unfinished(&self) -> bool {
        !matches!(self.outcome, Some(RunOutcome::Succeeded | RunOutcome::Abandoned | RunOutcome::RolledBack))
            && self.rollback.is_none()
    }

    /// The first step (journal id) that was started but did not finish, or failed.
    pub fn stopped_at(&self) -> Option<(&str, &StepState)> {
        self.step_states
            .iter()
            .find(|(_, s)| {
                !matches!(s, StepState::Finished { outcome, .. } if *outcome != Outcome::Failed)
                    && !matches!(s, StepState::MarkedDone)
            })
            .map(|(k, v)| (k.as_str(), v))
    }
}

pub fn summarize(path: &Path) -> Result<RunSummary, JournalError> {
    let replay = read(path)?;
    fold(replay, path)
}

/// A journal's bytes (as bundled in evidence) read back: what the run did, and every record.
pub fn summarize_bytes(bytes: &[u8], path: &Path) -> Result<(RunSummary, Vec<Record>), JournalError> {
    let replay = parse(bytes, path)?;
    let records = replay.records.clone();
    Ok((fold(replay, path)?, records))
}

fn fold(replay: Replay, path: &Path) -> Result<RunSummary, JournalError> {
    let garbled = |reason: &str| JournalError::Garbled { path: path.to_path_buf(), line: 1, reason: reason.into() };
    let mut records = replay.records.into_iter();
    let Some(Record::RunStarted {
        run_id,
        runbook,
        path: rb_path,
        files,
        steps,
        inputs,
        secret_inputs,
        time,
        cwd,
        host,
        user,
        tool_version,
        plan,
        rendered,
        durability,
        boot,
        approvals,
        ..
    }) = records.next()
    else {
        return Err(garbled("the first record is not `run_started`"));
    };
    let mut summary = RunSummary {
        path: path.to_path_buf(),
        run_id,
        runbook,
        runbook_path: rb_path,
        cwd,
        started: time.clone(),
        files,
        steps,
        inputs,
        secret_inputs,
        sessions: vec![Session { resumed: false, host, user, time }],
        tool_version,
        plan,
        rendered,
        durability,
        boot,
        backouts: IndexMap::new(),
        lefts: IndexMap::new(),
        rollback: None,
        approvals,
        outcome: None,
        finished: None,
        step_states: IndexMap::new(),
        torn_tail: replay.torn_tail,
    };
    for record in records {
        summary.apply(record);
    }
    Ok(summary)
}

impl RunSummary {
    /// What a record after the first says of the run.
    fn apply(&mut self, record: Record) {
        let states = &mut self.step_states;
        match record {
            Record::RunStarted { .. } => {}
            Record::RunResumed { host, user, time, durability, boot, inputs, approvals, .. } => {
                if !approvals.is_empty() {
                    self.approvals = approvals;
                }
                self.sessions.push(Session { resumed: true, host, user, time });
                self.durability = durability;
                self.boot = boot;
                if let Some(inputs) = inputs {
                    self.inputs = inputs;
                }
                self.outcome = None;
                self.finished = None;
            }
            Record::OperatorDecision { step, decision, .. } => {
                if decision == "mark_done" {
                    states.insert(step, StepState::MarkedDone);
                } else {
                    states.shift_remove(&step);
                }
            }
            Record::StepStarted { step, backout, .. } => {
                if !self.backouts.contains_key(&step) || !backout.is_nothing() && self.backouts[&step].is_nothing() {
                    self.backouts.insert(step.clone(), backout);
                }
                states.shift_remove(&step);
                states.insert(step, StepState::Started { command: None });
            }
            Record::StepFinished { step, outcome, data, cwd, error, duration_ms, left, .. } => {
                if !left.is_empty() {
                    self.lefts.insert(step.clone(), left);
                }
                states.insert(step, StepState::Finished { outcome, data, cwd, error, duration_ms });
            }
            Record::CommandStarted { step, pid, process_start, time } => {
                if let Some(StepState::Started { command }) = states.get_mut(&step) {
                    *command = Some(CommandProcess { pid, process_start, since: time });
                }
            }
            Record::StepInterrupted { step, .. } => {
                states.insert(step, StepState::Interrupted);
            }
            Record::RunFinished { outcome, time } => {
                self.outcome = Some(outcome);
                self.finished = Some(time);
            }
            Record::RollbackStarted { host, user, time, .. } => {
                let rollback = self.rollback.get_or_insert_with(Rollback::default);
                rollback.sessions.push(Session { resumed: !rollback.sessions.is_empty(), host, user, time });
                rollback.outcome = None;
            }
            Record::UndoStarted { step, .. } => {
                self.rollback.get_or_insert_with(Rollback::default).undone.insert(step, None);
            }
            Record::UndoFinished { step, outcome, error, .. } => {
                self.rollback.get_or_insert_with(Rollback::default).undone.insert(step, Some((outcome, error)));
            }
            Record::RollbackFinished { outcome, time } => {
                let rollback = self.rollback.get_or_insert_with(Rollback::default);
                rollback.outcome = Some(outcome);
                if outcome.ended() {
                    rollback.finished = Some(time.clone());
                    self.outcome = Some(RunOutcome::RolledBack);
                    self.finished = Some(time);
                }
            }
        }
    }
}
