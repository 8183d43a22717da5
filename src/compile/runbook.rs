//! A checked runbook: every name resolved, every template's syntax known good, every location kept.
//! Later phases (render, plan, execute) never re-parse or re-validate.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;

use crate::compile::template::{Compiled, Templates};
use crate::format::model::{InputType, Stream};
use crate::format::source::{Located, Source};

#[derive(Debug)]
pub struct Runbook {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub source: Arc<Source>,
    /// SHA-256 of the file as read.
    pub sha256: String,
    pub inputs: IndexMap<String, InputDef>,
    pub vars: Vec<VarDef>,
    pub steps: Vec<Step>,
    /// Every template of this file, compiled.
    pub templates: Templates,
    /// What a failed run does (`on-failure`).
    pub on_failure: crate::format::model::OnFailure,
}

impl Runbook {
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.inputs.values().filter(|i| i.secret).map(|i| i.name.as_str())
    }

    /// The digest of every file this runbook loads, as recorded in journals and saved plans.
    pub fn file_digests(&self) -> Vec<FileDigest> {
        self.files()
            .iter()
            .map(|(s, sha)| FileDigest { path: s.path.display().to_string(), sha256: (*sha).to_owned() })
            .collect()
    }

    /// Every step's definition digest, included runbooks' steps under `<include id>.`.
    pub fn step_digests(&self) -> Vec<StepDigest> {
        let mut out = Vec::new();
        self.collect_step_digests("", &mut out);
        out
    }

    fn collect_step_digests(&self, prefix: &str, out: &mut Vec<StepDigest>) {
        for s in &self.steps {
            let id = format!("{prefix}{}", s.id);
            out.push(StepDigest {
                id: id.clone(),
                fingerprint: s.fingerprint.clone(),
                command: s.is_command(),
                idempotent: s.idempotent(),
            });
            if let Action::Include(inc) = &s.action {
                inc.runbook.collect_step_digests(&format!("{id}."), out);
            }
        }
    }

    /// How many steps a run walks, included ones too (for progress).
    pub fn count_steps(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match &s.action {
                Action::Include(inc) => 1 + inc.runbook.count_steps(),
                _ => 1,
            })
            .sum()
    }

    /// Every file this runbook loads, itself first, each once.
    pub fn files(&self) -> Vec<(&Source, &str)> {
        let mut out: Vec<(&Source, &str)> = vec![(&self.source, &self.sha256)];
        for step in &self.steps {
            if let Action::Include(inc) = &step.action {
                for (src, sha) in inc.runbook.files() {
                    if !out.iter().any(|(s, _)| s.path == src.path) {
                        out.push((src, sha));
                    }
                }
            }
        }
        out
    }
}

/// A file a runbook loaded, by its SHA-256.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

/// A step's definition, by its SHA-256, and what resume must know of it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StepDigest {
    pub id: String,
    pub fingerprint: String,
    pub command: bool,
    pub idempotent: bool,
}

#[derive(Debug)]
pub struct InputDef {
    pub name: String,
    pub description: Option<String>,
    pub ty: InputType,
    pub default: Option<serde_json::Value>,
    pub choices: Vec<String>,
    pub pattern: Option<Regex>,
    pub secret: bool,
    pub loc: Located,
}

