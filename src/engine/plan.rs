//! The dry run: predicts each step over an [`Overlay`] of the filesystem, in order, so that a
//! step is judged against what the steps before it would have done. Nothing is written; only
//! `read-only` probes run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{Action, Runbook, Step};
use crate::engine::overlay::{Content, Entry, Node, Overlay};
use crate::engine::render::{self, Check, RenderError, Rendered};
use crate::engine::scope::{FsView, Scope, Shared};
use crate::format::mask::Masker;
use crate::state::outcome::{Outcome, StepData};

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
    #[serde(flatten)]
    pub verdict: Verdict,
}

pub struct Planner<'a> {
    overlay: Arc<Overlay>,
    masker: &'a Masker,
    pub steps: Vec<PlannedStep>,
}

impl<'a> Planner<'a> {
    pub fn plan(
        runbook: &Runbook,
        inputs: &Inputs,
        masker: &'a Masker,
        cwd: PathBuf,
    ) -> Result<Vec<PlannedStep>, RenderError> {
        let overlay = Arc::new(Overlay::default());
        let shared = Arc::new(Shared {
            fs: overlay.clone() as Arc<dyn FsView>,
            cwd: std::sync::Mutex::new(cwd),
            run_id: "plan".into(),
            dry_run: true,
        });
        let scope = render::new_scope(runbook, inputs, shared)?;
        let mut planner = Planner { overlay, masker, steps: Vec::new() };
        planner.walk(runbook, &scope, "");
        Ok(planner.steps)
    }

    fn walk(&mut self, runbook: &Runbook, scope: &Arc<Scope>, prefix: &str) {
        // Steps whose results are not known before the run.
        let mut unknown: HashSet<String> = HashSet::new();
        // Steps whose results later steps read (only for them is a copy's digest worth computing).
        let read_later: HashSet<&str> = runbook.steps.iter().flat_map(|s| s.refs.iter().map(String::as_str)).collect();
        for step in &runbook.steps {
            let id = format!("{prefix}{}", step.id);
            let depends_on_unknown = step.refs.iter().find(|r| unknown.contains(*r)).cloned();
            let run_time = |what: &str| {
                let why = match &depends_on_unknown {
                    Some(r) => {
                        format!("{what} depends on the output of `{r}`, known only when it runs")
                    }
                    None => format!("{what} depends on a value known only at run time"),
                };
                Verdict::DecidedAtRunTime(why)
            };
            let rendered = match render::should_run(step, scope) {
                Ok(true) => render::action(step, scope).map_err(|e| (e, "this step")),
                Ok(false) => {
                    scope.set_step(&step.id, StepData::default().to_value(Outcome::Skipped));
                    self.push(id, render::title(step, None, scope), None, Verdict::Skipped);
                    continue;
                }
                Err(e) => Err((e, "`when`")),
            };
            let rendered = match rendered {
                Ok(r) => r,
                Err((e, what)) => {
                    let verdict = if e.undefined && depends_on_unknown.is_some() {
                        run_time(what)
                    } else {
                        Verdict::WouldFail(e.message)
                    };
                    unknown.insert(step.id.clone());
                    self.push(id, render::title(step, None, scope), None, verdict);
                    continue;
                }
            };
            let title = render::title(step, Some(&rendered), scope);
            let description = rendered.describe();
            if let (Action::Include(inc), Rendered::Include { with, .. }) = (&step.action, &rendered) {
                self.push(id.clone(), title, Some(description), Verdict::Unchanged);
                match crate::engine::runner::include_scope(&inc.runbook, with, scope) {
                    Ok(child) => {
                        scope.set_step(&step.id, child.steps_value());
                        self.walk(&inc.runbook, &child, &format!("{id}."));
                    }
                    Err(e) => {
                        if let Some(last) = self.steps.last_mut() {
                            last.verdict = Verdict::WouldFail(e);
                        }
                    }
                }
                continue;
            }
            let (verdict, data) = self.predict(step, &rendered, scope, &unknown, read_later.contains(step.id.as_str()));
            match data {
                Some(data) => {
                    let outcome = match &verdict {
                        Verdict::WouldChange => Outcome::Done,
                        Verdict::WouldFail(_) => Outcome::Failed,
                        _ => Outcome::Unchanged,
                    };
                    scope.set_step(&step.id, data.to_value(outcome));
                }
                None => {
                    unknown.insert(step.id.clone());
                }
            }
            self.push(id, title, Some(description), verdict);
        }
    }

