//! Templates in a runbook: their syntax, and every name they use checked against what is
//! defined at that point (inputs, earlier vars, earlier steps, built-ins).

use std::collections::BTreeSet;

use super::{FileLoader, Scope, StepShape};
use crate::compile::runbook::{Condition, Tpl};
use crate::compile::template::Compiled;
use crate::compile::template::{self, BUILTIN_NAMES, Callable, STEP_FIELDS};
use crate::format::diagnostic::did_you_mean;
use crate::format::source::{Source, Span};
use regex::Regex;
use std::sync::LazyLock;

impl FileLoader<'_, '_> {
    /// Checks a template's syntax and names; always returns it (errors are recorded).
    /// Compiles a template into this runbook's templates, checking its syntax and names; always
    /// returns it (errors are recorded).
    pub(super) fn template(&mut self, text: String, span: Span, scope: &Scope) -> Tpl {
        let mut tpl = Tpl { text, loc: self.loc(span), compiled: None };
        if !template::is_template(&tpl.text) {
            return tpl;
        }
        match self.templates.add(&tpl.text) {
            Ok((name, names)) => {
                tpl.compiled = Some(name);
                self.check_names(&tpl, &names, scope);
                self.check_callables(&tpl, false);
            }
            Err(e) => self.template_error(&tpl, &e),
        }
        tpl
    }

    /// Compiles an expression (`when`, `that`), checking its syntax and names.
    pub(super) fn expression(&mut self, text: String, span: Span, scope: &Scope) -> Option<Condition> {
        let tpl = Tpl { text, loc: self.loc(span), compiled: None };
        match Compiled::new(&tpl.text) {
            Ok((compiled, names)) => {
                self.check_names(&tpl, &names, scope);
                self.check_callables(&tpl, true);
                Some(Condition::Expr { tpl, compiled })
            }
            Err(e) => {
                self.template_error(&tpl, &e);
                None
            }
        }
    }

    fn template_error(&mut self, tpl: &Tpl, e: &template::TemplateError) {
        let span =
            e.range.as_ref().map_or(tpl.loc.span, |r| span_in_template(&self.source, tpl, r.start, r.len().max(1)));
        self.error(span, e.message.clone()).hint = Some(
            "templates use minijinja syntax: `{{ name }}`, `{{ path_join(a, b) }}`, `{% if x %}...{% endif %}`".into(),
        );
    }

    fn check_names(&mut self, tpl: &Tpl, names: &BTreeSet<String>, scope: &Scope) {
        for dotted in names {
            let parts: Vec<&str> = dotted.split('.').collect();
            let root = parts[0];
            let at = |this: &Self, needle: &str| {
                tpl.text.find(needle).map_or(tpl.loc.span, |i| span_in_template(&this.source, tpl, i, needle.len()))
            };
            if scope.inputs.contains_key(root) || scope.vars.iter().any(|v| v == root) {
                self.reads.insert(root.to_owned());
                continue;
            }
            if self.broken_names.contains(root) {
                continue;
            }
            if self.all_vars.iter().any(|v| v == root) {
                let span = at(self, root);
                self.error(span, format!("the var `{root}` is defined later")).hint =
                    Some("vars are rendered in order: move it above the place that uses it".into());
                continue;
            }
            if template::is_engine_global(root) {
                continue;
            }
            if BUILTIN_NAMES.contains(&root) {
                if root == "run"
                    && let Some(field) = parts.get(1)
                    && !["id", "dry_run"].contains(field)
                {
                    let span = at(self, dotted);
                    self.error(span, format!("`run` has no field `{field}`")).hint =
                        Some("`run` offers `run.id` and `run.dry_run`".into());
                }
                continue;
            }
            if root == "steps" {
                self.check_step_ref(tpl, &parts, scope, at(self, dotted));
                continue;
            }
            let span = at(self, root);
            // Called, it is a function that does not exist.
            if parts.len() == 1 && called(&tpl.text, root) {
                let hint = match did_you_mean(root, Callable::Function.candidates()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the functions: {}", Callable::Function.candidates().join(", ")),
                };
                self.error(span, format!("unknown function `{root}`")).hint = Some(hint);
                continue;
            }
            let known: Vec<&str> = scope
                .inputs
                .keys()
                .map(String::as_str)
                .chain(scope.vars.iter().map(String::as_str))
                .chain(BUILTIN_NAMES.iter().copied())
                .collect();
            let hint = match did_you_mean(root, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "declare it under `inputs:` or `vars:`".to_string(),
            };
            self.error(span, format!("undefined name `{root}`")).hint = Some(hint);
        }
    }

