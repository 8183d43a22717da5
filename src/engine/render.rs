//! Rendering: a checked step plus a scope gives a [`Rendered`] action with every template
//! resolved and every path absolute. Plans and runs both start from here.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::Value;
use regex::Regex;

use crate::compile::inputs::{InputValue, Inputs, Origin};
use crate::compile::runbook::{Action, Condition, Encoding, Expect, Matcher, Runbook, Step, Tpl, TplValue};
use crate::compile::template::TemplateError;
use crate::engine::scope::{Scope, Shared};
use crate::format::diagnostic::{indent, tail};
use crate::format::mask::Masker;
use crate::format::model::Stream;
use crate::state::outcome::StepData;

/// A fully rendered action.
#[derive(Debug, Clone)]
pub enum Rendered {
    Copy { from: PathBuf, to: PathBuf, overwrite: bool },
    Rename { from: PathBuf, to: PathBuf, overwrite: bool },
    Cd(PathBuf),
    Exec(RenderedExec),
    Shell { script: String, shell: String, expect: Option<RenderedExpect> },
    ExpectOutput { step: String, expect: RenderedExpect },
    Mkdir(PathBuf),
    Remove { path: PathBuf, recursive: bool },
    Write { path: PathBuf, content: String, overwrite: bool },
    Assert { checks: Vec<Check>, message: Option<String> },
    Fail(String),
    Log(String),
    Manual { instructions: String, confirm: bool },
    Include { runbook: String, with: Vec<(String, String)> },
}

#[derive(Debug, Clone)]
pub struct RenderedExec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<String>,
    pub encoding: &'static encoding_rs::Encoding,
    pub read_only: bool,
    pub expect: Option<RenderedExpect>,
}

#[derive(Debug, Clone)]
pub struct RenderedExpect {
    pub contains: Vec<String>,
    pub not_contains: Vec<String>,
    pub matches: Option<Regex>,
    pub stream: Stream,
    pub exit_codes: Option<Vec<i32>>,
}

#[derive(Debug, Clone)]
pub enum Check {
    Exists(PathBuf),
    Missing(PathBuf),
    File(PathBuf),
    Dir(PathBuf),
    That { expr: String, holds: bool },
}

impl Rendered {
    /// One line for plans, logs and reports, secrets masked.
    pub fn describe(&self, masker: &Masker) -> String {
        masker.mask(&self.describe_unmasked(masker))
    }

    fn describe_unmasked(&self, masker: &Masker) -> String {
        // Words with spaces or quotes in double quotes, as typed at a prompt; backslashes (a
        // Windows path's) stay as they are.
        fn q(s: &str) -> String {
            if s.is_empty() || s.contains([' ', '"', '\'', '\n', '\t']) {
                let inner = s.replace('"', "\\\"").replace('\n', "\\n").replace('\t', "\\t");
                format!("\"{inner}\"")
            } else {
                s.to_owned()
            }
        }
        fn p(p: &std::path::Path) -> String {
            q(&p.display().to_string())
        }
        match self {
            Rendered::Copy { from, to, overwrite } => {
                format!("copy {} → {}{}", p(from), p(to), if *overwrite { " (overwrite)" } else { "" })
            }
            Rendered::Rename { from, to, overwrite } => {
                format!("rename {} → {}{}", p(from), p(to), if *overwrite { " (overwrite)" } else { "" })
            }
            Rendered::Cd(path) => format!("cd {}", p(path)),
            Rendered::Exec(e) => {
                let mut s = format!("exec {}", q(&e.program));
                for a in &e.args {
                    s.push(' ');
                    s.push_str(&q(a));
                }
                s
            }
            Rendered::Shell { script, shell, .. } => {
                format!("shell ({shell}) {}", first_line(script))
            }
            Rendered::ExpectOutput { step, expect } => {
                format!("expect-output of {step}: {}", expect.describe())
            }
            Rendered::Mkdir(path) => format!("mkdir {}", p(path)),
            Rendered::Remove { path, recursive } => {
                format!("remove {}{}", p(path), if *recursive { " (recursive)" } else { "" })
            }
            Rendered::Write { path, content, overwrite } => {
                // The size of a text with a secret in it would tell the secret's length.
                let size = match content.len() {
                    _ if masker.mask(content) != *content || has_secret_asked_later(content) => "with a secret".into(),
                    1 => "1 byte".to_string(),
                    n => format!("{n} bytes"),
                };
                format!("write {} ({size}){}", p(path), if *overwrite { " (overwrite)" } else { "" })
            }
            Rendered::Assert { checks, .. } => {
                let parts: Vec<String> = checks
                    .iter()
                    .map(|c| match c {
                        Check::Exists(x) => format!("exists {}", p(x)),
                        Check::Missing(x) => format!("missing {}", p(x)),
                        Check::File(x) => format!("file {}", p(x)),
                        Check::Dir(x) => format!("dir {}", p(x)),
                        Check::That { expr, .. } => format!("that {expr}"),
                    })
                    .collect();
                format!("assert {}", parts.join(", "))
            }
            Rendered::Fail(m) => format!("fail: {}", first_line(m)),
            Rendered::Log(m) => format!("log: {}", first_line(m)),
            Rendered::Manual { instructions, .. } => {
                format!("manual: {}", first_line(instructions))
            }
            Rendered::Include { runbook, .. } => format!("include {runbook}"),
        }
    }
}

