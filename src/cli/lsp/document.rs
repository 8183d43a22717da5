//! One open runbook as the editor holds it: its text, `validate`'s diagnostics for it, and the
//! names it declares (inputs, vars, step ids, each with where it is written), read from the
//! YAML tree so that hover, completion and go-to-definition work while the file is still
//! being typed (the last tree that parsed is kept).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::compile::template::{BUILTIN_NAMES, Callable, STEP_FIELDS};
use crate::format::diagnostic::{Diagnostic, Severity};
use crate::format::source::Span;
use crate::format::yaml::{self, Node, NodeKind};

/// An input as declared.
#[derive(Debug, Clone)]
pub struct InputInfo {
    pub name: String,
    pub key: Span,
    pub description: Option<String>,
    pub ty: String,
    pub default: Option<String>,
    pub secret: bool,
    pub choices: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct VarInfo {
    pub name: String,
    pub key: Span,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct StepInfo {
    pub id: String,
    /// The id's value, where go-to-definition lands.
    pub id_span: Span,
    /// The whole step.
    pub span: Span,
    pub name: Option<String>,
    /// Its action key and value as written, e.g. `copy: { from: a, to: b }`.
    pub action: Option<String>,
}

/// What the file declares.
#[derive(Debug, Clone, Default)]
pub struct Outline {
    pub inputs: Vec<InputInfo>,
    pub vars: Vec<VarInfo>,
    pub steps: Vec<StepInfo>,
    /// The root node, for key paths.
    pub root: Option<Node>,
}

pub struct Document {
    pub path: PathBuf,
    pub text: String,
    pub lines: LineIndex,
    pub outline: Outline,
}

impl Document {
    pub fn new(path: PathBuf, text: String, previous: Option<Outline>) -> Document {
        let lines = LineIndex::new(&text);
        let outline = match yaml::parse(&text) {
            Ok(root) => outline(&text, root),
            Err(_) => previous.unwrap_or_default(),
        };
        Document { path, text, lines, outline }
    }

    /// `validate`'s diagnostics, as it reports them for this file.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        if crate::compile::testfile::is_test_file(&self.path) {
            return crate::compile::testfile::diagnostics(&self.path, self.text.clone());
        }
        crate::compile::load_text(&self.path, self.text.clone()).diagnostics
    }

    /// Each diagnostic as the protocol has it: those of an included file are shown at the top,
    /// naming where they are.
    pub fn lsp_diagnostics(&self) -> Vec<Value> {
        self.diagnostics()
            .iter()
            .map(|d| {
                let (range, message) = match &d.location {
                    Some(at) if same_file(&at.source.path, &self.path) => {
                        (self.range(at.span.offset, at.span.offset + at.span.len.max(1)), d.message.clone())
                    }
                    Some(at) => (self.range(0, 0), format!("{}: {}", at.position(), d.message)),
                    None => (self.range(0, 0), d.message.clone()),
                };
                let message = match &d.hint {
                    Some(h) => format!("{message}\nhint: {h}"),
                    None => message,
                };
                let severity = if d.severity == Severity::Error { 1 } else { 2 };
                serde_json::json!({"range": range, "severity": severity, "source": "runbook", "message": message})
            })
            .collect()
    }

    pub fn range(&self, start: usize, end: usize) -> Value {
        serde_json::json!({"start": self.lines.position(&self.text, start), "end": self.lines.position(&self.text, end)})
    }

    /// What is under the cursor.
    pub fn target(&self, offset: usize) -> Target {
        if self.code_at(offset).is_some() {
            let (start, word) = word_at(&self.text, offset);
            if !word.is_empty() {
                return Target::Name { start, dotted: word.to_owned() };
            }
        }
        match &self.outline.root {
            Some(root) => match key_path(root, offset) {
                Some(path) => Target::Key(path),
                None => Target::Nothing,
            },
            None => Target::Nothing,
        }
    }

