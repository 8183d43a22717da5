//! A checked runbook: every name resolved, every template's syntax known good, every location kept.
//! Later phases (render, plan, execute) never re-parse or re-validate.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;

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
}

impl Runbook {
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.inputs.values().filter(|i| i.secret).map(|i| i.name.as_str())
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
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

/// A template string with where it was written.
#[derive(Debug, Clone)]
pub struct Tpl {
    pub text: String,
    pub loc: Located,
}

/// An expression (`when`, `assert.that`).
#[derive(Debug, Clone)]
pub enum Condition {
    Const(bool),
    Expr(Tpl),
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
    pub fn keyword(&self) -> &'static str {
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