    /// Filters, tests and functions a template calls by name must exist: minijinja would find
    /// out only when the step renders, in the middle of a run.
    fn check_callables(&mut self, tpl: &Tpl, expression: bool) {
        for (kind, name, at) in callables(&tpl.text, expression) {
            // An unknown function is an undefined name too: `check_names` reports it.
            if kind == Callable::Function || kind.exists(name) {
                continue;
            }
            let span = span_in_template(&self.source, tpl, at, name.len());
            let hint = match did_you_mean(name, kind.candidates()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the {}s: {}", kind.word(), kind.candidates().join(", ")),
            };
            self.error(span, format!("unknown {} `{name}`", kind.word())).hint = Some(hint);
        }
    }

    fn check_step_ref(&mut self, _tpl: &Tpl, parts: &[&str], scope: &Scope, span: Span) {
        let Some(id) = parts.get(1) else { return };
        self.refs.insert((*id).to_owned());
        let Some(shape) = scope.steps.get(*id) else {
            let msg = if let Some(index) = scope.all_steps.get(*id) {
                format!("`steps.{id}` refers to step {} which runs later", index + 1)
            } else {
                format!("`steps.{id}` refers to an unknown step")
            };
            let hint = if scope.all_steps.contains_key(*id) {
                "a step can only use the results of steps before it".to_string()
            } else {
                did_you_mean(id, scope.steps.keys().map(String::as_str))
                    .map_or_else(|| "name an earlier step's id".to_string(), |s| format!("did you mean `steps.{s}`?"))
            };
            self.error(span, msg).hint = Some(hint);
            return;
        };
        let mut shape = shape;
        let mut rest = &parts[2..];
        loop {
            match shape {
                StepShape::Broken => return,
                StepShape::Include(inner) => {
                    let Some(sub) = rest.first() else { return };
                    match inner.get(*sub) {
                        Some(s) => {
                            shape = s;
                            rest = &rest[1..];
                        }
                        None => {
                            self.error(span, format!("the included runbook has no step `{sub}`")).hint =
                                did_you_mean(sub, inner.keys().map(String::as_str))
                                    .map(|s| format!("did you mean `{s}`?"));
                            return;
                        }
                    }
                }
                StepShape::Plain { captures, .. } => {
                    if let (Some(&"captures"), Some(name), Some(names)) = (rest.first(), rest.get(1), captures)
                        && !names.iter().any(|n| n == name)
                    {
                        let id = parts[1..parts.len() - rest.len()].join(".");
                        let hint = if names.is_empty() {
                            format!(
                                "`{id}` captures nothing: give its check a `matches` regex with a named group, `(?P<{name}>...)`"
                            )
                        } else {
                            did_you_mean(name, names.iter().map(String::as_str)).map_or_else(
                                || format!("its named groups are: {}", names.join(", ")),
                                |s| format!("did you mean `{s}`?"),
                            )
                        };
                        self.error(span, format!("step `{id}` has no capture `{name}`")).hint = Some(hint);
                        return;
                    }
                    if let Some(field) = rest.first()
                        && !STEP_FIELDS.contains(field)
                    {
                        let hint = did_you_mean(field, STEP_FIELDS.iter().copied()).map_or_else(
                            || format!("a step offers {}", STEP_FIELDS.join(", ")),
                            |s| format!("did you mean `{s}`?"),
                        );
                        self.error(span, format!("a step has no field `{field}`")).hint = Some(hint);
                    }
                    return;
                }
            }
        }
    }
}