/// What a reviewer needs besides the one-line action: how the step is run and checked, and the
/// full text of what it writes, runs or says. Masked here, so a long text's digest is of the
/// masked text. Plans show these lines and compare them with the reviewed plan's.
pub fn details(step: &Step, rendered: &Rendered, masker: &Masker) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Condition::Expr { tpl, .. }) = &step.when {
        out.push(format!("when: {}", tpl.text));
    }
    // A text in full (by digest when long); `always`: even one line, which the action's own
    // line does not show.
    let full = |label: &str, text: &str, always: bool, out: &mut Vec<String>| {
        let text = masker.mask(text);
        let text = text.trim_end_matches('\n');
        if text.len() > MAX_SHOWN {
            let digest = crate::format::digest::sha256_hex(text.as_bytes());
            out.push(format!("{label}: {} bytes, sha256 {}", text.len(), &digest[..16]));
        } else if text.contains('\n') || always {
            out.push(format!("{label}:\n{text}"));
        }
    };
    match rendered {
        Rendered::Exec(e) => {
            if e.read_only {
                out.push("read-only probe".into());
            }
            for (k, v) in &e.env {
                out.push(format!("env: {k}={}", masker.mask(v)));
            }
            if let Some(stdin) = &e.stdin {
                full("stdin", stdin, true, &mut out);
            }
            if let Some(x) = &e.expect {
                out.push(format!("expect: {}", masker.mask(&x.describe())));
            }
        }
        Rendered::Shell { script, expect, .. } => {
            full("script", script, false, &mut out);
            if let Some(x) = expect {
                out.push(format!("expect: {}", masker.mask(&x.describe())));
            }
        }
        Rendered::Write { content, .. } => full("content", content, true, &mut out),
        Rendered::Assert { message: Some(m), .. } => out.push(format!("message: {}", masker.mask(m))),
        Rendered::Fail(m) | Rendered::Log(m) => full("message", m, false, &mut out),
        Rendered::Manual { instructions, confirm } => {
            full("instructions", instructions, false, &mut out);
            if *confirm {
                out.push("asks the operator to confirm".into());
            }
        }
        Rendered::Include { with, .. } => {
            out.extend(with.iter().map(|(k, v)| format!("with: {k}={}", masker.mask(v))));
        }
        _ => {}
    }
    if let Some(t) = step.timeout {
        out.push(format!("timeout: {}", humantime::format_duration(t)));
    }
    if step.retries > 0 {
        out.push(format!("retries: {} ({} apart)", step.retries, humantime::format_duration(step.retry_delay)));
    }
    if step.continue_on_error {
        out.push("continues on error".into());
    }
    out
}

/// Whether a text holds a secret a plan does without (see [`crate::compile::inputs::asked_at_run_time`]).
fn has_secret_asked_later(text: &str) -> bool {
    text.find("<secret ").is_some_and(|i| text[i..].contains(": asked at run time>"))
}

/// Texts longer than this are shown in a plan by size and digest.
const MAX_SHOWN: usize = 4096;

fn first_line(s: &str) -> &str {
    s.trim().lines().next().unwrap_or("")
}