    /// Whether `offset` is in template code: inside `{{ }}` / `{% %}`, or in the value of a
    /// `when` or `that` (an expression throughout). Returns where the code starts.
    pub fn code_at(&self, offset: usize) -> Option<usize> {
        let root = self.outline.root.as_ref();
        let value = root.and_then(|r| value_at(r, offset));
        let line_start = self.text[..offset.min(self.text.len())].rfind('\n').map_or(0, |i| i + 1);
        if let Some((key, node)) = &value
            && matches!(key.as_str(), "when" | "that")
            && node.span.offset <= offset
        {
            return Some(node.span.offset);
        }
        // Where the scalar began (for block scalars spanning lines), or else the line.
        let from = value.map_or(line_start, |(_, n)| n.span.offset.min(offset));
        let before = &self.text[from..offset.min(self.text.len())];
        let open = before.rfind("{{").into_iter().chain(before.rfind("{%")).max()?;
        let close = before.rfind("}}").into_iter().chain(before.rfind("%}")).max();
        (close.is_none_or(|c| c < open)).then_some(from + open + 2)
    }

    /// Names to complete at `offset`, with their kind and detail.
    pub fn completions(&self, offset: usize) -> Vec<Completion> {
        let Some(code_start) = self.code_at(offset) else { return Vec::new() };
        let start = word_start(&self.text, offset);
        let word = &self.text[start..offset.min(self.text.len())];
        let before = self.text[code_start.min(start)..start].trim_end();
        let here =
            self.outline.steps.iter().position(|s| s.span.offset <= offset && offset <= s.span.offset + s.span.len);
        let parts: Vec<&str> = word.split('.').collect();
        let mut out = Vec::new();
        match parts.as_slice() {
            ["steps", _] => {
                let earlier = &self.outline.steps[..here.unwrap_or(self.outline.steps.len())];
                out.extend(earlier.iter().map(|s| Completion {
                    label: s.id.clone(),
                    kind: CompletionKind::Step,
                    detail: s.name.clone().or_else(|| s.action.clone()).unwrap_or_default(),
                }));
            }
            ["steps", _, _] => {
                out.extend(STEP_FIELDS.iter().map(|f| Completion {
                    label: (*f).to_string(),
                    kind: CompletionKind::Field,
                    detail: step_field_doc(f).to_string(),
                }));
            }
            [_] if before.ends_with('|') => {
                out.extend(Callable::Filter.candidates().into_iter().map(|f| Completion {
                    label: f.to_string(),
                    kind: CompletionKind::Function,
                    detail: "filter".into(),
                }));
            }
            [_] => {
                out.extend(self.outline.inputs.iter().map(|i| Completion {
                    label: i.name.clone(),
                    kind: CompletionKind::Input,
                    detail: input_summary(i),
                }));
                out.extend(self.outline.vars.iter().map(|v| Completion {
                    label: v.name.clone(),
                    kind: CompletionKind::Var,
                    detail: format!("var = {}", v.value),
                }));
                out.push(Completion {
                    label: "steps".into(),
                    kind: CompletionKind::Field,
                    detail: "the results of earlier steps: steps.<id>.stdout, .exit_code, .captures, ...".into(),
                });
                out.extend(BUILTIN_NAMES.iter().map(|b| Completion {
                    label: (*b).to_string(),
                    kind: CompletionKind::Function,
                    detail: builtin_doc(b).to_string(),
                }));
            }
            _ => {}
        }
        out
    }

    /// Where a name is declared: an input's or var's key, a step's id.
    pub fn definition(&self, dotted: &str) -> Option<Span> {
        let parts: Vec<&str> = dotted.split('.').collect();
        match parts.as_slice() {
            ["steps", id, ..] => self.outline.steps.iter().find(|s| s.id == *id).map(|s| s.id_span),
            [root, ..] => {
                let input = self.outline.inputs.iter().find(|i| i.name == *root).map(|i| i.key);
                input.or_else(|| self.outline.vars.iter().find(|v| v.name == *root).map(|v| v.key))
            }
            [] => None,
        }
    }

