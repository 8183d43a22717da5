//! Test files (`*.test.yaml`): a runbook under test, a starting file tree, fake programs with
//! responses chosen by their arguments, inputs and secrets, and cases with what each expects.
//! Read like runbooks: every problem at file:line:col, unknown keys with did-you-mean. Schema:
//! `schemas/runbook-test.schema.json`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::diagnostic::Diagnostic;
use crate::format::source::{Located, Source, Span};
use crate::format::yaml;

/// A test file: `runbook-test: 1`, the runbook it tests, and its cases.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(
    title = "runbook test file",
    description = "A `*.test.yaml` file for `runbook test`: a runbook, a starting file tree, fake programs, and cases with expectations."
)]
pub struct TestFile {
    /// The format version: `runbook-test: 1`.
    pub runbook_test: u32,
    /// The runbook under test, relative to this file.
    pub runbook: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Absolute paths re-rooted in the sandbox: a `path` input (given, or its default) that starts
    /// with a key is moved under the sandbox folder it names (`"C:/": C` puts
    /// `C:/Program Files` at `{sandbox}/C/Program Files`), so a runbook's own defaults are tested.
    #[serde(default)]
    pub roots: IndexMap<String, String>,
    /// A folder (relative to this file) copied into every case's sandbox first.
    #[serde(default)]
    pub fixtures: Option<String>,
    /// The starting file tree, by path relative to the sandbox (a path ending in `/` is a folder).
    #[serde(default)]
    pub files: IndexMap<String, FileSpec>,
    /// Fake programs by the name the runbook runs them by (`CertificateManager.exe`, `sc`).
    #[serde(default)]
    pub fakes: IndexMap<String, Fake>,
    /// Inputs for every case; `{sandbox}` is the case's sandbox folder, relative paths are in it.
    #[serde(default)]
    pub inputs: IndexMap<String, serde_json::Value>,
    /// Secret inputs for every case (given on standard input, as an operator's would be).
    #[serde(default)]
    pub secrets: IndexMap<String, String>,
    pub cases: Vec<Case>,
}

/// A file of the starting tree: its text, or `{content|base64, encoding}`, or `{dir: true}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FileSpec {
    Text(String),
    Spec(FileBody),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct FileBody {
    /// Text content.
    #[serde(default)]
    pub content: Option<String>,
    /// Bytes, base64-encoded.
    #[serde(default)]
    pub base64: Option<String>,
    /// The text's encoding on disk (`utf-8` by default; `shift_jis`, `utf-16le`, …).
    #[serde(default)]
    pub encoding: Option<String>,
    /// A folder rather than a file.
    #[serde(default)]
    pub dir: bool,
}

/// A fake program: its responses, tried in order; the first whose arguments match answers.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Fake {
    /// A folder of the sandbox to put it in (as the real program's own folder, found there when
    /// a step `cd`s into it); by default it is on `PATH`.
    #[serde(default, rename = "in")]
    pub folder: Option<String>,
    pub responses: Vec<Response>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Response {
    /// The arguments this response answers, one matcher each (a text exactly, or `{regex}`);
    /// absent: any arguments.
    #[serde(default)]
    pub args: Option<Vec<ArgMatch>>,
    #[serde(default)]
    pub stdout: Option<OutputSpec>,
    #[serde(default)]
    pub stderr: Option<OutputSpec>,
    /// The exit code (0 by default).
    #[serde(default)]
    pub exit: i32,
    /// Files the call creates or changes (path in the sandbox → text).
    #[serde(default)]
    pub writes: IndexMap<String, String>,
    /// Files the call removes.
    #[serde(default)]
    pub removes: Vec<String>,
    /// How long the call takes, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Answer only once (later calls go on to the next response that matches).
    #[serde(default)]
    pub once: bool,
}

/// One argument: exactly this text (`{sandbox}` replaced), or `{regex: …}` (whole argument).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ArgMatch {
    Exact(String),
    Pattern { regex: String },
}

