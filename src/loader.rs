//! Reads a runbook file and checks everything that can be checked without running it, collecting
//! every problem (not just the first) as a [`Diagnostic`] pointing at file, line and column.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{self, InputType, Sp, Stream};
use crate::runbook::*;
use crate::source::{Located, Source, Span};
use crate::template::{self, BUILTIN_NAMES, STEP_FIELDS};
use crate::yaml::{self, DeError, Node, NodeKind};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
const MAX_INCLUDE_DEPTH: usize = 16;
pub const ENCODING_HINT: &str = "use a WHATWG encoding label such as `utf-8`, `shift_jis`, `utf-16le`, `windows-1252`";

/// The result of loading: a runbook when there were no errors, and every diagnostic (warnings
/// accompany a successful load too).
pub struct Loaded {
    pub runbook: Option<Arc<Runbook>>,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn load(path: &Path) -> Loaded {
    let mut diagnostics = Vec::new();
    let runbook = Loader { diags: &mut diagnostics, stack: Vec::new() }.load_file(path, None);
    let runbook = if diagnostics.iter().any(Diagnostic::is_error) { None } else { runbook };
    Loaded { runbook, diagnostics }
}

/// Reads a file as UTF-8 text with the limits every input file shares.
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let shown = crate::source::display_path(path);
    let meta = std::fs::metadata(path).map_err(|e| {
        Diagnostic::error(format!("cannot read {shown}: {}", crate::fsutil::io_reason(&e)))
            .hint("check the path; it is taken relative to the current folder")
    })?;
    if meta.is_dir() {
        return Err(Diagnostic::error(format!("{shown} is a folder, not a file")));
    }
    if !meta.is_file() {
        return Err(Diagnostic::error(format!("{shown} is not a regular file (a device, pipe or socket)"))
            .hint("give the path of a YAML file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(format!(
            "{shown} is {} bytes; files larger than {} MiB are refused",
            meta.len(),
            MAX_FILE_BYTES >> 20
        ))
        .hint("a runbook or input file this large is almost certainly not one; check the path"));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error(format!("cannot read {shown}: {}", crate::fsutil::io_reason(&e))))?;
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(located_byte_error(path, &bytes, pos, "this is not a text file (it contains a NUL byte)")
            .hint("runbooks and input files are UTF-8 YAML text"));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").map(<[u8]>::to_vec).unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|e| {
        let pos = e.utf8_error().valid_up_to();
        located_byte_error(path, e.as_bytes(), pos, "the file is not valid UTF-8")
            .hint("save the file as UTF-8 (not in a legacy code page such as Shift_JIS)")
    })
}

/// A diagnostic at a byte of a file that is not text: shown through a lossy copy of it.
fn located_byte_error(path: &Path, bytes: &[u8], pos: usize, message: &str) -> Diagnostic {
    let (line, col) = line_col_of_bytes(bytes, pos);
    let text = String::from_utf8_lossy(bytes).replace('\0', "\u{2400}");
    let source = Source::new(path, text);
    let offset = source.offset_of(line, col);
    Diagnostic::error(message).at(Located::new(&source, Span::new(offset, 1)))
}

fn line_col_of_bytes(bytes: &[u8], pos: usize) -> (usize, usize) {
    let before = &bytes[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z')) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_runbook_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '0'..='9'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

struct Loader<'d> {
    diags: &'d mut Vec<Diagnostic>,
    /// Canonical paths of the runbooks being loaded, outermost first (include cycles).
    stack: Vec<PathBuf>,
}

/// What templates in one place may name.
struct Scope<'a> {
    inputs: &'a IndexMap<String, InputDef>,
    vars: &'a [String],
    /// Earlier steps: id → what `steps.<id>` offers.
    steps: &'a IndexMap<String, StepShape>,
    /// All step ids, to tell "later" from "unknown".
    all_steps: &'a HashMap<String, usize>,
}

