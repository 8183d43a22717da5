//! Steps: ids, exactly one action each, the action's own checks, and includes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;

use super::{ENCODING_HINT, FileLoader, MAX_INCLUDE_DEPTH, Scope, StepShape, is_identifier, regex_reason};
use crate::compile::runbook::*;
use crate::compile::template;
use crate::format::diagnostic::{Diagnostic, did_you_mean};
use crate::format::digest::sha256_hex;
use crate::format::model::{self, Sp, Stream};
use crate::format::source::Span;
use crate::format::yaml::{Node, NodeKind};

impl FileLoader<'_, '_> {
    pub(super) fn steps(&mut self, node: &Node, inputs: &IndexMap<String, InputDef>, vars: &[VarDef]) -> Vec<Step> {
        let mut out = Vec::new();
        let NodeKind::Seq(items) = &node.kind else {
            self.error(node.span, format!("`steps` must be a list, not {}", node.describe())).hint =
                Some("write each step as `- id: ...` under `steps:`".into());
            return out;
        };
        if items.is_empty() {
            self.error(node.span, "a runbook needs at least one step");
        }
        // First pass: ids, so that a reference to a later step says so.
        let mut all_ids: HashMap<String, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let Some(id_node) = item.get("id") else {
                continue;
            };
            let Some(id) = id_node.as_str() else { continue };
            if let Some(&first) = all_ids.get(id) {
                let (line, _) = self.source.line_col(items[first].span.offset);
                self.error(id_node.span, format!("duplicate step id `{id}`")).hint = Some(format!(
                    "it is first used by the step on line {line}; step ids must be unique (the journal keys on them)"
                ));
            } else {
                all_ids.insert(id.to_owned(), i);
            }
        }
        let var_names: Vec<String> = vars.iter().map(|v| v.name.clone()).collect();
        let mut earlier: IndexMap<String, StepShape> = IndexMap::new();
        let mut last_command: Option<String> = None;
        for (i, item) in items.iter().enumerate() {
            let step = {
                let scope = Scope { inputs, vars: &var_names, steps: &earlier, all_steps: &all_ids };
                self.step(item, &scope, last_command.as_deref())
            };
            let Some((step, shape)) = step else {
                if let Some(id) = item.get("id").and_then(Node::as_str)
                    && all_ids.get(id) == Some(&i)
                {
                    earlier.insert(id.to_owned(), StepShape::Broken);
                }
                continue;
            };
            if step.is_command() {
                last_command = Some(step.id.clone());
            }
            earlier.insert(step.id.clone(), shape);
            out.push(step);
        }
        let read: std::collections::HashSet<String> = out.iter().flat_map(|s| s.refs.iter().cloned()).collect();
        for step in &mut out {
            step.read_later = read.contains(&step.id);
        }
        out
    }

    fn step(&mut self, node: &Node, scope: &Scope, last_command: Option<&str>) -> Option<(Step, StepShape)> {
        let Some(entries) = node.as_map() else {
            self.error(node.span, format!("a step must be a mapping with `id` and an action, not {}", node.describe()));
            return None;
        };
        let actions: Vec<&Node> = entries
            .iter()
            .filter(|(k, _)| k.as_str().is_some_and(|k| model::ACTION_KEYS.contains(&k)))
            .map(|(k, _)| k)
            .collect();
        let what = match node.get("id").and_then(Node::as_str) {
            Some(id) => format!("step `{id}`"),
            None => "step".to_string(),
        };
        let mut raw: model::RawStep = self.read_all(node, &what)?;
        let id = match &raw.id {
            Some(id) if is_identifier(&id.value) => {
                if scope.steps.contains_key(&id.value) {
                    return None; // a duplicate, reported with the first pass
                }
                id.value.clone()
            }
            Some(id) => {
                self.check_identifier(&id.value, id.span, "step id");
                return None;
            }
            None => {
                self.error(node.span, "this step has no `id`").hint =
                    Some("add `id: some_name` (lowercase letters, digits, `_`); the journal keys on it".into());
                return None;
            }
        };
        match actions.len() {
            1 => {}
            0 => {
                self.error(node.span, format!("step `{id}` has no action")).hint =
                    Some(format!("add exactly one of: {}", model::ACTION_KEYS.join(", ")));
                return None;
            }
            _ => {
                let names: Vec<&str> = actions.iter().filter_map(|k| k.as_str()).collect();
                self.error(actions[1].span, format!("step `{id}` has {} actions: {}", names.len(), names.join(", ")))
                    .hint = Some("a step does exactly one thing; split it into several steps".into());
                return None;
            }
        }
        let loc = self.loc(node.span);
        self.refs.clear();
        self.reads.clear();
        let action = RawAction::take(raw_action_fields(&mut raw))?;
        let when = raw.when.and_then(|w| self.condition(w, scope));
        let when_reads = std::mem::take(&mut self.reads).into_iter().collect();
        let name = raw.name.map(|n| self.template(n.value, n.span, scope));
        let timeout = raw.timeout.and_then(|t| self.duration(&t, "timeout"));
        let retry_delay =
            raw.retry_delay.and_then(|t| self.duration(&t, "retry-delay")).unwrap_or(Duration::from_secs(1));
        let (action, shape) = self.action(action, scope, last_command)?;
        let undo = node.get("undo").and_then(|u| self.undo(u, &id, scope));
        let fingerprint = sha256_hex(node.to_json().to_string().as_bytes());
        Some((
            Step {
                id,
                name,
                when,
                timeout,
                retries: raw.retries.map_or(0, |r| r.value),
                retry_delay,
                continue_on_error: raw.continue_on_error,
                refs: std::mem::take(&mut self.refs).into_iter().collect(),
                when_reads,
                reads: std::mem::take(&mut self.reads).into_iter().collect(),
                read_later: false,
                undo,
                action,
                loc,
                fingerprint,
            },
            shape,
        ))
    }

    /// A step's `undo:`: a mapping with exactly one action (and optionally `timeout`), which may
    /// read the step's own results.
    fn undo(&mut self, node: &Node, id: &str, scope: &Scope) -> Option<Undo> {
        let what = format!("the undo of step `{id}`");
        let Some(entries) = node.as_map() else {
            self.error(node.span, format!("{what} must be a mapping with one action, not {}", node.describe())).hint =
                Some("write e.g. `undo: { exec: [net, start, ofcservice] }`".into());
            return None;
        };
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if !model::ACTION_KEYS.contains(&key) && key != "timeout" {
                self.error(k.span, format!("{what} cannot have `{key}`")).hint = Some(format!(
                    "an undo is one action (one of: {}) and an optional `timeout`",
                    model::ACTION_KEYS.join(", ")
                ));
                return None;
            }
        }
        let mut raw: model::RawStep = self.read_all(node, &what)?;
        let actions = raw_action_fields(&mut raw);
        match actions.len() {
            1 => {}
            0 => {
                self.error(node.span, format!("{what} has no action")).hint =
                    Some(format!("give exactly one of: {}", model::ACTION_KEYS.join(", ")));
                return None;
            }
            n => {
                self.error(node.span, format!("{what} has {n} actions")).hint =
                    Some("an undo does one thing; give it one action".into());
                return None;
            }
        }
        let action = RawAction::take(actions)?;
        if matches!(action, RawAction::Include(_) | RawAction::ExpectOutput(_)) {
            self.error(node.span, format!("{what} cannot be an include or an expect-output")).hint =
                Some("use `exec`, `shell`, `manual` or a file action".into());
            return None;
        }
        let timeout = raw.timeout.and_then(|t| self.duration(&t, "timeout"));
        // The undo runs after the step: it may read the step's own results.
        let mut steps = scope.steps.clone();
        steps.insert(id.to_owned(), StepShape::Plain { command: true, captures: None });
        let inner = Scope { inputs: scope.inputs, vars: scope.vars, steps: &steps, all_steps: scope.all_steps };
        let (action, _) = self.action(action, &inner, None)?;
        Some(Undo { action, timeout, loc: self.loc(node.span) })
    }

    /// A `when` or `that`; `None` when it does not compile (the error is recorded, and the
    /// runbook does not load).
    fn condition(&mut self, raw: Sp<model::Scalar>, scope: &Scope) -> Option<Condition> {
        match raw.value {
            model::Scalar::Bool(b) => Some(Condition::Const(b)),
            model::Scalar::Text(t) => {
                // `when: '{{ x }}'` is a common way to write the expression `x`.
                let trimmed = t.trim();
                let text = match trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
                    Some(inner) if !inner.contains("{{") => inner.trim().to_string(),
                    _ => t,
                };
                self.expression(text, raw.span, scope)
            }
        }
    }

    fn duration(&mut self, raw: &Sp<String>, what: &str) -> Option<Duration> {
        match humantime::parse_duration(raw.value.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(raw.span, format!("invalid `{what}` `{}`: {e}", raw.value)).hint =
                    Some("write a duration such as `30s`, `5m` or `1h 30m`".into());
                None
            }
        }
    }

    fn tpl(&mut self, raw: Sp<String>, scope: &Scope) -> Tpl {
        self.template(raw.value, raw.span, scope)
    }

    fn action(&mut self, raw: RawAction, scope: &Scope, last_command: Option<&str>) -> Option<(Action, StepShape)> {
        let action = match raw {
            RawAction::Copy(t) => Action::Copy(self.transfer(t.value, scope)),
            RawAction::Rename(t) => Action::Rename(self.transfer(t.value, scope)),
            RawAction::Cd(p) => Action::Cd(self.path(p, scope)),
            RawAction::Mkdir(p) => Action::Mkdir(self.path(p, scope)),
            RawAction::Fail(m) => Action::Fail(self.tpl(m, scope)),
            RawAction::Log(m) => Action::Log(self.tpl(m, scope)),
            RawAction::Exec(e) => Action::Exec(self.exec(e.value, scope)),
            RawAction::Shell(s) => Action::Shell(self.shell(s, scope)),
            RawAction::ExpectOutput(x) => Action::ExpectOutput(self.expect_output(x, scope, last_command)?),
            RawAction::Remove(r) => {
                let span = r.span;
                let (path, recursive) = match r.value {
                    model::RemoveAction::Path(p) => (Sp { value: p, span }, false),
                    model::RemoveAction::Full(f) => (f.path, f.recursive),
                };
                Action::Remove { path: self.path(path, scope), recursive }
            }
            RawAction::Write(w) => {
                let w = w.value;
                Action::Write {
                    path: self.path(w.path, scope),
                    content: self.tpl(w.content, scope),
                    overwrite: w.overwrite,
                }
            }
            RawAction::Assert(a) => Action::Assert(self.assert(a, scope)),
            RawAction::Manual(m) => {
                let span = m.span;
                let (instructions, confirm) = match m.value {
                    model::ManualAction::Text(t) => (Sp { value: t, span }, true),
                    model::ManualAction::Full(f) => (f.instructions, f.confirm),
                };
                Action::Manual { instructions: self.tpl(instructions, scope), confirm }
            }
            RawAction::Include(inc) => return self.include(inc, scope),
        };
        let command = matches!(action, Action::Exec(_) | Action::Shell(_));
        let captures = action.capture_names();
        Some((action, StepShape::Plain { command, captures }))
    }

    fn exec(&mut self, raw: model::ExecAction, scope: &Scope) -> Exec {
        let full = match raw {
            model::ExecAction::List(mut items) => {
                let program = items.remove(0);
                model::ExecFull {
                    program,
                    args: items,
                    env: IndexMap::new(),
                    stdin: None,
                    encoding: None,
                    read_only: false,
                    idempotent: false,
                    expect: None,
                }
            }
            model::ExecAction::Full(full) => *full,
        };
        let encoding = match full.encoding {
            Some(name) if template::is_template(&name.value) => Encoding::Template(self.tpl(name, scope)),
            Some(name) => match Encoding::for_label(&name.value) {
                Some(enc) => Encoding::Fixed(enc),
                None => {
                    self.error(name.span, format!("unknown encoding `{}`", name.value)).hint =
                        Some(ENCODING_HINT.into());
                    Encoding::Fixed(encoding_rs::UTF_8)
                }
            },
            None => Encoding::Fixed(encoding_rs::UTF_8),
        };
        let expect = full.expect.map(|x| self.expect(x.value, x.span, scope));
        Exec {
            program: self.tpl(full.program, scope),
            args: full.args.into_iter().map(|a| self.tpl(a, scope)).collect(),
            env: full.env.into_iter().map(|(k, v)| (k, self.tpl(v, scope))).collect(),
            stdin: full.stdin.map(|s| self.tpl(s, scope)),
            encoding,
            read_only: full.read_only,
            idempotent: full.idempotent,
            expect,
        }
    }

    fn shell(&mut self, raw: Sp<model::ShellAction>, scope: &Scope) -> Shell {
        let span = raw.span;
        let (script, shell, idempotent, expect) = match raw.value {
            model::ShellAction::Script(text) => (Sp { value: text, span }, None, false, None),
            model::ShellAction::Full(f) => (f.script, f.shell, f.idempotent, f.expect),
        };
        let script = self.tpl(script, scope);
        self.warn_secret_in_shell(&script, scope);
        Shell {
            script,
            shell: shell.map(|s| self.tpl(s, scope)),
            idempotent,
            expect: expect.map(|x| self.expect(x.value, x.span, scope)),
        }
    }

    /// `expect-output`: the command step it checks must be an earlier exec or shell step.
    fn expect_output(
        &mut self,
        raw: Sp<model::ExpectOutputAction>,
        scope: &Scope,
        last_command: Option<&str>,
    ) -> Option<ExpectOutput> {
        let span = raw.span;
        let (step, expect) = raw.value.split();
        let target = match step {
            Some(s) => match scope.steps.get(&s.value) {
                Some(StepShape::Plain { command: true, .. }) => s.value,
                Some(_) => {
                    self.error(s.span, format!("`{}` is not an exec or shell step", s.value)).hint =
                        Some("expect-output checks the output of a command step".into());
                    return None;
                }
                None => {
                    let msg = if scope.all_steps.contains_key(&s.value) {
                        format!("step `{}` runs later than this check", s.value)
                    } else {
                        format!("unknown step `{}`", s.value)
                    };
                    self.error(s.span, msg).hint = did_you_mean(&s.value, scope.steps.keys().map(String::as_str))
                        .map(|d| format!("did you mean `{d}`?"));
                    return None;
                }
            },
            None => match last_command {
                Some(c) => c.to_owned(),
                None => {
                    self.error(span, "expect-output has no earlier exec or shell step to check").hint =
                        Some("put an `exec` or `shell` step before it, or use `exec.expect`".into());
                    return None;
                }
            },
        };
        Some(ExpectOutput { step: target, expect: self.expect(expect, span, scope) })
    }

    fn assert(&mut self, raw: Sp<model::AssertAction>, scope: &Scope) -> Assert {
        let (span, a) = (raw.span, raw.value);
        if a.exists.is_none() && a.missing.is_none() && a.file.is_none() && a.dir.is_none() && a.that.is_none() {
            self.error(span, "assert has nothing to check").hint =
                Some("give at least one of `exists`, `missing`, `file`, `dir`, `that`".into());
        }
        Assert {
            exists: a.exists.map(|p| self.path(p, scope)),
            missing: a.missing.map(|p| self.path(p, scope)),
            file: a.file.map(|p| self.path(p, scope)),
            dir: a.dir.map(|p| self.path(p, scope)),
            that: a.that.and_then(|t| self.condition(t, scope)),
            message: a.message.map(|m| self.tpl(m, scope)),
        }
    }

    fn transfer(&mut self, raw: model::TransferAction, scope: &Scope) -> Transfer {
        Transfer { from: self.path(raw.from, scope), to: self.path(raw.to, scope), overwrite: raw.overwrite }
    }

    /// A path: a template that must not be empty as written (one that renders empty is caught
    /// when it renders).
    fn path(&mut self, raw: Sp<String>, scope: &Scope) -> Tpl {
        if raw.value.trim().is_empty() {
            self.error(raw.span, "an empty path").hint = Some(
                "give a file or folder path (relative paths start at the working folder, `.` is the folder itself)"
                    .into(),
            );
        }
        self.tpl(raw, scope)
    }

    fn expect(&mut self, raw: model::Expectation, span: Span, scope: &Scope) -> Expect {
        let contains = raw.contains.map(|c| self.tpl_list(c, scope)).unwrap_or_default();
        let not_contains = raw.not_contains.map(|c| self.tpl_list(c, scope)).unwrap_or_default();
        let matches = raw.matches.and_then(|m| {
            if template::is_template(&m.value) {
                return Some(Matcher::Template(self.tpl(m, scope)));
            }
            match Regex::new(&m.value) {
                Ok(r) => Some(Matcher::Fixed(r)),
                Err(e) => {
                    self.error(m.span, format!("invalid regular expression: {}", regex_reason(&e))).hint =
                        Some("`matches` takes a Rust regex; escape special characters such as `(` with `\\`".into());
                    None
                }
            }
        });
        if contains.is_empty() && not_contains.is_empty() && matches.is_none() && raw.exit_code.is_none() {
            self.error(span, "this expectation checks nothing").hint =
                Some("give at least one of `contains`, `not-contains`, `matches`, `exit-code`".into());
        }
        Expect {
            contains,
            not_contains,
            matches,
            stream: raw.stream.map_or(Stream::Any, |s| s.value),
            exit_codes: raw.exit_code.map(|c| c.value.into_vec()),
            loc: self.loc(span),
        }
    }

    fn tpl_list(&mut self, raw: Sp<model::OneOrMany>, scope: &Scope) -> Vec<Tpl> {
        let span = raw.span;
        raw.value.into_vec().into_iter().map(|text| self.template(text, span, scope)).collect()
    }

    fn warn_secret_in_shell(&mut self, script: &Tpl, scope: &Scope) {
        let Ok(names) = template::analyze(&script.text) else {
            return;
        };
        for name in names {
            let root = name.split('.').next().unwrap_or_default();
            if scope.inputs.get(root).is_some_and(|i| i.secret) {
                self.push(
                    Diagnostic::warning(format!("the secret input `{root}` is rendered into a shell script"))
                        .at(script.loc.clone())
                        .hint("a shell may echo or log its script; pass the secret as an `exec` argument or `stdin` instead"),
                );
            }
        }
    }

    fn include(&mut self, raw: Sp<model::IncludeAction>, scope: &Scope) -> Option<(Action, StepShape)> {
        let span = raw.span;
        let raw = raw.value;
        let base = self.source.path.parent().unwrap_or(Path::new("."));
        let path = base.join(&raw.runbook.value);
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if let Some(pos) = self.loader.stack.iter().position(|p| *p == canonical) {
            let chain: Vec<String> = self.loader.stack[pos..]
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| relative_display(p))
                .collect();
            self.error(raw.runbook.span, format!("include cycle: {}", chain.join(" → "))).hint =
                Some("a runbook cannot include itself, directly or through others".into());
            return None;
        }
        if self.loader.stack.len() >= MAX_INCLUDE_DEPTH {
            self.error(raw.runbook.span, format!("includes nest deeper than {MAX_INCLUDE_DEPTH} levels"));
            return None;
        }
        let at = self.loc(raw.runbook.span);
        let inner = self.loader.load_file(&path, Some(&at))?;
        let mut with = IndexMap::new();
        for (key, value) in raw.with {
            if !inner.inputs.contains_key(&key) {
                let hint = did_you_mean(&key, inner.inputs.keys().map(String::as_str)).map_or_else(
                    || format!("its inputs are: {}", inner.inputs.keys().cloned().collect::<Vec<_>>().join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                self.error(value.span, format!("`{}` has no input `{key}`", inner.name)).hint = Some(hint);
                continue;
            }
            with.insert(key, self.tpl(value, scope));
        }
        for input in inner.inputs.values() {
            if input.required() && !with.contains_key(&input.name) {
                self.error(span, format!("the included runbook `{}` needs input `{}`", inner.name, input.name)).hint =
                    Some(format!("add `{}: ...` under `with:`", input.name));
            }
        }
        let shape = StepShape::Include(
            inner
                .steps
                .iter()
                .map(|s| {
                    let shape = StepShape::Plain { command: s.is_command(), captures: s.action.capture_names() };
                    (s.id.clone(), shape)
                })
                .collect(),
        );
        Some((Action::Include(Include { runbook: inner, with }), shape))
    }
}