impl RenderedExpect {
    /// Checks a command's results; on success returns the named captures of `matches`.
    pub fn check(&self, data: &StepData) -> Result<IndexMap<String, String>, String> {
        let text = data.text(self.stream);
        let code = data.exit_code;
        let mut problems = Vec::new();
        if let Some(codes) = &self.exit_codes
            && !code.is_some_and(|c| codes.contains(&c))
        {
            let expected = codes.iter().map(i32::to_string).collect::<Vec<_>>().join(" or ");
            let got = code.map_or_else(|| "none (killed by a signal)".to_string(), |c| c.to_string());
            problems.push(format!("expected exit code {expected}, got {got}"));
        }
        for c in &self.contains {
            if !text.contains(c.as_str()) {
                problems.push(format!("expected the output to contain {c:?}"));
            }
        }
        for c in &self.not_contains {
            if text.contains(c.as_str()) {
                problems.push(format!("expected the output not to contain {c:?}"));
            }
        }
        let mut captures = IndexMap::new();
        if let Some(re) = &self.matches {
            match re.captures(&text) {
                Some(caps) => {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            captures.insert(name.to_owned(), m.as_str().to_owned());
                        }
                    }
                }
                None => problems.push(format!("expected the output to match /{}/", re.as_str())),
            }
        }
        if problems.is_empty() {
            return Ok(captures);
        }
        let seen = tail(&text, 10);
        let seen = if seen.is_empty() { "(no output)".to_string() } else { seen };
        let stream = match self.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Any => "the output",
        };
        Err(format!("{}\nlast lines of {stream}:\n{}", problems.join("; "), indent(&seen)))
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for c in &self.contains {
            parts.push(format!("contains {c:?}"));
        }
        for c in &self.not_contains {
            parts.push(format!("does not contain {c:?}"));
        }
        if let Some(m) = &self.matches {
            parts.push(format!("matches /{}/", m.as_str()));
        }
        if let Some(codes) = &self.exit_codes {
            parts.push(format!("exit code {}", codes.iter().map(i32::to_string).collect::<Vec<_>>().join(" or ")));
        }
        parts.join(", ")
    }
}

/// Why a step could not be rendered.
#[derive(Debug, Clone)]
pub struct RenderError {
    pub message: String,
    pub kind: RenderErrorKind,
}

/// Why a step could not be rendered, as far as a plan must tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderErrorKind {
    /// The template or its value is wrong: the step fails.
    Invalid,
    /// An undefined value: in a plan, possibly the output of a command that did not run.
    Undefined,
    /// It needs a secret only the run knows (a plan made without it).
    NeedsSecret,
}

impl RenderError {
    pub fn invalid(message: String) -> RenderError {
        RenderError { message, kind: RenderErrorKind::Invalid }
    }

    pub fn needs_secret(message: String) -> RenderError {
        RenderError { message, kind: RenderErrorKind::NeedsSecret }
    }
}

impl RenderError {
    fn at(tpl: &Tpl, e: TemplateError) -> RenderError {
        RenderError {
            message: format!("{} (in `{}` at {})", e.message, tpl.text, tpl.loc.position()),
            kind: if e.undefined { RenderErrorKind::Undefined } else { RenderErrorKind::Invalid },
        }
    }
}

pub fn text(tpl: &Tpl, scope: &Arc<Scope>) -> Result<String, RenderError> {
    match &tpl.compiled {
        None => Ok(tpl.text.clone()),
        Some(id) => scope.runbook.templates.render(*id, &scope.context()).map_err(|e| RenderError::at(tpl, e)),
    }
}

fn path(tpl: &Tpl, scope: &Arc<Scope>) -> Result<PathBuf, RenderError> {
    let rendered = text(tpl, scope)?;
    if rendered.trim().is_empty() {
        return Err(RenderError::invalid(format!(
            "`{}` renders to an empty path (at {})",
            tpl.text,
            tpl.loc.position()
        )));
    }
    Ok(scope.shared.resolve(&rendered))
}

pub fn condition(cond: &Condition, scope: &Arc<Scope>) -> Result<bool, RenderError> {
    match cond {
        Condition::Const(b) => Ok(*b),
        Condition::Expr { tpl, compiled } => {
            compiled.eval(&scope.context()).map(|v| v.is_true()).map_err(|e| RenderError::at(tpl, e))
        }
    }
}

/// Whether the step runs at all (`when`).
pub fn should_run(step: &Step, scope: &Arc<Scope>) -> Result<bool, RenderError> {
    step.when.as_ref().map_or(Ok(true), |c| condition(c, scope))
}