impl InputDef {
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

#[derive(Debug)]
pub struct VarDef {
    pub name: String,
    pub value: TplValue,
    /// Inputs and earlier vars its templates read.
    pub reads: Vec<String>,
    pub loc: Located,
}

/// A var's value: strings are templates, other scalars literal, lists and maps recursive.
#[derive(Debug)]
pub enum TplValue {
    Text(Tpl),
    Literal(serde_json::Value),
    List(Vec<TplValue>),
    Map(IndexMap<String, TplValue>),
}

/// A template string with where it was written, and its id in its runbook's [`Templates`] (none
/// for plain text, used as it is).
#[derive(Debug, Clone)]
pub struct Tpl {
    pub text: String,
    pub loc: Located,
    pub compiled: Option<crate::compile::template::TemplateId>,
}

/// An expression (`when`, `assert.that`), compiled.
#[derive(Debug, Clone)]
pub enum Condition {
    Const(bool),
    Expr { tpl: Tpl, compiled: Compiled },
}

#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub name: Option<Tpl>,
    pub when: Option<Condition>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub continue_on_error: bool,
    pub action: Action,
    pub loc: Located,
    /// SHA-256 of the step's definition as written (resume compares it).
    pub fingerprint: String,
    /// Ids of earlier steps whose results this step's templates read.
    pub refs: Vec<String>,
    /// Inputs and vars its `when` reads.
    pub when_reads: Vec<String>,
    /// Inputs and vars its name and action read.
    pub reads: Vec<String>,
    /// A later step reads this step's results.
    pub read_later: bool,
    /// A declared way to back the step out (`undo:`).
    pub undo: Option<Undo>,
}

/// A step's declared undo: one action, rendered with the step's inputs and `steps.*`.
#[derive(Debug)]
pub struct Undo {
    pub action: Action,
    pub timeout: Option<Duration>,
    pub loc: Located,
}

impl Step {
    /// Whether the step runs an external command (and so may not be safe to run twice).
    pub fn is_command(&self) -> bool {
        matches!(self.action, Action::Exec(_) | Action::Shell(_))
    }

    pub fn idempotent(&self) -> bool {
        match &self.action {
            Action::Exec(e) => e.idempotent || e.read_only,
            Action::Shell(s) => s.idempotent,
            _ => true,
        }
    }
}

#[derive(Debug)]
pub enum Action {
    Copy(Transfer),
    Rename(Transfer),
    Cd(Tpl),
    Exec(Exec),
    Shell(Shell),
    ExpectOutput(ExpectOutput),
    Mkdir(Tpl),
    Remove { path: Tpl, recursive: bool },
    Write { path: Tpl, content: Tpl, overwrite: bool },
    Assert(Assert),
    Fail(Tpl),
    Log(Tpl),
    Manual { instructions: Tpl, confirm: bool },
    Include(Include),
}

impl Action {
    /// The action as written (templates unrendered).
    /// The action's key as written (`copy`, `exec`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            Action::Copy(_) => "copy",
            Action::Rename(_) => "rename",
            Action::Cd(_) => "cd",
            Action::Exec(_) => "exec",
            Action::Shell(_) => "shell",
            Action::ExpectOutput(_) => "expect-output",
            Action::Mkdir(_) => "mkdir",
            Action::Remove { .. } => "remove",
            Action::Write { .. } => "write",
            Action::Assert(_) => "assert",
            Action::Fail(_) => "fail",
            Action::Log(_) => "log",
            Action::Manual { .. } => "manual",
            Action::Include(_) => "include",
        }
    }

    /// Whether only a declared `undo:` can back it out (it has no automatic inverse).
    pub fn needs_declared_undo(&self) -> bool {
        matches!(self, Action::Exec(_) | Action::Shell(_) | Action::Manual { .. })
    }

    pub fn summary(&self) -> String {
        match self {
            Action::Copy(t) => format!("copy {} → {}", t.from.text, t.to.text),
            Action::Rename(t) => format!("rename {} → {}", t.from.text, t.to.text),
            Action::Cd(p) => format!("cd {}", p.text),
            Action::Exec(e) => {
                let mut s = e.program.text.clone();
                for a in &e.args {
                    s.push(' ');
                    s.push_str(&a.text);
                }
                format!("exec {s}")
            }
            Action::Shell(s) => format!("shell {}", s.script.text.lines().next().unwrap_or("")),
            Action::ExpectOutput(x) => format!("expect-output of {}", x.step),
            Action::Mkdir(p) => format!("mkdir {}", p.text),
            Action::Remove { path, .. } => format!("remove {}", path.text),
            Action::Write { path, .. } => format!("write {}", path.text),
            Action::Assert(_) => "assert".into(),
            Action::Fail(m) => format!("fail: {}", m.text.lines().next().unwrap_or("")),
            Action::Log(m) => format!("log: {}", m.text.lines().next().unwrap_or("")),
            Action::Manual { instructions, .. } => {
                format!("manual: {}", instructions.text.lines().next().unwrap_or(""))
            }
            Action::Include(inc) => format!("include {}", inc.runbook.name),
        }
    }
}