/// What a fake prints: text, or `{text, encoding}` (e.g. `shift_jis` for CP932 output).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OutputSpec {
    Text(String),
    Encoded { text: String, encoding: String },
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Case {
    pub name: String,
    /// Inputs of this case, over the file's.
    #[serde(default)]
    pub inputs: IndexMap<String, serde_json::Value>,
    #[serde(default)]
    pub secrets: IndexMap<String, String>,
    /// Files added to the starting tree for this case.
    #[serde(default)]
    pub files: IndexMap<String, FileSpec>,
    /// Fakes of this case, replacing the file's of the same name.
    #[serde(default)]
    pub fakes: IndexMap<String, Fake>,
    /// After the run, `runbook rollback`: the tree must then equal the start.
    #[serde(default)]
    pub rollback: bool,
    pub expect: Expect,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Expect {
    /// `succeeded`, `failed`, or `refused` (the engine would not start: exit 2 or 3).
    #[serde(default)]
    pub outcome: Option<String>,
    /// The step the run failed at.
    #[serde(default)]
    pub failed_at: Option<String>,
    /// Each step's outcome: `done`, `unchanged`, `skipped`, `failed`, `not_run`.
    #[serde(default)]
    pub steps: IndexMap<String, String>,
    /// The dry run's verdict per step: `would_change`, `unchanged`, `skipped`, `would_fail`,
    /// `decided_at_run_time`.
    #[serde(default)]
    pub plan: IndexMap<String, String>,
    /// Text each step's output (what it printed, its messages, why it failed) must contain.
    #[serde(default)]
    pub output: IndexMap<String, Vec<String>>,
    /// Files afterwards, by path in the sandbox.
    #[serde(default)]
    pub files: IndexMap<String, FileExpect>,
    /// The calls each fake received.
    #[serde(default)]
    pub calls: IndexMap<String, CallsExpect>,
    /// No secret appears in anything runbook printed or journaled (checked unless `false`).
    #[serde(default)]
    pub secrets_absent: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct FileExpect {
    #[serde(default)]
    pub exists: Option<bool>,
    /// The whole text.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    /// Lowercase hex.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CallsExpect {
    #[serde(default)]
    pub count: Option<usize>,
    /// Each call's arguments, in order.
    #[serde(default)]
    pub args: Option<Vec<Vec<ArgMatch>>>,
    /// The folder every call ran in (in the sandbox).
    #[serde(default)]
    pub cwd: Option<String>,
    /// What every call read on standard input.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// A test file, read and checked.
pub struct Loaded {
    pub path: PathBuf,
    pub file: TestFile,
}

impl Loaded {
    /// The runbook under test, relative to the test file.
    pub fn runbook_path(&self) -> PathBuf {
        crate::os::path::parent_dir(&self.path).join(&self.file.runbook)
    }
}

/// Whether a path names a test file.
pub fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".test.yaml"))
}

/// Reads a test file's text: every problem as a diagnostic at its place.
pub fn load(path: &Path, text: String) -> Result<Loaded, Vec<Diagnostic>> {
    let source = Source::new(path, text);
    let root = yaml::parse(&source.text).map_err(|e| {
        let offset = source.offset_of(e.line, e.col);
        vec![
            Diagnostic::error(format!("invalid YAML: {}", e.message))
                .at(Located::new(&source, Span::new(offset, 1)))
                .hint(e.hint()),
        ]
    })?;
    let unknown = RefCell::new(Vec::new());
    let result = yaml::from_node::<TestFile>(&root, &unknown);
    let at = |span: Option<Span>| Located::new(&source, span.unwrap_or(root.span));
    let mut diagnostics: Vec<Diagnostic> = unknown
        .into_inner()
        .into_iter()
        .map(|e| {
            let d = Diagnostic::error(format!("test file: {}", e.message)).at(at(e.span));
            match e.hint {
                Some(h) => d.hint(h),
                None => d,
            }
        })
        .collect();
    let file = match result {
        Ok(file) => Some(file),
        Err(e) => {
            let d = Diagnostic::error(format!("test file: {}", e.message)).at(at(e.span));
            diagnostics.push(match e.hint {
                Some(h) => d.hint(h),
                None => d.hint("see schemas/runbook-test.schema.json for the format"),
            });
            None
        }
    };
    if let Some(file) = &file {
        if file.runbook_test != 1 {
            diagnostics.push(
                Diagnostic::error(format!(
                    "this is a test file of format {}; this version reads format 1",
                    file.runbook_test
                ))
                .at(at(None)),
            );
        }
        check_regexes(file, &mut diagnostics, &source, &root);
    }
    match file {
        Some(file) if diagnostics.is_empty() => Ok(Loaded { path: path.to_path_buf(), file }),
        _ => Err(diagnostics),
    }
}

/// Every `{regex}` compiles.
fn check_regexes(file: &TestFile, out: &mut Vec<Diagnostic>, source: &std::sync::Arc<Source>, root: &yaml::Node) {
    let mut patterns: Vec<&str> = Vec::new();
    let fakes = file.fakes.values().chain(file.cases.iter().flat_map(|c| c.fakes.values()));
    for fake in fakes {
        for r in &fake.responses {
            patterns.extend(r.args.iter().flatten().filter_map(pattern));
        }
    }
    for case in &file.cases {
        for calls in case.expect.calls.values() {
            patterns.extend(calls.args.iter().flatten().flatten().filter_map(pattern));
        }
    }
    for p in patterns {
        if let Err(e) = regex::Regex::new(p) {
            let offset = source.text.find(p).unwrap_or(root.span.offset);
            out.push(
                Diagnostic::error(format!("test file: `{p}` is not a regular expression: {e}"))
                    .at(Located::new(source, Span::new(offset, p.len()))),
            );
        }
    }
}