    /// Markdown for a name in a template.
    pub fn hover_name(&self, dotted: &str) -> Option<String> {
        let parts: Vec<&str> = dotted.split('.').collect();
        if let ["steps", id, rest @ ..] = parts.as_slice() {
            let step = self.outline.steps.iter().find(|s| s.id == *id)?;
            let mut text = format!("**step `{}`**", step.id);
            if let Some(name) = &step.name {
                text.push_str(&format!(": {name}"));
            }
            if let Some(action) = &step.action {
                text.push_str(&format!("\n\n```yaml\n{action}\n```"));
            }
            if let Some(field) = rest.first() {
                text.push_str(&format!("\n\n`{field}`: {}", step_field_doc(field)));
            }
            return Some(text);
        }
        let root = *parts.first()?;
        if let Some(i) = self.outline.inputs.iter().find(|i| i.name == root) {
            let mut text = format!("**input `{}`** ({})", i.name, input_summary(i));
            if let Some(d) = &i.description {
                text.push_str(&format!("\n\n{d}"));
            }
            return Some(text);
        }
        if let Some(v) = self.outline.vars.iter().find(|v| v.name == root) {
            return Some(format!("**var `{}`**\n\n```yaml\n{}: {}\n```", v.name, v.name, v.value));
        }
        if BUILTIN_NAMES.contains(&root) {
            return Some(format!("**`{root}`**: {}", builtin_doc(root)));
        }
        if Callable::Filter.exists(root) {
            return Some(format!("**filter `{root}`**"));
        }
        None
    }
}

/// What the cursor is on.
#[derive(Debug, PartialEq)]
pub enum Target {
    /// A (dotted) name in template code, starting at this offset.
    Name {
        start: usize,
        dotted: String,
    },
    /// A key of the YAML document: its path from the root (`steps`, `0`, `copy`, `from`).
    Key(Vec<String>),
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    Input,
    Var,
    Step,
    Field,
    Function,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    pub detail: String,
}

fn input_summary(i: &InputInfo) -> String {
    let mut parts = vec![i.ty.clone()];
    if i.secret {
        parts.push("secret".into());
    }
    match &i.default {
        // A secret's default is not repeated.
        Some(_) if i.secret => parts.push("has a default".into()),
        Some(d) => parts.push(format!("default: {d}")),
        None => parts.push("required".into()),
    }
    if !i.choices.is_empty() {
        parts.push(format!("choices: {}", i.choices.join(", ")));
    }
    parts.join(", ")
}

fn step_field_doc(field: &str) -> &'static str {
    match field {
        "stdout" => "what the command printed on standard output",
        "stderr" => "what the command printed on standard error",
        "exit_code" => "the command's exit code",
        "captures" => "named groups of its `matches` regex (a copy: `sha256`)",
        "status" => "`done`, `unchanged`, `skipped` or `failed`",
        _ => "",
    }
}