#[derive(Debug)]
pub struct Transfer {
    pub from: Tpl,
    pub to: Tpl,
    pub overwrite: bool,
}

#[derive(Debug)]
pub struct Exec {
    pub program: Tpl,
    pub args: Vec<Tpl>,
    pub env: IndexMap<String, Tpl>,
    pub stdin: Option<Tpl>,
    pub encoding: Encoding,
    pub read_only: bool,
    pub idempotent: bool,
    pub expect: Option<Expect>,
}

/// An output encoding: fixed at load time, or chosen by a template (e.g. a site's input).
#[derive(Debug, Clone)]
pub enum Encoding {
    Fixed(&'static encoding_rs::Encoding),
    Template(Tpl),
}

impl Encoding {
    /// The encoding a label names: a WHATWG label (`shift_jis`, `utf-16le`, ...), or `console`,
    /// the encoding console programs write in on this machine (the console's code page on
    /// Windows: CP932 on a Japanese server).
    pub fn for_label(label: &str) -> Option<&'static encoding_rs::Encoding> {
        let label = label.trim();
        if label.eq_ignore_ascii_case("console") {
            return Some(crate::os::console::output_encoding());
        }
        encoding_rs::Encoding::for_label(label.as_bytes())
    }
}

#[derive(Debug)]
pub struct Shell {
    pub script: Tpl,
    pub shell: Option<Tpl>,
    pub idempotent: bool,
    pub expect: Option<Expect>,
}

#[derive(Debug)]
pub struct ExpectOutput {
    /// The exec/shell step checked (resolved at load time).
    pub step: String,
    pub expect: Expect,
}

#[derive(Debug, Clone)]
pub struct Expect {
    pub contains: Vec<Tpl>,
    pub not_contains: Vec<Tpl>,
    pub matches: Option<Matcher>,
    pub stream: Stream,
    pub exit_codes: Option<Vec<i32>>,
    pub loc: Located,
}

/// A regex: compiled at load time unless it is a template.
#[derive(Debug, Clone)]
pub enum Matcher {
    Fixed(Regex),
    Template(Tpl),
}

impl Action {
    /// The names under `steps.<id>.captures` this action's results hold; `None` when they are
    /// known only at run time (a regex made by a template).
    pub fn capture_names(&self) -> Option<Vec<String>> {
        let of = |x: Option<&Expect>| match x.and_then(|x| x.matches.as_ref()) {
            None => Some(Vec::new()),
            Some(Matcher::Fixed(re)) => Some(re.capture_names().flatten().map(str::to_owned).collect()),
            Some(Matcher::Template(_)) => None,
        };
        match self {
            Action::Copy(_) => Some(vec!["sha256".into()]),
            Action::Exec(e) => of(e.expect.as_ref()),
            Action::Shell(s) => of(s.expect.as_ref()),
            Action::ExpectOutput(x) => of(Some(&x.expect)),
            _ => Some(Vec::new()),
        }
    }
}

#[derive(Debug)]
pub struct Assert {
    pub exists: Option<Tpl>,
    pub missing: Option<Tpl>,
    pub file: Option<Tpl>,
    pub dir: Option<Tpl>,
    pub that: Option<Condition>,
    pub message: Option<Tpl>,
}

#[derive(Debug)]
pub struct Include {
    pub runbook: Arc<Runbook>,
    pub with: IndexMap<String, Tpl>,
}
