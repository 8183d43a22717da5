//! What changed in a runbook since a run of it began: the files it loads (the runbook and each
//! include, by content) and its steps' definitions, and which of those steps had already run.

use std::path::{Path, PathBuf};

use crate::compile::runbook::Runbook;
use crate::state::journal::RunSummary;

#[derive(Debug, Default)]
pub struct Changes {
    /// Files that differ, are no longer loaded, or are loaded anew.
    pub files: Vec<String>,
    /// Steps whose definition differs, or that are gone (`id (removed)`).
    pub steps: Vec<String>,
    /// Of those, the steps before the one where the run stopped.
    pub before_stop: Vec<String>,
}

impl Changes {
    pub fn any(&self) -> bool {
        !self.files.is_empty() || !self.steps.is_empty()
    }

    /// The changed steps for a message.
    pub fn steps_listed(&self) -> String {
        if self.steps.is_empty() {
            "none (the change is outside the steps: inputs, vars, comments or layout)".to_string()
        } else {
            self.steps.join(", ")
        }
    }
}

/// How `runbook`, as loaded from `here`, differs from the one the run began with.
pub fn since_run(summary: &RunSummary, runbook: &Runbook, here: &Path) -> Changes {
    let current = runbook.step_digests();
    let mut changes = Changes::default();
    for c in &current {
        if !summary.steps.iter().any(|s| s.id == c.id && s.fingerprint == c.fingerprint) {
            changes.steps.push(c.id.clone());
        }
    }
    for s in &summary.steps {
        if !current.iter().any(|c| c.id == s.id) {
            changes.steps.push(format!("{} (removed)", s.id));
        }
    }
    // Paths were recorded as given, relative to where the run began; compare them as files.
    let key = |base: &Path, p: &str| {
        let full = base.join(p);
        crate::os::path::key(&std::fs::canonicalize(&full).unwrap_or(full))
    };
    let then: Vec<(PathBuf, &str)> =
        summary.files.iter().map(|f| (key(Path::new(&summary.cwd), &f.path), f.sha256.as_str())).collect();
    let now: Vec<(PathBuf, &str, String)> = runbook
        .files()
        .iter()
        .map(|(src, sha)| (key(here, &src.path.display().to_string()), *sha, src.display_path()))
        .collect();
    changes.files.extend(
        now.iter()
            .filter(|(path, sha, _)| !then.iter().any(|(p, s)| p == path && s == sha))
            .map(|(_, _, shown)| shown.clone()),
    );
    changes.files.extend(
        then.iter()
            .filter(|(p, _)| !now.iter().any(|(path, _, _)| path == p))
            .map(|(p, _)| format!("{} (no longer loaded)", p.display())),
    );
    let stop = summary.stopped_at().and_then(|(id, _)| summary.steps.iter().position(|s| s.id == id));
    let stop = stop.unwrap_or(summary.steps.len());
    changes.before_stop = changes
        .steps
        .iter()
        .filter(|id| {
            let plain = id.strip_suffix(" (removed)").unwrap_or(id);
            summary.steps.iter().position(|s| s.id == plain).is_some_and(|i| i < stop)
        })
        .cloned()
        .collect();
    changes
}
