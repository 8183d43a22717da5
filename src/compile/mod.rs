//! Reads a runbook file and checks everything that can be checked without running it, collecting
//! every problem (not just the first) as a [`Diagnostic`] pointing at file, line and column.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use regex::Regex;
use serde::Deserialize;

use crate::compile::runbook::*;
use crate::compile::template::Templates;
use crate::format::diagnostic::{Diagnostic, did_you_mean};
use crate::format::digest::sha256_hex;
use crate::format::file::read_text;
use crate::format::mask::MASK;
use crate::format::model::{self, InputType, Sp};
use crate::format::source::{Located, Source, Span};
use crate::format::yaml::{self, DeError, Node, NodeKind};

pub mod inputs;
mod names;
pub mod runbook;
mod steps;
pub mod template;
pub mod testfile;

const MAX_INCLUDE_DEPTH: usize = 16;
pub const ENCODING_HINT: &str = "use a WHATWG encoding label such as `utf-8`, `shift_jis`, `utf-16le`, `windows-1252`, or `console` for the console's code page";

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

/// Loads a runbook from text already in memory, as if read from `path` (includes are still
/// read relative to it).
pub fn load_text(path: &Path, text: String) -> Loaded {
    let mut diagnostics = Vec::new();
    let runbook = Loader { diags: &mut diagnostics, stack: Vec::new() }.load_source(path, text);
    let runbook = if diagnostics.iter().any(Diagnostic::is_error) { None } else { runbook };
    Loaded { runbook, diagnostics }
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

/// The top level of a runbook file, as read.
#[derive(Default)]
struct TopLevel<'n> {
    format_seen: bool,
    name: Option<Sp<String>>,
    title: Option<String>,
    description: Option<String>,
    inputs: Option<&'n Node>,
    vars: Option<&'n Node>,
    steps: Option<&'n Node>,
    on_failure: Option<model::OnFailure>,
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
        /// The names its results hold under `captures` (`None`: known only at run time).
        captures: Option<Vec<String>>,
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
        self.load_source(path, text)
    }

    fn load_source(&mut self, path: &Path, text: String) -> Option<Arc<Runbook>> {
        let sha256 = sha256_hex(text.as_bytes());
        let source = Source::new(path, text);
        let root = match yaml::parse(&source.text) {
            Ok(node) => node,
            Err(e) => {
                let offset = source.offset_of(e.line, e.col);
                self.diags.push(
                    Diagnostic::error(format!("invalid YAML: {}", e.message))
                        .at(Located::new(&source, Span::new(offset, 1)))
                        .hint(e.hint()),
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
            reads: BTreeSet::new(),
            broken_names: BTreeSet::new(),
            all_vars: Vec::new(),
            templates: Templates::default(),
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
    /// Inputs and vars read by the templates being read.
    reads: BTreeSet<String>,
    /// Names declared by inputs or vars that did not load: using them reports nothing more.
    broken_names: BTreeSet<String>,
    /// Every var name, to tell "defined later" from "undefined".
    all_vars: Vec<String>,
    /// The file's templates, compiled as they are read.
    templates: Templates,
}

impl FileLoader<'_, '_> {
    fn loc(&self, span: Span) -> Located {
        Located::new(&self.source, span)
    }

    /// A location whose quoted line shows the text at `span` (a secret written in the file) as
    /// `****`; where it starts stays right.
    fn loc_masked(&self, span: Span) -> Located {
        let text = &self.source.text;
        let start = span.offset.min(text.len());
        let end = (span.offset + span.len).min(text.len());
        let masked = format!("{}{MASK}{}", &text[..start], &text[end..]);
        Located::new(&Source::new(&self.source.path, masked), Span::new(start, MASK.len()))
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

    /// Reads a mapping into `T`, reporting every mistake in it: after an error, the entry that
    /// holds it is set aside and the rest is read again.
    fn read_all<T: serde::de::DeserializeOwned>(&mut self, node: &Node, what: &str) -> Option<T> {
        let unknown = RefCell::new(Vec::new());
        let result = yaml::from_node::<T>(node, &unknown);
        for e in unknown.into_inner() {
            self.de_error(e, node.span, what);
        }
        let mut error = match result {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let mut rest = node.clone();
        loop {
            let at = error.span.map(|s| s.offset);
            self.de_error(error, node.span, what);
            let (Some(at), NodeKind::Map(entries)) = (at, &mut rest.kind) else { return None };
            // The entry holding the error is the last one that starts at or before it; an error
            // about the mapping itself (a missing key) is before every entry, and ends the search.
            let holder = entries.iter().rposition(|(k, _)| k.span.offset <= at)?;
            entries.remove(holder);
            // Unknown keys were all reported by the first reading.
            let again = RefCell::new(Vec::new());
            match yaml::from_node::<T>(&rest, &again) {
                Ok(_) => return None,
                Err(e) => error = e,
            }
        }
    }

    fn runbook(&mut self, root: &Node, sha256: String) -> Option<Runbook> {
        let Some(entries) = root.as_map() else {
            self.error(root.span, format!("a runbook must be a mapping, but this file holds {}", root.describe()))
                .hint = Some("start the file with `runbook: 1`, `name: ...` and `steps: [...]`".into());
            return None;
        };
        let top = self.top_level(entries);
        if !top.format_seen {
            self.error(Span::new(0, 0), "missing the format marker `runbook: 1`").hint =
                Some("add `runbook: 1` as the first line, so the tool knows which format the file uses".into());
        }
        let name = self.checked_name(top.name, entries);
        let (title, description, inputs_node, vars_node, steps_node) =
            (top.title, top.description, top.inputs, top.vars, top.steps);
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
        Some(Runbook {
            name: name?,
            title,
            description,
            source: Arc::clone(&self.source),
            sha256,
            inputs,
            vars,
            steps,
            templates: std::mem::take(&mut self.templates),
            on_failure: top.on_failure.unwrap_or_default(),
        })
    }

    /// The top-level keys, each read (or remembered, for the sections read in order after).
    fn top_level<'n>(&mut self, entries: &'n [(Node, Node)]) -> TopLevel<'n> {
        let mut top = TopLevel::default();
        for (key, value) in entries {
            let Some(k) = key.as_str() else {
                self.error(key.span, "keys at the top level must be strings");
                continue;
            };
            match k {
                "runbook" => {
                    top.format_seen = true;
                    self.format_marker(value);
                }
                "name" => top.name = self.read::<Sp<String>>(value, "name"),
                "title" => top.title = self.read::<String>(value, "title"),
                "description" => top.description = self.read::<String>(value, "description"),
                "inputs" => top.inputs = Some(value),
                "vars" => top.vars = Some(value),
                "steps" => top.steps = Some(value),
                "on-failure" => top.on_failure = self.read::<model::OnFailure>(value, "on-failure"),
                // Extension keys hold YAML anchors for the rest of the file; nothing reads them.
                other if other.starts_with("x-") => {}
                other => {
                    let hint = did_you_mean(other, model::TOP_LEVEL_KEYS.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "the top-level keys are: {} (and keys starting with `x-`, which are ignored)",
                                model::TOP_LEVEL_KEYS.join(", ")
                            )
                        });
                    self.error(key.span, format!("unknown key `{other}`")).hint = Some(hint);
                }
            }
        }
        top
    }

    fn format_marker(&mut self, value: &Node) {
        match value.kind {
            NodeKind::Int(1) => {}
            NodeKind::Int(n) => {
                self.error(value.span, format!("unsupported runbook format {n}")).hint =
                    Some("this version of runbook reads format 1: `runbook: 1`".into());
            }
            _ => {
                self.error(value.span, format!("the format marker must be the number 1, not {}", value.describe()))
                    .hint = Some("write `runbook: 1`".into());
            }
        }
    }

    fn checked_name(&mut self, name: Option<Sp<String>>, entries: &[(Node, Node)]) -> Option<String> {
        match name {
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
        }
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
                self.read_all(value, &format!("input `{name}`"))
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
        // A secret's default is shown masked, in the message and in the quoted line.
        let at = |this: &Self, span: Span| if def.secret { this.loc_masked(span) } else { this.loc(span) };
        let default = match raw.default {
            Some(d) => match crate::compile::inputs::coerce(&def, &d.value) {
                Ok(v) => {
                    if def.secret {
                        self.push(
                            Diagnostic::warning(format!(
                                "the secret input `{name}` has a default: its value sits in the runbook in clear text"
                            ))
                            .at(at(self, d.span))
                            .hint(format!(
                                "remove the default and give the secret when the runbook runs ({} or the prompt)",
                                crate::compile::inputs::env_name(&name)
                            )),
                        );
                    }
                    Some(v)
                }
                Err(why) => {
                    let shown = if def.secret { "****".to_string() } else { d.value.to_string() };
                    let message = format!("the default of input `{name}` ({shown}) is invalid: {why}");
                    self.push(Diagnostic::error(message).at(at(self, d.span)));
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
            self.reads.clear();
            let value = self.tpl_value(value, &scope);
            self.all_vars.retain(|v| *v != name);
            let reads = std::mem::take(&mut self.reads).into_iter().collect();
            out.push(VarDef { name, value, reads, loc: self.loc(key.span) });
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
}

fn regex_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s.lines().last().unwrap_or(s).trim().trim_start_matches("error: ").to_string(),
        other => other.to_string(),
    }
}
