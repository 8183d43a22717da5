//! A plan as reviewed: each step's rendered action and verdict, and what it was made from (the
//! runbook files' digests, the inputs, secrets by name only). `plan --out` writes it, `show-plan`
//! prints it, `run --plan` compares a fresh plan against it. Schema: `schemas/plan.schema.json`.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{FileDigest, Runbook};
use crate::format::diagnostic::Diagnostic;
use crate::format::digest::sha256_hex;
use crate::format::source::{Located, Source, Span};
use crate::state::drift::{self, Difference, StepText};

/// A step's predicted fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    WouldChange,
    Unchanged,
    Skipped,
    WouldFail(String),
    DecidedAtRunTime(String),
}

impl Verdict {
    pub fn label(&self) -> String {
        match self {
            Verdict::WouldChange => "would change".into(),
            Verdict::Unchanged => "unchanged".into(),
            Verdict::Skipped => "skipped".into(),
            Verdict::WouldFail(why) => format!("would fail: {why}"),
            Verdict::DecidedAtRunTime(why) => format!("decided at run time: {why}"),
        }
    }

    pub fn fails(&self) -> bool {
        matches!(self, Verdict::WouldFail(_))
    }
}

/// One predicted step, secrets already masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Journal id (`<include id>.<step id>` inside an include).
    pub id: String,
    pub title: String,
    /// The fully rendered action, or `None` when it cannot be rendered before the run.
    pub action: Option<String>,
    /// How it runs and is checked, and the full texts it writes or shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How the step would be backed out if a later one failed (none: nothing to undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backout: Option<PlannedBackout>,
}

/// A step's part of the backout plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedBackout {
    /// What undoing it does, in the order it is done.
    Undo(Vec<String>),
    /// Why it cannot be undone.
    Impossible(String),
}

/// The backout a failure at the last step would run: each step with something to undo, newest
/// first.
pub fn backout(steps: &[PlannedStep]) -> Vec<(&PlannedStep, &PlannedBackout)> {
    steps.iter().rev().filter_map(|s| s.backout.as_ref().map(|b| (s, b))).collect()
}

impl PlannedStep {
    /// The step as rendered, without the verdict.
    pub fn text(&self) -> StepText {
        StepText {
            id: self.id.clone(),
            title: self.title.clone(),
            action: self.action.clone(),
            details: self.details.clone(),
        }
    }
}

/// The format of saved plans this version writes and reads.
const FORMAT: u32 = 1;

/// A plan saved by `plan --out`, as read back.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: u32,
    pub tool_version: String,
    pub runbook: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub path: String,
    pub files: Vec<FileDigest>,
    pub inputs: IndexMap<String, serde_json::Value>,
    pub secret_inputs: Vec<String>,
    pub steps: Vec<PlannedStep>,
    pub would_fail: bool,
}

impl SavedPlan {
    /// The plan of `runbook` (read from `path`) with these inputs; secrets by name only.
    pub fn new(runbook: &Runbook, path: &Path, inputs: &Inputs, steps: Vec<PlannedStep>) -> SavedPlan {
        let secret: Vec<String> = runbook.secret_names().map(str::to_owned).collect();
        SavedPlan {
            format: FORMAT,
            tool_version: crate::format::version::LONG.into(),
            runbook: runbook.name.clone(),
            title: runbook.title.clone(),
            path: path.display().to_string(),
            files: runbook.file_digests(),
            inputs: inputs.recordable(runbook),
            would_fail: steps.iter().any(|s| s.verdict.fails()),
            secret_inputs: secret,
            steps,
        }
    }

    /// The saved form (pretty JSON, one trailing newline).
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan serializes") + "\n"
    }

    /// The SHA-256 of the saved form: what `run --plan` records of the plan it ran.
    pub fn digest(&self) -> String {
        sha256_hex(self.to_text().as_bytes())
    }

    /// Reads a saved plan; returns it with the SHA-256 of its file (the run records it).
    pub fn read(path: &Path) -> Result<(SavedPlan, String), Diagnostic> {
        let text = crate::format::file::read_text(path)?;
        let plan: SavedPlan = serde_json::from_str(&text).map_err(|e| {
            let source = Source::new(path, text.clone());
            let offset = source.offset_of(e.line(), e.column());
            Diagnostic::error(format!("this is not a saved plan: {e}"))
                .at(Located::new(&source, Span::new(offset, 1)))
                .hint("give a file written by `runbook plan ... --out PLAN`")
        })?;
        if plan.format != FORMAT {
            return Err(Diagnostic::error(format!(
                "{} is a plan of format {}; this version reads format {FORMAT}",
                path.display(),
                plan.format
            )));
        }
        let digest = sha256_hex(text.as_bytes());
        Ok((plan, digest))
    }
}

impl SavedPlan {
    /// A plan from its bytes (as bundled in evidence); `None` when they are not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<SavedPlan> {
        let text = String::from_utf8_lossy(bytes);
        serde_json::from_str(text.trim_start_matches('\u{feff}')).ok().filter(|p: &SavedPlan| p.format == FORMAT)
    }

    /// How the runbook, its inputs (`inputs`, secrets left out) and the plan now (`now`) differ
    /// from what was reviewed, step by step; empty when they render to exactly the reviewed plan.
    pub fn drift(&self, runbook: &Runbook, inputs: &Inputs, now: &[PlannedStep]) -> Vec<Difference> {
        let mut out = Vec::new();
        let now_files = runbook.file_digests();
        for f in &self.files {
            match now_files.iter().find(|n| n.path == f.path) {
                Some(n) if n.sha256 == f.sha256 => {}
                Some(_) => out.push(Difference::File(format!("{} changed since the review", f.path))),
                None => out.push(Difference::File(format!("{} is no longer loaded", f.path))),
            }
        }
        for n in &now_files {
            if !self.files.iter().any(|f| f.path == n.path) {
                out.push(Difference::File(format!("{} is loaded now but was not reviewed", n.path)));
            }
        }
        for (name, value) in inputs.recordable(runbook) {
            match self.inputs.get(&name) {
                Some(reviewed) if *reviewed == value => {}
                Some(reviewed) => {
                    out.push(Difference::Input(format!("input `{name}`: reviewed {reviewed}, now {value}")))
                }
                None => out.push(Difference::Input(format!("input `{name}` was not in the reviewed plan"))),
            }
        }
        for name in runbook.secret_names().filter(|n| !self.secret_inputs.iter().any(|s| s == n)) {
            out.push(Difference::Input(format!("secret input `{name}` was not in the reviewed plan")));
        }
        let reviewed: Vec<StepText> = self.steps.iter().map(PlannedStep::text).collect();
        let now: Vec<StepText> = now.iter().map(PlannedStep::text).collect();
        out.extend(drift::steps(&reviewed, &now));
        out
    }
}