    fn push(&mut self, id: String, title: String, action: Option<String>, verdict: Verdict) {
        let m = self.masker;
        let verdict = match verdict {
            Verdict::WouldFail(w) => Verdict::WouldFail(m.mask(&w)),
            Verdict::DecidedAtRunTime(w) => Verdict::DecidedAtRunTime(m.mask(&w)),
            v => v,
        };
        self.steps.push(PlannedStep { id, title: m.mask(&title), action: action.map(|a| m.mask(&a)), verdict });
    }

    /// The verdict, and the step's results when they are known before the run (`None` for a
    /// command that does not run in a dry run).
    fn predict(
        &self,
        step: &Step,
        rendered: &Rendered,
        scope: &Arc<Scope>,
        unknown: &HashSet<String>,
        read_later: bool,
    ) -> (Verdict, Option<StepData>) {
        let o = &self.overlay;
        let known = |v: Verdict| (v, Some(StepData::default()));
        match rendered {
            Rendered::Copy { from, to, overwrite } => {
                // `steps.<id>.captures.sha256`, when a later step reads it (hashing reads the file).
                let sha = match o.get(from) {
                    Some(Node::File { content, .. }) if read_later => content_hash(&content),
                    _ => None,
                };
                (self.copy(from, to, *overwrite), Some(StepData::with_sha256(sha)))
            }
            Rendered::Rename { from, to, overwrite } => known(self.rename(from, to, *overwrite)),
            Rendered::Cd(path) => known(match o.get(path) {
                Some(Node::Dir) => {
                    scope.shared.set_cwd(path.clone());
                    Verdict::Unchanged
                }
                Some(_) => Verdict::WouldFail(format!("{} is not a folder", path.display())),
                None => Verdict::WouldFail(format!("folder {} does not exist", path.display())),
            }),
            Rendered::Mkdir(path) => known(match o.get(path) {
                Some(Node::Dir) => Verdict::Unchanged,
                Some(_) => Verdict::WouldFail(format!("{} exists and is not a folder", path.display())),
                None => {
                    o.mkdir_all(path);
                    Verdict::WouldChange
                }
            }),
            Rendered::Remove { path, recursive } => known(match o.get(path) {
                None => Verdict::Unchanged,
                Some(Node::Dir) if !recursive && !dir_is_empty(path) => Verdict::WouldFail(format!(
                    "{} is a folder that is not empty; set `recursive: true`",
                    path.display()
                )),
                Some(_) => {
                    o.set(path, Entry::Removed);
                    Verdict::WouldChange
                }
            }),
            Rendered::Write { path, content, overwrite } => {
                let hash = crate::compile::sha256_hex(content.as_bytes());
                known(match (o.get(path), parent_problem(o, path)) {
                    (_, Some(problem)) => Verdict::WouldFail(problem),
                    (Some(Node::Dir), _) => Verdict::WouldFail(format!("{} is a folder", path.display())),
                    (Some(Node::File { content: c, .. }), _) if same_content(&c, &Content::Hash(hash.clone())) => {
                        Verdict::Unchanged
                    }
                    (Some(_), _) if !overwrite => Verdict::WouldFail(crate::engine::effects::different_content(path)),
                    _ => {
                        o.set(path, Entry::File { size: content.len() as u64, content: Content::Hash(hash) });
                        Verdict::WouldChange
                    }
                })
            }
            Rendered::Assert { checks, message } => {
                let failed: Vec<String> = checks.iter().filter_map(|c| self.failed_check(c)).collect();
                known(if failed.is_empty() {
                    Verdict::Unchanged
                } else {
                    Verdict::WouldFail(message.clone().unwrap_or_else(|| failed.join("; ")))
                })
            }
            Rendered::Fail(message) => known(Verdict::WouldFail(message.clone())),
            Rendered::Log(_) => known(Verdict::Unchanged),
            Rendered::Manual { .. } => known(Verdict::WouldChange),
            Rendered::Exec(e) => {
                let cwd = scope.shared.cwd();
                let Some(program) = crate::os::process::resolve_program(&e.program, &cwd, |p| {
                    o.get(p).is_some_and(|n| n.kind() == crate::engine::scope::Kind::File)
                }) else {
                    return (
                        Verdict::WouldFail(format!(
                            "program `{}` not found in {} or on PATH",
                            e.program,
                            cwd.display()
                        )),
                        None,
                    );
                };
                if !e.read_only {
                    return (Verdict::WouldChange, None);
                }
                // A read-only probe runs for real, so later steps can be predicted from it.
                match crate::engine::actions::command::probe(&program, e, &cwd, step.timeout) {
                    Ok(data) => {
                        let check = match &e.expect {
                            Some(x) => x.check(&data).map(|caps| StepData { captures: caps, ..data.clone() }),
                            None if data.exit_code == Some(0) => Ok(data.clone()),
                            None => {
                                Err(format!("exit code {}", data.exit_code.map_or("none".into(), |c| c.to_string())))
                            }
                        };
                        match check {
                            Ok(d) => (Verdict::Unchanged, Some(d)),
                            Err(why) => (Verdict::WouldFail(why), Some(data)),
                        }
                    }
                    Err(why) => (Verdict::WouldFail(why), None),
                }
            }
            Rendered::Shell { shell, .. } => {
                let cwd = scope.shared.cwd();
                match crate::os::process::resolve_program(shell, &cwd, |p| p.is_file()) {
                    Some(_) => (Verdict::WouldChange, None),
                    None => (Verdict::WouldFail(format!("shell `{shell}` not found")), None),
                }
            }
            Rendered::ExpectOutput { step: target, expect } => {
                if unknown.contains(target) {
                    return (
                        Verdict::DecidedAtRunTime(format!("checks the output of `{target}`, which runs only for real")),
                        None,
                    );
                }
                let data = scope.step_data(target);
                match expect.check(&data) {
                    Ok(captures) => (Verdict::Unchanged, Some(StepData { captures, ..StepData::default() })),
                    Err(why) => (Verdict::WouldFail(why), Some(StepData::default())),
                }
            }
            Rendered::Include { .. } => known(Verdict::Unchanged),
        }
    }