fn builtin_doc(name: &str) -> &'static str {
    match name {
        "env" => "the environment: `env.NAME`",
        "os" => "the system: `os.family` (`windows` or `unix`), `os.name`",
        "run" => "this run: `run.id`, `run.dry_run`",
        "exists" => "`exists(path)`: whether the path exists (in a plan, as earlier steps would leave it)",
        "is_file" => "`is_file(path)`: whether the path is a file",
        "is_dir" => "`is_dir(path)`: whether the path is a folder",
        "path_join" => "`path_join(a, b, ...)`: paths joined with the system's separator",
        _ => "",
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || std::fs::canonicalize(a).ok().zip(std::fs::canonicalize(b).ok()).is_some_and(|(x, y)| x == y)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn word_start(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text[..offset].char_indices().rev().take_while(|(_, c)| is_name_char(*c)).last().map_or(offset, |(i, _)| i)
}

/// The dotted name around `offset`, and where it starts.
fn word_at(text: &str, offset: usize) -> (usize, &str) {
    let start = word_start(text, offset);
    let end = text[start..].char_indices().find(|(_, c)| !is_name_char(*c)).map_or(text.len(), |(i, _)| start + i);
    (start, &text[start..end])
}

/// The names a file declares, and where.
fn outline(text: &str, root: Node) -> Outline {
    let mut out = Outline::default();
    if let Some(NodeKind::Map(inputs)) = root.get("inputs").map(|n| &n.kind) {
        for (k, v) in inputs {
            let Some(name) = k.scalar_text() else { continue };
            let field = |f: &str| v.get(f).and_then(Node::scalar_text);
            out.inputs.push(InputInfo {
                name,
                key: k.span,
                description: field("description"),
                ty: field("type").unwrap_or_else(|| "string".into()),
                default: v.get("default").map(|d| snippet(text, d.span)),
                secret: matches!(v.get("secret").map(|s| &s.kind), Some(NodeKind::Bool(true))),
                choices: match v.get("choices").map(|c| &c.kind) {
                    Some(NodeKind::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
                    _ => Vec::new(),
                },
            });
        }
    }
    if let Some(NodeKind::Map(vars)) = root.get("vars").map(|n| &n.kind) {
        for (k, v) in vars {
            let Some(name) = k.scalar_text() else { continue };
            out.vars.push(VarInfo { name, key: k.span, value: snippet(text, v.span) });
        }
    }
    if let Some(NodeKind::Seq(steps)) = root.get("steps").map(|n| &n.kind) {
        for step in steps {
            let Some(id_node) = step.get("id") else { continue };
            let Some(id) = id_node.scalar_text() else { continue };
            let action = step.as_map().and_then(|entries| {
                entries.iter().find(|(k, _)| k.as_str().is_some_and(|k| crate::format::model::ACTION_KEYS.contains(&k)))
            });
            out.steps.push(StepInfo {
                id,
                id_span: id_node.span,
                span: extent(step),
                name: step.get("name").and_then(Node::scalar_text),
                action: action.map(|(k, v)| format!("{}: {}", k.as_str().unwrap_or(""), snippet(text, v.span))),
            });
        }
    }
    out.root = Some(root);
    out
}

/// A node's text as written (its first lines).
fn snippet(text: &str, span: Span) -> String {
    let s = text.get(span.offset..span.offset + span.len).unwrap_or("").trim();
    let lines: Vec<&str> = s.lines().take(6).collect();
    lines.join("\n")
}

/// The path of keys (and list indexes) to the key under `offset`.
fn key_path(node: &Node, offset: usize) -> Option<Vec<String>> {
    match &node.kind {
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                if contains(k.span, offset) {
                    return Some(vec![k.scalar_text()?]);
                }
                if contains(extent(v), offset)
                    && let Some(mut rest) = key_path(v, offset)
                {
                    rest.insert(0, k.scalar_text()?);
                    return Some(rest);
                }
            }
            None
        }
        NodeKind::Seq(items) => items.iter().enumerate().find_map(|(i, item)| {
            let mut rest = key_path(item, offset)?;
            rest.insert(0, i.to_string());
            Some(rest)
        }),
        _ => None,
    }
}

/// The scalar value under `offset`, with the key it belongs to.
fn value_at(node: &Node, offset: usize) -> Option<(String, &Node)> {
    match &node.kind {
        NodeKind::Map(entries) => entries.iter().find_map(|(k, v)| match &v.kind {
            NodeKind::Map(_) | NodeKind::Seq(_) => value_at(v, offset),
            _ if contains(v.span, offset) => Some((k.scalar_text().unwrap_or_default(), v)),
            _ => None,
        }),
        NodeKind::Seq(items) => items.iter().find_map(|i| match &i.kind {
            NodeKind::Map(_) | NodeKind::Seq(_) => value_at(i, offset),
            _ if contains(i.span, offset) => Some((String::new(), i)),
            _ => None,
        }),
        _ => None,
    }
}

/// Where a node's text starts and ends: a collection's span covers only its start, so its end
/// is its last child's.
fn extent(node: &Node) -> Span {
    let end = match &node.kind {
        NodeKind::Map(entries) => entries.last().map(|(_, v)| extent(v)),
        NodeKind::Seq(items) => items.last().map(extent),
        _ => None,
    }
    .map_or(node.span.offset + node.span.len, |last| (last.offset + last.len).max(node.span.offset + node.span.len));
    Span::new(node.span.offset, end - node.span.offset)
}

fn contains(span: Span, offset: usize) -> bool {
    span.offset <= offset && offset <= span.offset + span.len
}