#[derive(Clone)]
enum StepShape {
    /// A step that did not load: references to it report nothing more.
    Broken,
    Plain {
        command: bool,
    },
    Include(IndexMap<String, StepShape>),
}

impl Loader<'_> {
    fn load_file(&mut self, path: &Path, included_at: Option<&Located>) -> Option<Arc<Runbook>> {
        let text = match read_text(path) {
            Ok(text) => text,
            Err(d) => {
                let d = match included_at {
                    Some(loc) => d.at(loc.clone()),
                    None => d,
                };
                self.diags.push(d);
                return None;
            }
        };
        let sha256 = sha256_hex(text.as_bytes());
        let source = Source::new(path, text);
        let root = match yaml::parse(&source.text) {
            Ok(node) => node,
            Err(e) => {
                let offset = source.offset_of(e.line, e.col);
                self.diags.push(
                    Diagnostic::error(format!("invalid YAML: {}", e.message))
                        .at(Located::new(&source, Span::new(offset, 1)))
                        .hint("fix the YAML syntax at this point (indentation, quotes, a missing `:`)"),
                );
                return None;
            }
        };
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.stack.push(canonical);
        let runbook = FileLoader {
            loader: self,
            source: Arc::clone(&source),
            refs: BTreeSet::new(),
            broken_names: BTreeSet::new(),
            all_vars: Vec::new(),
        }
        .runbook(&root, sha256);
        self.stack.pop();
        runbook.map(Arc::new)
    }
}

struct FileLoader<'l, 'd> {
    loader: &'l mut Loader<'d>,
    source: Arc<Source>,
    /// Step ids named by `steps.<id>` in the step being read.
    refs: BTreeSet<String>,
    /// Names declared by inputs or vars that did not load: using them reports nothing more.
    broken_names: BTreeSet<String>,
    /// Every var name, to tell "defined later" from "undefined".
    all_vars: Vec<String>,
}

impl FileLoader<'_, '_> {
    fn loc(&self, span: Span) -> Located {
        Located::new(&self.source, span)
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::error(message).at(self.loc(span));
        self.loader.diags.push(d);
        self.loader.diags.last_mut().expect("just pushed")
    }

    fn push(&mut self, d: Diagnostic) {
        self.loader.diags.push(d);
    }

    fn de_error(&mut self, e: DeError, fallback: Span, what: &str) {
        let span = e.span.unwrap_or(fallback);
        let message = e
            .message
            .replace("a sequence", "a list")
            .replace("found map", "found a mapping")
            .replace("expected a map", "expected a mapping")
            .replace("expected field identifier", "expected a key (text)")
            .replace("expected enum InputType", "expected one of string, path, int, bool, choice")
            .replace("struct ", "")
            .replace("expected u32", "expected a whole number, 0 or more")
            .replace("expected i32", "expected a whole number");
        let hint = e.hint.or_else(|| {
            message
                .contains("expected a boolean")
                .then(|| "write true or false (words such as yes/no/on/off are text here)".to_string())
        });
        let mut d = Diagnostic::error(format!("{what}: {message}")).at(self.loc(span));
        if let Some(hint) = hint {
            d = d.hint(hint);
        }
        self.push(d);
    }

