//! The append-only journal: one JSON object per line, one file per run, each record on disk
//! (fdatasync) before the step it announces takes effect and before a step is reported done.
//! A torn last line (a crash mid-write) is ignored with a warning; a garbled line elsewhere is
//! an error naming the line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{FileDigest, Runbook, StepDigest};
use crate::format::mask::Masker;
use crate::state::drift::StepText;
use crate::state::outcome::{Outcome, StepData};
use crate::state::undo::{Backout, LeftAt};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot use the state folder {path}: {reason}")]
    StateDir { path: PathBuf, reason: String },
    #[error("cannot write the journal {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot read the journal {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the journal {path} is damaged at line {line}: {reason}")]
    Garbled { path: PathBuf, line: usize, reason: String },
}

/// How far a run's records and copies are pushed before they count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Synced to the disk before the step they announce takes effect: a power cut loses nothing
    /// that was reported.
    #[default]
    Full,
    /// Written to the system in the same order, not synced: a killed engine resumes exactly; an
    /// OS crash may lose the tail.
    Process,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Process => "process",
        }
    }

    pub fn syncs(self) -> bool {
        self == Durability::Full
    }
}

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
}

impl Record {
    /// The first record of a run: what it runs, with which inputs (secrets by name only), where.
    pub fn run_started(runbook: &Runbook, path: &Path, inputs: &Inputs, start: Beginning) -> Record {
        let Beginning { run_id, cwd, plan, rendered, durability } = start;
        Record::RunStarted {
            run_id: run_id.to_owned(),
            runbook: runbook.name.clone(),
            path: path.display().to_string(),
            files: runbook.file_digests(),
            steps: runbook.step_digests(),
            inputs: inputs.recordable(runbook),
            secret_inputs: runbook.secret_names().map(str::to_owned).collect(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host: host(),
            user: user(),
            pid: std::process::id(),
            cwd: cwd.display().to_string(),
            time: now(),
            plan,
            rendered,
            durability,
            boot: crate::os::sys::boot_id(),
        }
    }

    pub fn rollback_started(forced: bool, durability: Durability) -> Record {
        Record::RollbackStarted { host: host(), user: user(), pid: std::process::id(), time: now(), forced, durability }
    }

    pub fn run_resumed(
        forced: bool,
        durability: Durability,
        inputs: Option<IndexMap<String, serde_json::Value>>,
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

/// `<state>/runs/<runbook name>/`
pub fn runs_dir(state: &Path, runbook: &str) -> PathBuf {
    state.join("runs").join(runbook)
}

pub struct Journal {
    file: File,
    pub path: PathBuf,
    pending: Vec<u8>,
    /// Records written to the file but not yet synced.
    unsynced: bool,
    masker: Masker,
    durability: Durability,
}

impl Journal {
    /// Creates the run's journal holding its first record. The file appears under its final name
    /// only once that record is on disk, so no journal is ever found empty.
    pub fn create(
        state: &Path,
        runbook: &str,
        run_id: &str,
        masker: Masker,
        first: &Record,
        durability: Durability,
    ) -> Result<Journal, JournalError> {
        let dir = runs_dir(state, runbook);
        fs::create_dir_all(&dir).map_err(|e| JournalError::StateDir {
            path: state.to_path_buf(),
            reason: crate::os::fs::io_reason_at(&dir, &e),
        })?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let temp = dir.join(format!(".{run_id}.jsonl.tmp"));
        let werr = |e: io::Error| JournalError::Write { path: path.clone(), reason: crate::os::fs::io_reason(&e) };
        let mut journal = Journal {
            file: OpenOptions::new().create_new(true).append(true).open(&temp).map_err(werr)?,
            path: path.clone(),
            pending: Vec::new(),
            unsynced: false,
            masker,
            durability,
        };
        journal.append(first, false)?;
        let synced = durability.syncs();
        let result = journal
            .file
            .write_all(&journal.pending)
            .and_then(|()| if synced { journal.file.sync_data() } else { Ok(()) })
            .and_then(|()| crate::os::fs::replace_file(&temp, &path, synced));
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(werr(e));
        }
        journal.pending.clear();
        Ok(journal)
    }

    pub fn open(path: &Path, masker: Masker, durability: Durability) -> Result<Journal, JournalError> {
        let mut file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| JournalError::Write { path: path.to_path_buf(), reason: crate::os::fs::io_reason(&e) })?;
        // After a torn last line, start the next record on a fresh line.
        let text = fs::read(path).unwrap_or_default();
        if !text.is_empty() && !text.ends_with(b"\n") {
            let _ = file.write_all(b"\n");
        }
        Ok(Journal { file, path: path.to_path_buf(), pending: Vec::new(), unsynced: false, masker, durability })
    }

    /// Adds a record; with `sync` it and everything before it are written and on disk on return.
    pub fn append(&mut self, record: &Record, sync: bool) -> Result<(), JournalError> {
        let mut value = serde_json::to_value(record).expect("records serialize");
        self.masker.mask_json(&mut value);
        serde_json::to_writer(&mut self.pending, &value).expect("json to memory");
        self.pending.push(b'\n');
        if sync { self.sync() } else { Ok(()) }
    }

    /// Adds a record and writes it to the file without waiting for the disk: it survives the
    /// engine being killed (the system has it), not a power cut. The next sync covers it.
    pub fn append_written(&mut self, record: &Record) -> Result<(), JournalError> {
        self.append(record, false)?;
        let path = self.path.clone();
        self.file
            .write_all(&self.pending)
            .map_err(|e| JournalError::Write { path, reason: crate::os::fs::io_reason(&e) })?;
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Writes what is pending to the file and, at `full` durability, waits for the disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() && !self.unsynced {
            return Ok(());
        }
        let err = |e: io::Error, path: &Path| JournalError::Write {
            path: path.to_path_buf(),
            reason: crate::os::fs::io_reason(&e),
        };
        crate::os::hooks::point("before-sync");
        self.file.write_all(&self.pending).map_err(|e| err(e, &self.path))?;
        if self.durability.syncs() {
            self.file.sync_data().map_err(|e| err(e, &self.path))?;
        }
        self.pending.clear();
        self.unsynced = false;
        crate::os::hooks::point("after-sync");
        Ok(())
    }
}

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
    let text = String::from_utf8_lossy(&bytes);
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
            Record::RunResumed { host, user, time, durability, boot, inputs, .. } => {
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

/// The newest run of a runbook, if it has any.
pub fn newest_run(state: &Path, runbook: &str) -> Result<Option<RunSummary>, JournalError> {
    list_runs(state, Some(runbook)).first().map(|p| summarize(p)).transpose()
}

/// Every run journal in the state folder, newest first (optionally of one runbook).
pub fn list_runs(state: &Path, runbook: Option<&str>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let runs = state.join("runs");
    let dirs: Vec<PathBuf> = match runbook {
        Some(name) => vec![runs.join(name)],
        None => fs::read_dir(&runs).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default(),
    };
    for dir in dirs {
        if let Ok(entries) = fs::read_dir(&dir) {
            out.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "jsonl")),
            );
        }
    }
    // Run ids start with the UTC start time, so names sort by age.
    out.sort_by(|a, b| b.file_name().cmp(&a.file_name()));
    out
}

pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now();
    let stamp = humantime::format_rfc3339_millis(now).to_string();
    let compact: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    // 20261126013500123 → 20261126-013500-123
    let (date, rest) = compact.split_at(8.min(compact.len()));
    let (time, millis) = rest.split_at(6.min(rest.len()));
    format!("{date}-{time}-{millis}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Record {
        Record::RunStarted {
            run_id: "r".into(),
            runbook: "rb".into(),
            path: "rb.yaml".into(),
            files: vec![],
            steps: vec![],
            inputs: IndexMap::new(),
            secret_inputs: vec![],
            tool_version: "0".into(),
            host: "h".into(),
            user: "u".into(),
            pid: 1,
            cwd: "/".into(),
            time: now(),
            plan: None,
            rendered: vec![],
            durability: Durability::Full,
            boot: None,
        }
    }

    #[test]
    fn torn_last_line_is_ignored_and_garbled_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "rb", "r1", Masker::default(), &started(), Durability::Full).unwrap();
        j.append(&Record::StepStarted { step: "a".into(), attempt: 1, time: now(), backout: Backout::Nothing }, true)
            .unwrap();
        let path = j.path.clone();
        drop(j);
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("{\"type\":\"step_fin");
        fs::write(&path, &text).unwrap();
        let s = summarize(&path).unwrap();
        assert!(s.torn_tail);
        assert_eq!(s.stopped_at().map(|(id, _)| id), Some("a"));
        let garbled = text.replacen("{\"type\":\"step_started\"", "garbage", 1) + "\n";
        fs::write(&path, garbled).unwrap();
        let err = summarize(&path).unwrap_err();
        assert!(matches!(err, JournalError::Garbled { line: 2, .. }), "{err}");
    }

    #[test]
    fn secrets_are_masked_in_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut j =
            Journal::create(dir.path(), "rb", "r2", Masker::new(["hunter2"]), &started(), Durability::Process).unwrap();
        let decision = Record::OperatorDecision {
            step: "x".into(),
            decision: "skip".into(),
            host: "h".into(),
            user: "x hunter2".into(),
            time: now(),
        };
        j.append(&decision, true).unwrap();
        let text = fs::read_to_string(&j.path).unwrap();
        assert!(!text.contains("hunter2") && text.contains("x ****"), "{text}");
    }
}