/// The filters, tests and functions a template calls, each with its offset in the text. Only
/// code is read (inside `{{ }}` and `{% %}`, or all of an expression), with string literals
/// blanked out; methods (`x.items()`) and macros the template defines are not names to check.
fn callables(text: &str, expression: bool) -> Vec<(Callable, &str, usize)> {
    static FILTER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?-u)\|\s*([A-Za-z_][A-Za-z0-9_]*)").expect("valid"));
    static TEST: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?-u)\bis\s+(?:not\s+)?([A-Za-z_][A-Za-z0-9_]*)").expect("valid"));
    static CALL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?-u)\b([A-Za-z_][A-Za-z0-9_]*)\s*\(").expect("valid"));
    static MACRO: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?-u)\bmacro\s+([A-Za-z_][A-Za-z0-9_]*)").expect("valid"));
    const KEYWORDS: &[&str] =
        &["and", "or", "not", "in", "is", "if", "else", "elif", "for", "recursive", "macro", "call"];
    let code = code_only(text, expression);
    let macros: Vec<&str> = MACRO.captures_iter(&code).filter_map(|c| c.get(1)).map(|m| &text[m.range()]).collect();
    let mut out = Vec::new();
    for (kind, re) in [(Callable::Filter, &*FILTER), (Callable::Test, &*TEST), (Callable::Function, &*CALL)] {
        for m in re.captures_iter(&code).filter_map(|c| c.get(1)) {
            let name = &text[m.range()];
            let method = code[..m.start()].trim_end().ends_with('.');
            let skip = match kind {
                Callable::Function => method || KEYWORDS.contains(&name) || macros.contains(&name),
                Callable::Test => KEYWORDS.contains(&name),
                Callable::Filter => false,
            };
            if !skip {
                out.push((kind, name, m.start()));
            }
        }
    }
    out.sort_by_key(|(_, _, at)| *at);
    out
}

/// Whether the template calls `name` as a function.
fn called(text: &str, name: &str) -> bool {
    let expression = !template::is_template(text);
    callables(text, expression).iter().any(|(kind, n, _)| *kind == Callable::Function && *n == name)
}

/// `text` with everything but code blanked out (same length, same offsets): text outside the
/// delimiters, comments, and the inside of string literals.
fn code_only(text: &str, expression: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = vec![b' '; bytes.len()];
    let mut i = 0;
    let mut in_code = expression;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        if !in_code {
            if b == b'{' && matches!(next, Some(b'{' | b'%')) {
                in_code = true;
                i += 2;
            } else if b == b'{' && next == Some(b'#') {
                // A comment: skipped to its end.
                i = text[i..].find("#}").map_or(bytes.len(), |e| i + e + 2);
            } else {
                i += 1;
            }
            continue;
        }
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if !expression && matches!(b, b'}' | b'%') && next == Some(b'}') => {
                in_code = false;
                i += 1;
            }
            None => out[i] = if b.is_ascii() { b } else { b' ' },
        }
        i += 1;
    }
    // Only ASCII bytes were copied, so the result is valid UTF-8 of the same length.
    String::from_utf8(out).unwrap_or_default()
}

/// Maps a byte range inside a template's text to the file, when the text was written on one line
/// as-is or in quotes; otherwise the whole value.
fn span_in_template(source: &Source, tpl: &Tpl, start: usize, len: usize) -> Span {
    let node = tpl.loc.span;
    let raw = source.text.get(node.offset..).unwrap_or("");
    let prefix = tpl.text.get(..start).unwrap_or("");
    let quoted = raw.starts_with(['\'', '"']);
    let body = if quoted { &raw[1..] } else { raw };
    if !prefix.contains('\n') && body.starts_with(prefix) {
        Span::new(node.offset + usize::from(quoted) + start, len)
    } else {
        node
    }
}