pub fn expect(x: &Expect, scope: &Arc<Scope>) -> Result<RenderedExpect, RenderError> {
    let matches = match &x.matches {
        None => None,
        Some(Matcher::Fixed(r)) => Some(r.clone()),
        Some(Matcher::Template(tpl)) => {
            let source = text(tpl, scope)?;
            Some(Regex::new(&source).map_err(|e| {
                RenderError::invalid(format!("`{}` renders to an invalid regular expression: {e}", tpl.text))
            })?)
        }
    };
    Ok(RenderedExpect {
        contains: x.contains.iter().map(|t| text(t, scope)).collect::<Result<_, _>>()?,
        not_contains: x.not_contains.iter().map(|t| text(t, scope)).collect::<Result<_, _>>()?,
        matches,
        stream: x.stream,
        exit_codes: x.exit_codes.clone(),
    })
}

pub fn action(step: &Step, scope: &Arc<Scope>) -> Result<Rendered, RenderError> {
    of_action(&step.action, scope)
}

/// A step's declared undo, rendered (with the step's own results in the scope).
pub fn undo_action(undo: &crate::compile::runbook::Undo, scope: &Arc<Scope>) -> Result<Rendered, RenderError> {
    of_action(&undo.action, scope)
}

fn of_action(action: &Action, scope: &Arc<Scope>) -> Result<Rendered, RenderError> {
    Ok(match action {
        Action::Copy(t) => {
            Rendered::Copy { from: path(&t.from, scope)?, to: path(&t.to, scope)?, overwrite: t.overwrite }
        }
        Action::Rename(t) => {
            Rendered::Rename { from: path(&t.from, scope)?, to: path(&t.to, scope)?, overwrite: t.overwrite }
        }
        Action::Cd(p) => Rendered::Cd(path(p, scope)?),
        Action::Exec(e) => Rendered::Exec(RenderedExec {
            program: text(&e.program, scope)?,
            args: e.args.iter().map(|a| text(a, scope)).collect::<Result<_, _>>()?,
            env: e.env.iter().map(|(k, v)| Ok((k.clone(), text(v, scope)?))).collect::<Result<_, RenderError>>()?,
            stdin: e.stdin.as_ref().map(|s| text(s, scope)).transpose()?,
            encoding: match &e.encoding {
                Encoding::Fixed(enc) => enc,
                Encoding::Template(tpl) => {
                    let label = text(tpl, scope)?;
                    Encoding::for_label(&label).ok_or_else(|| {
                        RenderError::invalid(format!(
                            "unknown encoding `{label}` (from `{}` at {}); {}",
                            tpl.text,
                            tpl.loc.position(),
                            crate::compile::ENCODING_HINT
                        ))
                    })?
                }
            },
            read_only: e.read_only,
            expect: e.expect.as_ref().map(|x| expect(x, scope)).transpose()?,
        }),
        Action::Shell(s) => Rendered::Shell {
            script: text(&s.script, scope)?,
            shell: match &s.shell {
                Some(sh) => text(sh, scope)?,
                None => crate::os::process::DEFAULT_SHELL.to_owned(),
            },
            expect: s.expect.as_ref().map(|x| expect(x, scope)).transpose()?,
        },
        Action::ExpectOutput(x) => Rendered::ExpectOutput { step: x.step.clone(), expect: expect(&x.expect, scope)? },
        Action::Mkdir(p) => Rendered::Mkdir(path(p, scope)?),
        Action::Remove { path: p, recursive } => Rendered::Remove { path: path(p, scope)?, recursive: *recursive },
        Action::Write { path: p, content, overwrite } => {
            Rendered::Write { path: path(p, scope)?, content: text(content, scope)?, overwrite: *overwrite }
        }
        Action::Assert(a) => {
            let mut checks = Vec::new();
            if let Some(p) = &a.exists {
                checks.push(Check::Exists(path(p, scope)?));
            }
            if let Some(p) = &a.missing {
                checks.push(Check::Missing(path(p, scope)?));
            }
            if let Some(p) = &a.file {
                checks.push(Check::File(path(p, scope)?));
            }
            if let Some(p) = &a.dir {
                checks.push(Check::Dir(path(p, scope)?));
            }
            if let Some(c) = &a.that {
                let expr = match c {
                    Condition::Const(b) => b.to_string(),
                    Condition::Expr { tpl, .. } => tpl.text.clone(),
                };
                checks.push(Check::That { expr, holds: condition(c, scope)? });
            }
            Rendered::Assert { checks, message: a.message.as_ref().map(|m| text(m, scope)).transpose()? }
        }
        Action::Fail(m) => Rendered::Fail(text(m, scope)?),
        Action::Log(m) => Rendered::Log(text(m, scope)?),
        Action::Manual { instructions, confirm } => {
            Rendered::Manual { instructions: text(instructions, scope)?, confirm: *confirm }
        }
        Action::Include(inc) => Rendered::Include {
            runbook: inc.runbook.name.clone(),
            with: inc.with.iter().map(|(k, v)| Ok((k.clone(), text(v, scope)?))).collect::<Result<_, RenderError>>()?,
        },
    })
}