    fn failed_check(&self, check: &Check) -> Option<String> {
        let o = &self.overlay;
        match check {
            Check::Exists(p) => o.get(p).is_none().then(|| format!("{} does not exist", p.display())),
            Check::Missing(p) => o.get(p).is_some().then(|| format!("{} exists", p.display())),
            Check::File(p) => {
                (!matches!(o.get(p), Some(Node::File { .. }))).then(|| format!("{} is not a file", p.display()))
            }
            Check::Dir(p) => (!matches!(o.get(p), Some(Node::Dir))).then(|| format!("{} is not a folder", p.display())),
            Check::That { expr, holds } => (!holds).then(|| format!("`{expr}` is false")),
        }
    }

    fn copy(&self, from: &Path, to: &Path, overwrite: bool) -> Verdict {
        let o = &self.overlay;
        let Some(source) = o.get(from) else {
            return Verdict::WouldFail(format!("source {} does not exist", from.display()));
        };
        let target = match (o.get(to), from.file_name()) {
            (Some(Node::Dir), Some(name)) => to.join(name),
            _ => to.to_path_buf(),
        };
        if let Some(problem) = parent_problem(o, &target) {
            return Verdict::WouldFail(problem);
        }
        match (&source, o.get(&target)) {
            (Node::File { content: a, .. }, Some(Node::File { content: b, .. })) if same_content(a, &b) => {
                return Verdict::Unchanged;
            }
            (_, Some(_)) if !overwrite => {
                return Verdict::WouldFail(crate::engine::effects::different_content(&target));
            }
            _ => {}
        }
        let entry = match source {
            Node::File { size, content } => Entry::File { size, content },
            Node::Dir => Entry::MovedFrom(from.to_path_buf()),
        };
        o.set(&target, entry);
        Verdict::WouldChange
    }

    fn rename(&self, from: &Path, to: &Path, overwrite: bool) -> Verdict {
        let o = &self.overlay;
        match (o.get(from), o.get(to)) {
            (None, Some(_)) => Verdict::Unchanged,
            (None, None) => Verdict::WouldFail(format!("{} does not exist", from.display())),
            (Some(_), Some(_)) if !overwrite => {
                Verdict::WouldFail(format!("{} already exists; set `overwrite: true` to replace it", to.display()))
            }
            (Some(_), _) => {
                if let Some(problem) = parent_problem(o, to) {
                    return Verdict::WouldFail(problem);
                }
                o.rename(from, to);
                Verdict::WouldChange
            }
        }
    }
}

fn parent_problem(o: &Overlay, path: &Path) -> Option<String> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    match o.get(parent) {
        Some(Node::Dir) => None,
        Some(_) => Some(format!("{} is not a folder", parent.display())),
        None => Some(format!("folder {} does not exist", parent.display())),
    }
}

fn dir_is_empty(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none())
}

/// Whether two planned contents are the same bytes (reads real files to compare).
fn same_content(a: &Content, b: &Content) -> bool {
    match (a, b) {
        (Content::Real(x), Content::Real(y)) if x == y => true,
        _ => match (content_hash(a), content_hash(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

fn content_hash(c: &Content) -> Option<String> {
    match c {
        Content::Hash(h) => Some(h.clone()),
        Content::Real(p) => crate::engine::actions::copy::file_sha256(p).ok(),
    }
}