fn pattern(m: &ArgMatch) -> Option<&str> {
    match m {
        ArgMatch::Pattern { regex } => Some(regex),
        ArgMatch::Exact(_) => None,
    }
}

/// The test files' JSON Schema (`runbook schema test`, `schemas/runbook-test.schema.json`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(TestFile)).expect("a schema serializes")
}

impl ArgMatch {
    /// Whether `arg` matches, `{sandbox}` standing for the sandbox (paths compared with `/`).
    pub fn matches(&self, arg: &str, sandbox: &str) -> bool {
        let arg = arg.replace('\\', "/");
        match self {
            ArgMatch::Exact(text) => text.replace("{sandbox}", sandbox).replace('\\', "/") == arg,
            ArgMatch::Pattern { regex } => regex::Regex::new(&format!("^(?:{regex})$")).is_ok_and(|r| r.is_match(&arg)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ArgMatch::Exact(t) => format!("{t:?}"),
            ArgMatch::Pattern { regex } => format!("/{regex}/"),
        }
    }
}

/// Whether every argument matches, one matcher each.
pub fn args_match(matchers: &[ArgMatch], args: &[String], sandbox: &str) -> bool {
    matchers.len() == args.len() && matchers.iter().zip(args).all(|(m, a)| m.matches(a, sandbox))
}

/// Every problem of a test file, as `validate` and the language server show them: the file
/// itself, then what it says of its runbook (that it loads; step ids and input names that are
/// the runbook's, with did-you-mean).
pub fn diagnostics(path: &Path, text: String) -> Vec<Diagnostic> {
    let source = Source::new(path, text.clone());
    let loaded = match load(path, text) {
        Ok(l) => l,
        Err(ds) => return ds,
    };
    let runbook_path = loaded.runbook_path();
    let at_key = |key: &str| {
        let offset = source.text.find(&format!("{key}:")).or_else(|| source.text.find(key)).unwrap_or(0);
        Located::new(&source, Span::new(offset, key.len()))
    };
    if !runbook_path.is_file() {
        return vec![
            Diagnostic::error(format!("test file: the runbook {} does not exist", runbook_path.display()))
                .at(at_key(&loaded.file.runbook))
                .hint("`runbook:` names the runbook under test, relative to this file"),
        ];
    }
    let compiled = super::load(&runbook_path);
    let Some(runbook) = compiled.runbook else {
        return vec![
            Diagnostic::error(format!("test file: the runbook {} is not valid", runbook_path.display()))
                .at(at_key(&loaded.file.runbook))
                .hint(format!("`runbook validate {}` shows why", runbook_path.display())),
        ];
    };
    check_names(&loaded.file, &runbook, &at_key)
}

/// Step ids and input names the test file uses that the runbook does not have.
pub fn check_names(
    file: &TestFile,
    runbook: &super::runbook::Runbook,
    at_key: &dyn Fn(&str) -> Located,
) -> Vec<Diagnostic> {
    let ids: Vec<String> = runbook.step_digests().into_iter().map(|s| s.id).collect();
    let inputs: Vec<&str> = runbook.inputs.keys().map(String::as_str).collect();
    let mut out = Vec::new();
    let mut unknown = |word: &str, what: &str, known: &[&str]| {
        if !known.contains(&word) {
            let mut d =
                Diagnostic::error(format!("test file: `{word}` is not {what} of {}", runbook.name)).at(at_key(word));
            if let Some(m) = crate::format::diagnostic::did_you_mean(word, known.iter().copied()) {
                d = d.hint(format!("did you mean `{m}`?"));
            }
            out.push(d);
        }
    };
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let all_inputs = file
        .inputs
        .keys()
        .chain(file.secrets.keys())
        .chain(file.cases.iter().flat_map(|c| c.inputs.keys().chain(c.secrets.keys())));
    for name in all_inputs {
        unknown(name, "an input", &inputs);
    }
    for case in &file.cases {
        let e = &case.expect;
        for id in e.steps.keys().chain(e.plan.keys()).chain(e.output.keys()).chain(e.failed_at.iter()) {
            unknown(id, "a step", &id_refs);
        }
    }
    out
}