/// A step's default title: its name, or the rendered action.
pub fn title(step: &Step, rendered: Option<&Rendered>, scope: &Arc<Scope>) -> String {
    if let Some(name) = &step.name {
        return text(name, scope).unwrap_or_else(|_| name.text.clone());
    }
    match rendered {
        // The message itself is shown when the step runs.
        Some(Rendered::Log(_)) => "log".to_string(),
        Some(r) => r.describe(&scope.shared.masker),
        None => step.action.summary(),
    }
}

/// Builds a runbook's scope: inputs, then vars rendered in order.
pub fn new_scope(runbook: &Arc<Runbook>, inputs: &Inputs, shared: Arc<Shared>) -> Result<Arc<Scope>, RenderError> {
    let later = inputs.asked_at_run_time().map(|s| (s.to_owned(), s.to_owned())).collect();
    scope_of(runbook, inputs, shared, later)
}

/// A runbook's scope, where `later` names the inputs that wait for a secret only the run knows.
fn scope_of(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    shared: Arc<Shared>,
    later: Vec<(String, String)>,
) -> Result<Arc<Scope>, RenderError> {
    let scope = Scope::new(shared, runbook.clone());
    for (name, v) in &inputs.values {
        scope.set_value(name, Value::from(minijinja::value::Serde(&v.value)));
    }
    for (name, secret) in later {
        scope.set_secret_later(&name, &secret);
    }
    for var in &runbook.vars {
        let value = var_value(&var.value, &scope)?;
        scope.set_value(&var.name, value);
        if let Some(secret) = scope.secret_later(&var.reads) {
            scope.set_secret_later(&var.name, &secret);
        }
    }
    Ok(scope)
}

/// The scope of an included runbook: its inputs' defaults, then the parent's `with` values;
/// its steps become the parent's `steps.<include id>`.
pub fn include_scope(
    step_id: &str,
    runbook: &Arc<Runbook>,
    with: &[(String, String)],
    parent: &Arc<Scope>,
) -> Result<Arc<Scope>, RenderError> {
    let failed = RenderError::invalid;
    let mut inputs = Inputs::default();
    let later = parent.secrets_shown_later();
    let mut waiting = Vec::new();
    for def in runbook.inputs.values() {
        let given = with.iter().find(|(k, _)| *k == def.name).map(|(_, v)| v);
        // A value made from a secret the plan does without waits for it too.
        if let Some((_, secret)) = given.and_then(|v| later.iter().find(|(shown, _)| v.contains(shown.as_str()))) {
            waiting.push((def.name.clone(), secret.clone()));
        }
        let Some(raw) = given.map(|v| serde_json::Value::String(v.clone())).or_else(|| def.default.clone()) else {
            return Err(failed(format!("the included runbook `{}` needs input `{}`", runbook.name, def.name)));
        };
        let value = crate::compile::inputs::coerce(def, &raw)
            .map_err(|why| failed(format!("input `{}` of `{}`: {why}", def.name, runbook.name)))?;
        inputs.values.insert(def.name.clone(), InputValue { value, origin: Origin::Cli });
    }
    let child = scope_of(runbook, &inputs, parent.shared.clone(), waiting)?;
    parent.set_include(step_id, &child);
    Ok(child)
}

fn var_value(v: &TplValue, scope: &Arc<Scope>) -> Result<Value, RenderError> {
    Ok(match v {
        TplValue::Text(t) => Value::from(text(t, scope)?),
        TplValue::Literal(j) => Value::from(minijinja::value::Serde(j)),
        TplValue::List(items) => Value::from(items.iter().map(|i| var_value(i, scope)).collect::<Result<Vec<_>, _>>()?),
        TplValue::Map(m) => {
            let mut out = std::collections::BTreeMap::new();
            for (k, v) in m {
                out.insert(k.clone(), var_value(v, scope)?);
            }
            Value::from(out)
        }
    })
}