/// Byte offsets to and from the protocol's positions (lines, and UTF-16 units within a line).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub fn position(&self, text: &str, offset: usize) -> Value {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let character: usize = text[start..offset].chars().map(char::len_utf16).sum();
        serde_json::json!({"line": line, "character": character})
    }

    pub fn offset(&self, text: &str, line: usize, character: usize) -> usize {
        let Some(&start) = self.starts.get(line) else { return text.len() };
        let mut units = 0;
        for (i, c) in text[start..].char_indices() {
            if units >= character || c == '\n' {
                return start + i;
            }
            units += c.len_utf16();
        }
        text.len()
    }
}

/// A file path from a `file:` URI.
pub fn uri_to_path(uri: &str) -> PathBuf {
    let rest = uri.strip_prefix("file://").unwrap_or(uri);
    let mut bytes = Vec::with_capacity(rest.len());
    let raw = rest.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let Some(b) = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            bytes.push(b);
            i += 3;
            continue;
        }
        bytes.push(raw[i]);
        i += 1;
    }
    let path = String::from_utf8_lossy(&bytes).into_owned();
    // `file:///C:/x` on Windows.
    let path = match path.as_bytes() {
        [b'/', d, b':', ..] if d.is_ascii_alphabetic() && cfg!(windows) => path[1..].to_string(),
        _ => path,
    };
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RB: &str = "runbook: 1\nname: d\ninputs:\n  install_dir: { description: Where, type: path }\n  pw: { secret: true }\nvars:\n  pfx: '{{ install_dir }}/a.pfx'\nsteps:\n  - id: probe\n    exec: [tool]\n  - id: use\n    when: steps.probe.exit_code == 0\n    log: '{{ pfx }} {{ steps.probe.stdout }}'\n";

    fn doc() -> Document {
        Document::new(PathBuf::from("/nowhere/rb.yaml"), RB.into(), None)
    }

    #[test]
    fn positions_count_utf16_units() {
        let text = "a: 証明書\nb: 😀x\n";
        let idx = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(idx.position(text, x), serde_json::json!({"line": 1, "character": 5}));
        assert_eq!(idx.offset(text, 1, 5), x);
        assert_eq!(idx.offset(text, 0, 4), text.find('明').unwrap());
    }

    #[test]
    fn names_in_templates_and_expressions() {
        let d = doc();
        let at = |needle: &str| RB.find(needle).unwrap() + 1;
        assert_eq!(d.target(at("pfx }}")), Target::Name { start: RB.find("pfx }}").unwrap(), dotted: "pfx".into() });
        assert!(
            matches!(d.target(at("probe.exit_code")), Target::Name { dotted, .. } if dotted == "steps.probe.exit_code")
        );
        assert_eq!(d.target(RB.find("exec").unwrap()), Target::Key(vec!["steps".into(), "0".into(), "exec".into()]));
        assert_eq!(d.definition("steps.probe.stdout"), Some(d.outline.steps[0].id_span));
        assert_eq!(d.definition("install_dir").map(|s| &RB[s.offset..s.offset + s.len]), Some("install_dir"));
        assert!(d.hover_name("install_dir").unwrap().contains("(path, required)"));
        assert!(d.hover_name("pw").unwrap().contains("secret"));
    }

    #[test]
    fn completion_offers_names_inside_templates_only() {
        let text = RB.replace("{{ pfx }}", "{{ in }}");
        let d = Document::new(PathBuf::from("/nowhere/rb.yaml"), text.clone(), None);
        let labels = |offset| d.completions(offset).into_iter().map(|c| c.label).collect::<Vec<_>>();
        let inside = text.find("{{ in }}").unwrap() + 5;
        assert!(labels(inside).contains(&"install_dir".to_string()), "{:?}", labels(inside));
        assert!(labels(text.find("runbook").unwrap() + 2).is_empty());
        let text = RB.replace("steps.probe.stdout", "steps.");
        let d = Document::new(PathBuf::from("/nowhere/rb.yaml"), text.clone(), None);
        let after = text.find("steps. }}").unwrap() + 6;
        let ids: Vec<String> = d.completions(after).into_iter().map(|c| c.label).collect();
        assert_eq!(ids, ["probe"], "only earlier steps");
    }

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(uri_to_path("file:///tmp/a%20b/rb.yaml"), PathBuf::from("/tmp/a b/rb.yaml"));
    }
}
