//! Where journals live (`<state>/runs/<runbook>/<run id>.jsonl`) and how runs are named.

use std::fs;
use std::path::{Path, PathBuf};

use super::{JournalError, RunSummary, summarize};

/// `<state>/runs/<runbook name>/`
pub fn runs_dir(state: &Path, runbook: &str) -> PathBuf {
    state.join("runs").join(runbook)
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