    /// Reads a typed value; every unknown key and the first other error become diagnostics.
    fn read<'n, T: Deserialize<'n>>(&mut self, node: &'n Node, what: &str) -> Option<T> {
        let unknown = RefCell::new(Vec::new());
        let result = yaml::from_node::<T>(node, &unknown);
        for e in unknown.into_inner() {
            self.de_error(e, node.span, what);
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.de_error(e, node.span, what);
                None
            }
        }
    }

    fn runbook(&mut self, root: &Node, sha256: String) -> Option<Runbook> {
        let Some(entries) = root.as_map() else {
            self.error(root.span, format!("a runbook must be a mapping, but this file holds {}", root.describe()))
                .hint = Some("start the file with `runbook: 1`, `name: ...` and `steps: [...]`".into());
            return None;
        };
        let mut format_seen = false;
        let mut name = None;
        let mut title = None;
        let mut description = None;
        let mut inputs_node = None;
        let mut vars_node = None;
        let mut steps_node = None;
        for (key, value) in entries {
            let Some(k) = key.as_str() else {
                self.error(key.span, "keys at the top level must be strings");
                continue;
            };
            match k {
                "runbook" => {
                    format_seen = true;
                    match value.kind {
                        NodeKind::Int(1) => {}
                        NodeKind::Int(n) => {
                            self.error(value.span, format!("unsupported runbook format {n}")).hint =
                                Some("this version of runbook reads format 1: `runbook: 1`".into());
                        }
                        _ => {
                            self.error(
                                value.span,
                                format!("the format marker must be the number 1, not {}", value.describe()),
                            )
                            .hint = Some("write `runbook: 1`".into());
                        }
                    }
                }
                "name" => name = self.read::<Sp<String>>(value, "name"),
                "title" => title = self.read::<String>(value, "title"),
                "description" => description = self.read::<String>(value, "description"),
                "inputs" => inputs_node = Some(value),
                "vars" => vars_node = Some(value),
                "steps" => steps_node = Some(value),
                other => {
                    let hint = did_you_mean(other, model::TOP_LEVEL_KEYS.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("the top-level keys are: {}", model::TOP_LEVEL_KEYS.join(", ")));
                    self.error(key.span, format!("unknown key `{other}`")).hint = Some(hint);
                }
            }
        }
        if !format_seen {
            self.error(Span::new(0, 0), "missing the format marker `runbook: 1`").hint =
                Some("add `runbook: 1` as the first line, so the tool knows which format the file uses".into());
        }
        let name = match name {
            Some(n) if is_runbook_name(&n.value) => Some(n.value),
            Some(n) => {
                self.error(n.span, format!("invalid runbook name `{}`", n.value)).hint =
                    Some("use lowercase letters, digits and `-`, starting with a letter or digit".into());
                None
            }
            None => {
                if !entries.iter().any(|(k, _)| k.as_str() == Some("name")) {
                    self.error(Span::new(0, 0), "missing required key `name`").hint =
                        Some("add `name: my-runbook` (lowercase letters, digits and `-`)".into());
                }
                None
            }
        };

        let inputs = inputs_node.map(|n| self.inputs(n)).unwrap_or_default();
        let vars = vars_node.map(|n| self.vars(n, &inputs)).unwrap_or_default();
        let steps = match steps_node {
            Some(n) => self.steps(n, &inputs, &vars),
            None => {
                self.error(Span::new(0, 0), "missing required key `steps`").hint =
                    Some("add `steps:` with a list of steps".into());
                Vec::new()
            }
        };
        Some(Runbook { name: name?, title, description, source: Arc::clone(&self.source), sha256, inputs, vars, steps })
    }

    fn check_identifier(&mut self, name: &str, span: Span, what: &str) -> bool {
        if is_identifier(name) {
            return true;
        }
        self.error(span, format!("invalid {what} `{name}`")).hint = Some(
            "names are lowercase letters, digits and `_`, starting with a letter, so templates can use them directly"
                .into(),
        );
        false
    }

    fn inputs(&mut self, node: &Node) -> IndexMap<String, InputDef> {
        let mut out = IndexMap::new();
        let Some(entries) = node.as_map() else {
            self.error(node.span, format!("`inputs` must be a mapping of input names, not {}", node.describe()));
            return out;
        };
        for (key, value) in entries {
            let Some(name) = key.scalar_text() else {
                self.error(key.span, "an input name must be a string");
                continue;
            };
            if !self.check_identifier(&name, key.span, "input name") {
                continue;
            }
            let raw: Option<model::RawInput> = if matches!(value.kind, NodeKind::Null) {
                Some(model::RawInput {
                    description: None,
                    ty: None,
                    default: None,
                    choices: None,
                    pattern: None,
                    secret: false,
                })
            } else {
                self.read(value, &format!("input `{name}`"))
            };
            let def = raw.and_then(|raw| self.input(name.clone(), key.span, raw));
            match def {
                Some(def) => {
                    out.insert(name, def);
                }
                None => {
                    self.broken_names.insert(name);
                }
            }
        }
        out
    }

    fn input(&mut self, name: String, span: Span, raw: model::RawInput) -> Option<InputDef> {
        let ty = raw.ty.as_ref().map_or(InputType::String, |t| t.value);
        let choices = raw.choices.as_ref().map(|c| c.value.clone()).unwrap_or_default();
        let mut ok = true;
        if ty == InputType::Choice && choices.is_empty() {
            self.error(
                raw.ty.as_ref().map_or(span, |t| t.span),
                format!("input `{name}` is a choice but lists no `choices`"),
            )
            .hint = Some("add `choices: [a, b]`".into());
            ok = false;
        }
        if ty != InputType::Choice
            && let Some(c) = &raw.choices
        {
            self.error(
                c.span,
                format!("`choices` only applies to `type: choice` (input `{name}` is {})", ty.as_str()),
            )
            .hint = Some("add `type: choice` or remove `choices`".into());
            ok = false;
        }
        let pattern = match &raw.pattern {
            Some(p) => match Regex::new(&format!("^(?:{})$", p.value)) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.error(p.span, format!("invalid regular expression in `pattern`: {}", regex_reason(&e)));
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let def = InputDef {
            name: name.clone(),
            description: raw.description,
            ty,
            default: None,
            choices,
            pattern,
            secret: raw.secret,
            loc: self.loc(span),
        };
        let default = match raw.default {
            Some(d) => match crate::inputs::coerce(&def, &d.value) {
                Ok(v) => Some(v),
                Err(why) => {
                    let shown = if def.secret { "****".to_string() } else { d.value.to_string() };
                    self.error(d.span, format!("the default of input `{name}` ({shown}) is invalid: {why}"));
                    ok = false;
                    None
                }
            },
            None => None,
        };
        ok.then_some(InputDef { default, ..def })
    }

    fn vars(&mut self, node: &Node, inputs: &IndexMap<String, InputDef>) -> Vec<VarDef> {
        let mut out: Vec<VarDef> = Vec::new();
        let Some(entries) = node.as_map() else {
            self.error(node.span, format!("`vars` must be a mapping of names to values, not {}", node.describe()));
            return out;
        };
        let no_steps = IndexMap::new();
        let no_ids = HashMap::new();
        self.all_vars = entries.iter().filter_map(|(k, _)| k.scalar_text()).collect();
        for (key, value) in entries {
            let Some(name) = key.scalar_text() else {
                self.error(key.span, "a var name must be a string");
                continue;
            };
            if !self.check_identifier(&name, key.span, "var name") {
                continue;
            }
            if inputs.contains_key(&name) {
                self.error(key.span, format!("`{name}` is already an input")).hint =
                    Some("inputs and vars share one namespace; rename one of them".into());
                continue;
            }
            let names: Vec<String> = out.iter().map(|v| v.name.clone()).collect();
            let scope = Scope { inputs, vars: &names, steps: &no_steps, all_steps: &no_ids };
            let value = self.tpl_value(value, &scope);
            self.all_vars.retain(|v| *v != name);
            out.push(VarDef { name, value, loc: self.loc(key.span) });
        }
        out
    }

    fn tpl_value(&mut self, node: &Node, scope: &Scope) -> TplValue {
        match &node.kind {
            NodeKind::Str(s) => TplValue::Text(self.template(s.clone(), node.span, scope)),
            NodeKind::Seq(items) => TplValue::List(items.iter().map(|n| self.tpl_value(n, scope)).collect()),
            NodeKind::Map(entries) => TplValue::Map(
                entries.iter().map(|(k, v)| (k.scalar_text().unwrap_or_default(), self.tpl_value(v, scope))).collect(),
            ),
            _ => TplValue::Literal(node.to_json()),
        }
    }

    /// Checks a template's syntax and names; always returns it (errors are recorded).
    fn template(&mut self, text: String, span: Span, scope: &Scope) -> Tpl {
        let tpl = Tpl { text, loc: self.loc(span) };
        match template::analyze(&tpl.text) {
            Ok(names) => self.check_names(&tpl, &names, scope),
            Err(e) => self.template_error(&tpl, &e),
        }
        tpl
    }

    fn expression(&mut self, text: String, span: Span, scope: &Scope) -> Tpl {
        let tpl = Tpl { text, loc: self.loc(span) };
        match template::analyze_expression(&tpl.text) {
            Ok(names) => self.check_names(&tpl, &names, scope),
            Err(e) => self.template_error(&tpl, &e),
        }
        tpl
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
            if scope.inputs.contains_key(root)
                || scope.vars.iter().any(|v| v == root)
                || self.broken_names.contains(root)
            {
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
                StepShape::Plain { .. } => {
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

    fn steps(&mut self, node: &Node, inputs: &IndexMap<String, InputDef>, vars: &[VarDef]) -> Vec<Step> {
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
        let mut raw: model::RawStep = self.read(node, &what)?;
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
        let action = RawAction::take(raw_action_fields(&mut raw))?;
        let name = raw.name.map(|n| self.template(n.value, n.span, scope));
        let when = raw.when.map(|w| self.condition(w, scope));
        let timeout = raw.timeout.and_then(|t| self.duration(&t, "timeout"));
        let retry_delay =
            raw.retry_delay.and_then(|t| self.duration(&t, "retry-delay")).unwrap_or(Duration::from_secs(1));
        let (action, shape) = self.action(&id, action, scope, last_command)?;
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
                action,
                loc,
                fingerprint,
            },
            shape,
        ))
    }

    fn condition(&mut self, raw: Sp<model::Scalar>, scope: &Scope) -> Condition {
        match raw.value {
            model::Scalar::Bool(b) => Condition::Const(b),
            model::Scalar::Text(t) => {
                // `when: '{{ x }}'` is a common way to write the expression `x`.
                let trimmed = t.trim();
                let text = match trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
                    Some(inner) if !inner.contains("{{") => inner.trim().to_string(),
                    _ => t,
                };
                Condition::Expr(self.expression(text, raw.span, scope))
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

    fn action(
        &mut self,
        id: &str,
        raw: RawAction,
        scope: &Scope,
        last_command: Option<&str>,
    ) -> Option<(Action, StepShape)> {
        let action = match raw {
            RawAction::Copy(t) => Action::Copy(self.transfer(t.value, scope)),
            RawAction::Rename(t) => Action::Rename(self.transfer(t.value, scope)),
            RawAction::Cd(p) => Action::Cd(self.tpl(p, scope)),
            RawAction::Mkdir(p) => Action::Mkdir(self.tpl(p, scope)),
            RawAction::Fail(m) => Action::Fail(self.tpl(m, scope)),
            RawAction::Log(m) => Action::Log(self.tpl(m, scope)),
            RawAction::Exec(e) => {
                let full = match e.value {
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
                    Some(name) => match encoding_rs::Encoding::for_label(name.value.trim().as_bytes()) {
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
                Action::Exec(Exec {
                    program: self.tpl(full.program, scope),
                    args: full.args.into_iter().map(|a| self.tpl(a, scope)).collect(),
                    env: full.env.into_iter().map(|(k, v)| (k, self.tpl(v, scope))).collect(),
                    stdin: full.stdin.map(|s| self.tpl(s, scope)),
                    encoding,
                    read_only: full.read_only,
                    idempotent: full.idempotent,
                    expect,
                })
            }
            RawAction::Shell(s) => {
                let span = s.span;
                let (script, shell, idempotent, expect) = match s.value {
                    model::ShellAction::Script(text) => (Sp { value: text, span }, None, false, None),
                    model::ShellAction::Full(f) => (f.script, f.shell, f.idempotent, f.expect),
                };
                let script = self.tpl(script, scope);
                self.warn_secret_in_shell(&script, scope);
                Action::Shell(Shell {
                    script,
                    shell: shell.map(|s| self.tpl(s, scope)),
                    idempotent,
                    expect: expect.map(|x| self.expect(x.value, x.span, scope)),
                })
            }
            RawAction::ExpectOutput(x) => {
                let span = x.span;
                let (step, expect) = x.value.split();
                let target = match step {
                    Some(s) => match scope.steps.get(&s.value) {
                        Some(StepShape::Plain { command: true }) => s.value,
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
                            self.error(s.span, msg).hint =
                                did_you_mean(&s.value, scope.steps.keys().map(String::as_str))
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
                Action::ExpectOutput(ExpectOutput { step: target, expect: self.expect(expect, span, scope) })
            }
            RawAction::Remove(r) => {
                let span = r.span;
                let (path, recursive) = match r.value {
                    model::RemoveAction::Path(p) => (Sp { value: p, span }, false),
                    model::RemoveAction::Full(f) => (f.path, f.recursive),
                };
                Action::Remove { path: self.tpl(path, scope), recursive }
            }
            RawAction::Write(w) => {
                let w = w.value;
                Action::Write {
                    path: self.tpl(w.path, scope),
                    content: self.tpl(w.content, scope),
                    overwrite: w.overwrite,
                }
            }
            RawAction::Assert(a) => {
                let span = a.span;
                let a = a.value;
                if a.exists.is_none() && a.missing.is_none() && a.file.is_none() && a.dir.is_none() && a.that.is_none()
                {
                    self.error(span, "assert has nothing to check").hint =
                        Some("give at least one of `exists`, `missing`, `file`, `dir`, `that`".into());
                }
                Action::Assert(Assert {
                    exists: a.exists.map(|p| self.tpl(p, scope)),
                    missing: a.missing.map(|p| self.tpl(p, scope)),
                    file: a.file.map(|p| self.tpl(p, scope)),
                    dir: a.dir.map(|p| self.tpl(p, scope)),
                    that: a.that.map(|t| self.condition(t, scope)),
                    message: a.message.map(|m| self.tpl(m, scope)),
                })
            }
            RawAction::Manual(m) => {
                let span = m.span;
                let (instructions, confirm) = match m.value {
                    model::ManualAction::Text(t) => (Sp { value: t, span }, true),
                    model::ManualAction::Full(f) => (f.instructions, f.confirm),
                };
                Action::Manual { instructions: self.tpl(instructions, scope), confirm }
            }
            RawAction::Include(inc) => return self.include(id, inc, scope),
        };
        let command = matches!(action, Action::Exec(_) | Action::Shell(_));
        Some((action, StepShape::Plain { command }))
    }

    fn transfer(&mut self, raw: model::TransferAction, scope: &Scope) -> Transfer {
        Transfer { from: self.tpl(raw.from, scope), to: self.tpl(raw.to, scope), overwrite: raw.overwrite }
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

    fn include(&mut self, id: &str, raw: Sp<model::IncludeAction>, scope: &Scope) -> Option<(Action, StepShape)> {
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
        let _ = id;
        let shape = StepShape::Include(
            inner.steps.iter().map(|s| (s.id.clone(), StepShape::Plain { command: s.is_command() })).collect(),
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

fn regex_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s.lines().last().unwrap_or(s).trim().trim_start_matches("error: ").to_string(),
        other => other.to_string(),
    }
}

/// A path for messages: relative to the current folder when it is below it.
fn relative_display(path: &Path) -> String {
    let cwd = std::env::current_dir().ok().and_then(|c| std::fs::canonicalize(c).ok());
    match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) => crate::source::display_path(rel),
        None => crate::source::display_path(path),
    }
}
