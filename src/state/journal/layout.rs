//! Where journals live (`<state>/runs/<runbook>/<run id>.jsonl`) and how runs are named.

use std::fs;
use std::path::{Path, PathBuf};

use crate::compile::runbook::FileDigest;

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

/// `<state>/sources/<runbook>/<run id>/` for the journal `<state>/runs/<runbook>/<run id>.jsonl`:
/// the runbook files (`runbook/`), and the reviewed plan with its approvals (`plan/`), as they
/// were when the run began, for its evidence.
pub fn sources_dir(journal: &Path) -> PathBuf {
    let runbook_dir = crate::os::path::parent_dir(journal);
    let state = crate::os::path::parent_dir(crate::os::path::parent_dir(runbook_dir));
    let runbook = runbook_dir.file_name().unwrap_or_default();
    let run = journal.file_stem().unwrap_or_default();
    state.join("sources").join(runbook).join(run)
}

/// The name of each runbook file under `runbook/`: its path relative to the main runbook's
/// folder when it is inside it, else its file name (numbered when two would clash).
pub fn source_names(files: &[FileDigest]) -> Vec<String> {
    let base = files.first().map(|f| crate::os::path::parent_dir(Path::new(&f.path)).to_path_buf());
    let mut names: Vec<String> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let path = Path::new(&f.path);
        let relative = base
            .as_ref()
            .and_then(|b| path.strip_prefix(b).ok())
            .filter(|r| r.components().all(|c| matches!(c, std::path::Component::Normal(_))));
        let name = match relative {
            Some(r) => r.to_string_lossy().replace('\\', "/"),
            None => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| format!("file-{i}")),
        };
        let name = if names.contains(&name) { format!("{i}-{name}") } else { name };
        names.push(name);
    }
    names
}

/// Copies what the run is made from into [`sources_dir`]: each runbook file and the plan only
/// when its bytes still have the digest the run recorded (otherwise the evidence says it is
/// missing, rather than showing other bytes).
pub fn keep_sources(journal: &Path, files: &[FileDigest], plan: Option<&FileDigest>) -> Result<(), JournalError> {
    let dir = sources_dir(journal);
    let write = |to: &Path, bytes: &[u8]| -> Result<(), JournalError> {
        let failed =
            |e: std::io::Error| JournalError::Write { path: to.to_path_buf(), reason: crate::os::fs::io_reason(&e) };
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(failed)?;
        }
        fs::write(to, bytes).map_err(failed)
    };
    let same = |f: &FileDigest| fs::read(&f.path).ok().filter(|b| crate::format::digest::sha256_hex(b) == f.sha256);
    for (f, name) in files.iter().zip(source_names(files)) {
        if let Some(bytes) = same(f) {
            write(&dir.join("runbook").join(&name), &bytes)?;
        }
    }
    if let Some(plan) = plan
        && let Some(bytes) = same(plan)
    {
        let path = Path::new(&plan.path);
        let name = path.file_name().map_or_else(|| "plan.json".into(), |n| n.to_string_lossy().into_owned());
        write(&dir.join("plan").join(&name), &bytes)?;
        let kept = dir.join("plan").join(format!("{name}.approvals"));
        let folder = crate::state::approvals::folder_of(path);
        for found in crate::state::approvals::read_folder(path).unwrap_or_default() {
            write(&kept.join(&found.name), &found.bytes)?;
            let comment = Path::new(&found.name).with_extension("comment");
            if let Ok(text) = fs::read(folder.join(&comment)) {
                write(&kept.join(&comment), &text)?;
            }
        }
    }
    Ok(())
}