/// The one action of a step (the loader has already checked that there is exactly one).
enum RawAction {
    Copy(Sp<model::TransferAction>),
    Rename(Sp<model::TransferAction>),
    Cd(Sp<String>),
    Exec(Sp<model::ExecAction>),
    Shell(Sp<model::ShellAction>),
    ExpectOutput(Sp<model::ExpectOutputAction>),
    Mkdir(Sp<String>),
    Remove(Sp<model::RemoveAction>),
    Write(Sp<model::WriteAction>),
    Assert(Sp<model::AssertAction>),
    Fail(Sp<String>),
    Log(Sp<String>),
    Manual(Sp<model::ManualAction>),
    Include(Sp<model::IncludeAction>),
}

impl RawAction {
    fn take(mut all: Vec<RawAction>) -> Option<RawAction> {
        all.pop()
    }
}

fn raw_action_fields(raw: &mut model::RawStep) -> Vec<RawAction> {
    let mut out = Vec::new();
    macro_rules! take {
        ($($field:ident => $variant:ident),*) => {$(
            if let Some(v) = raw.$field.take() {
                out.push(RawAction::$variant(v));
            }
        )*};
    }
    take!(copy => Copy, rename => Rename, cd => Cd, exec => Exec, shell => Shell, expect_output => ExpectOutput,
          mkdir => Mkdir, remove => Remove, write => Write, assert => Assert, fail => Fail, log => Log,
          manual => Manual, include => Include);
    out
}

/// A path for messages: relative to the current folder when it is below it.
fn relative_display(path: &Path) -> String {
    let cwd = std::env::current_dir().ok().and_then(|c| std::fs::canonicalize(c).ok());
    match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) => crate::format::source::display_path(rel),
        None => crate::format::source::display_path(path),
    }
}
