//! The append-only journal: one JSON object per line, one file per run, each record on disk
//! (fdatasync) before the step it announces takes effect and before a step is reported done.
//! A torn last line (a crash mid-write) is ignored with a warning; a garbled line elsewhere is
//! an error naming the line.
//!
//! In four parts: [`records`] (what a line says), [`writer`] (appending, synced as the run's
//! durability asks), [`replay`] (reading a journal back into a run's state) and [`layout`]
//! (where journals live and how runs are named).

mod layout;
mod records;
mod replay;
mod writer;

pub use layout::{keep_sources, list_runs, new_run_id, newest_run, runs_dir, source_names, sources_dir};
pub use records::*;
pub use replay::*;
pub use writer::Journal;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use std::fs;

    use indexmap::IndexMap;

    use super::*;
    use crate::format::mask::Masker;
    use crate::state::undo::Backout;

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
            approvals: vec![],
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
