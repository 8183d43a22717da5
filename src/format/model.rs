//! The file format as written: serde types read from the node tree, and the source of the JSON
//! Schema (`runbook schema`). Nothing here is checked beyond its shape; the loader turns these
//! into a [`crate::compile::runbook::Runbook`].

use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::format::source::Span;
use crate::format::yaml::SPANNED;

/// A value with the span of the YAML node it was read from.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a spanned value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sp<T>, A::Error> {
                let mut offset = 0u64;
                let mut len = 0u64;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "offset" => offset = map.next_value()?,
                        "len" => len = map.next_value()?,
                        _ => {
                            let value = map.next_value::<T>()?;
                            return Ok(Sp { value, span: Span::new(offset as usize, len as usize) });
                        }
                    }
                }
                Err(de::Error::custom("spanned value without a value"))
            }
        }
        deserializer.deserialize_struct(SPANNED, &["offset", "len", "value"], SpVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A runbook file (format 1). Keys are kebab-case; unknown keys are errors.
#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    title = "runbook",
    description = "A runbook: an ordered list of steps that carry out an operational procedure."
)]
#[allow(dead_code)]
pub struct RawRunbook {
    /// Format marker; must be 1. Example: `runbook: 1`
    #[schemars(range(min = 1, max = 1))]
    pub runbook: u32,
    /// Identifier of the runbook, `[a-z0-9][a-z0-9-]*`; journals and locks are kept under it.
    /// Example: `name: apex-one-restore-auth-cert`
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub name: String,
    /// One-line title, shown by `show` and at the head of plans. Example: `title: Restore the certificate`
    pub title: Option<String>,
    /// When to use it and what it does; shown by `runbook show`. Example: `description: |` then
    /// the text, indented.
    pub description: Option<String>,
    /// What a site supplies, by name: each set by a default, an input file (`--vars`),
    /// `RUNBOOK_INPUT_<NAME>`, `--var name=value`, or asked for on a terminal. Example:
    /// `inputs: { install_dir: { type: path, description: Apex One install folder } }`
    pub inputs: Option<IndexMap<String, RawInput>>,
    /// Derived values, rendered in order; may use inputs and earlier vars. Example:
    /// `vars: { pfx: '{{ backup_file | with_extension("pfx") }}' }`
    pub vars: Option<IndexMap<String, serde_json::Value>>,
    /// The steps, run in order; each has an `id` and exactly one action. Example:
    /// `steps: [ { id: make_dir, mkdir: 'D:/backup' } ]`
    pub steps: Vec<RawStep>,
    /// What a failed run does: `stop` (the default; `runbook rollback` can back it out later) or
    /// `rollback` (undo the steps it did, at once, as `--on-failure rollback`). Example:
    /// `on-failure: rollback`
    pub on_failure: Option<OnFailure>,
}

/// What a failed run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop where it failed.
    #[default]
    Stop,
    /// Undo the steps it did, newest first.
    Rollback,
}

/// The top-level keys, in the order they are documented.
pub const TOP_LEVEL_KEYS: &[&str] =
    &["runbook", "name", "title", "description", "inputs", "vars", "steps", "on-failure"];

/// The type of an input's value (default `string`). Example: `type: path`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InputType {
    /// Any text (checked against `pattern` when there is one).
    #[default]
    String,
    /// A file or folder path (`C:\...`, `C:/...`, UNC, or relative to the working folder).
    Path,
    /// A whole number.
    Int,
    /// `true` or `false` (also `yes`/`no`, `1`/`0` from the command line).
    Bool,
    /// One of the values listed under `choices`.
    Choice,
}

impl InputType {
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Path => "path",
            InputType::Int => "int",
            InputType::Bool => "bool",
            InputType::Choice => "choice",
        }
    }
}

/// An input a site supplies. Example: `build: { type: int, description: Server build number }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawInput {
    /// What the value is, for whoever supplies it (shown when it is asked for). Example:
    /// `description: Apex One install folder`
    pub description: Option<String>,
    /// The value's type: `string` (default), `path`, `int`, `bool` or `choice`. Example: `type: int`
    #[serde(rename = "type")]
    pub ty: Option<Sp<InputType>>,
    /// The value used when no layer sets one; an input without a default is required. A secret
    /// should have none (it would sit in the file in clear text). Example: `default: 8378`
    pub default: Option<Sp<serde_json::Value>>,
    /// The values a `choice` input may take (required with `type: choice`). Example:
    /// `choices: [apex-one, officescan]`
    pub choices: Option<Sp<Vec<String>>>,
    /// A regular expression the whole value must match. Example: `pattern: '[0-9]{4}'`
    pub pattern: Option<Sp<String>>,
    /// A secret: asked for without echo, never shown, logged, journaled or saved in a plan
    /// (masked as `****`). Example: `secret: true`
    #[serde(default)]
    pub secret: bool,
}

/// One step: an `id`, exactly one action (copy, rename, cd, exec, shell, expect-output, mkdir,
/// remove, write, assert, fail, log, manual, include) and common options. Example:
/// `- { id: stage, copy: { from: '{{ backup_file }}', to: 'C:/' } }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawStep {
    /// Unique identifier, `[a-z][a-z0-9_]*`; the journal keys on it, and later steps read its
    /// results as `steps.<id>`. Example: `id: copy_backup`
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"))]
    pub id: Option<Sp<String>>,
    /// Human title (default: the rendered action); may use templates. Example:
    /// `name: Copy the backup onto the server`
    pub name: Option<Sp<String>>,
    /// An expression; the step is skipped when it is false. Example:
    /// `when: not exists(install_dir)` or `when: steps.probe.exit_code == 0`
    pub when: Option<Sp<Scalar>>,
    /// Time limit of the step's command; it is stopped (with everything it started) when it is
    /// reached. Example: `timeout: 5m` (also `30s`, `1h 30m`)
    pub timeout: Option<Sp<String>>,
    /// How many times to try again after a failure (default 0). Example: `retries: 3`
    pub retries: Option<Sp<u32>>,
    /// Pause between tries (default `1s`). Example: `retry-delay: 10s`
    pub retry_delay: Option<Sp<String>>,
    /// A failure is recorded and the run goes on. Example: `continue-on-error: true`
    #[serde(default)]
    pub continue_on_error: bool,
    /// How to back the step out (`runbook rollback`, `--on-failure rollback`): one action,
    /// rendered with the same inputs and `steps.*` as the step. Built-in actions undo themselves
    /// (previous contents are kept); `exec`, `shell` and `manual` need one. Example:
    /// `undo: { exec: [net, start, ofcservice] }`
    #[schemars(with = "Option<serde_json::Value>")]
    #[allow(dead_code)] // the loader reads it from the node tree, as a step of its own
    pub undo: Option<Sp<serde_json::Value>>,

    /// Copy a file, or a folder with its content; the copy is verified (SHA-256, captured as
    /// `steps.<id>.captures.sha256`). `to` may be an existing folder. Example:
    /// `copy: { from: 'C:/cert/OfficeScanAuth.dat', to: 'D:/backup/', overwrite: true }`
    pub copy: Option<Sp<TransferAction>>,
    /// Rename (move) a file or folder, atomically where the system allows. Example:
    /// `rename: { from: OfficeScanAuth.dat, to: OfficeScanAuth.pfx }`
    pub rename: Option<Sp<TransferAction>>,
    /// The working folder of later steps (relative paths and commands). Example:
    /// `cd: '{{ install_dir }}/PCCSRV/Admin/Utility/CertificateManager'`
    pub cd: Option<Sp<String>>,
    /// Run a program without a shell: `[program, arg, ...]` or the full form; a bare program is
    /// looked up in the `cd` folder, then `PATH` (with `PATHEXT` on Windows). Example:
    /// `exec: [CertificateManager.exe, -ine, '{{ password }}', '{{ pfx }}']`
    pub exec: Option<Sp<ExecAction>>,
    /// Run a script through the platform shell (`sh -c`; `cmd /D /S /C` on Windows): an explicit
    /// opt-in. Example: `shell: 'dir /b "{{ staging_dir }}"'`
    pub shell: Option<Sp<ShellAction>>,
    /// Check an earlier exec or shell step's captured output. Example:
    /// `expect-output: { step: import, contains: successfully imported }`
    pub expect_output: Option<Sp<ExpectOutputAction>>,
    /// Create a folder and its parents (nothing to do when it exists). Example: `mkdir: 'D:/backup'`
    pub mkdir: Option<Sp<String>>,
    /// Remove a file, or a folder (`recursive: true` for one with content). Example:
    /// `remove: { path: 'C:/staging', recursive: true }`
    pub remove: Option<Sp<RemoveAction>>,
    /// Write a text file, atomically (never a partial file). Example:
    /// `write: { path: notes.txt, content: 'Backed up {{ run.id }}', overwrite: true }`
    pub write: Option<Sp<WriteAction>>,
    /// Check paths or an expression; the run stops when a check fails. Example:
    /// `assert: { file: '{{ pfx }}', message: the .pfx is missing }`
    pub assert: Option<Sp<AssertAction>>,
    /// Stop the run with this message (usually under a `when`). Example:
    /// `fail: Contact support; the password is unknown`
    pub fail: Option<Sp<String>>,
    /// Print a line (templates allowed). Example: `log: 'Backed up to {{ backup_file }}'`
    pub log: Option<Sp<String>>,
    /// Instructions for the operator, who confirms when done (`--yes` confirms in advance).
    /// Example: `manual: { instructions: 'Choose [Import existing certificate]', confirm: true }`
    pub manual: Option<Sp<ManualAction>>,
    /// Run another runbook's steps inline, as `<this id>.<its step id>`. Example:
    /// `include: { runbook: lib/backup.yaml, with: { target: 'D:/backup' } }`
    pub include: Option<Sp<IncludeAction>>,
}

/// The action keys of a step.
pub const ACTION_KEYS: &[&str] = &[
    "copy",
    "rename",
    "cd",
    "exec",
    "shell",
    "expect-output",
    "mkdir",
    "remove",
    "write",
    "assert",
    "fail",
    "log",
    "manual",
    "include",
];

/// A boolean, or an expression (with or without `{{ }}`).
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum Scalar {
    Bool(bool),
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an expression or a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where from and where to (`copy`, `rename`). Example: `{ from: a.dat, to: b.dat }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TransferAction {
    /// The source path (relative to the working folder). Example: `from: '{{ backup_file }}'`
    pub from: Sp<String>,
    /// The target path; with `copy`, an existing folder receives the source under its own name.
    /// Example: `to: 'C:/'`
    pub to: Sp<String>,
    /// Replace a target that exists (default: refuse). Example: `overwrite: true`
    #[serde(default)]
    pub overwrite: bool,
}

/// A program run without a shell: a list `[program, arg, ...]` or the full form. Example:
/// `[CertificateManager.exe, -ine, '{{ password }}', '{{ pfx }}']`
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ExecAction {
    List(Vec<Sp<String>>),
    Full(Box<ExecFull>),
}

/// A program and how to run it. Example: `{ program: tool.exe, args: [-v], expect: { contains: OK } }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExecFull {
    /// The program: a path, or a name looked up in the `cd` folder, then `PATH`. Example:
    /// `program: CertificateManager.exe`
    pub program: Sp<String>,
    /// Its arguments, each passed as one word (no shell splitting). Example: `args: [-b, '{{ password }}']`
    #[serde(default)]
    pub args: Vec<Sp<String>>,
    /// Environment variables added for it. Example: `env: { LANG: C }`
    #[serde(default)]
    pub env: IndexMap<String, Sp<String>>,
    /// Text written to the program's standard input. Example: `stdin: "yes\n"`
    pub stdin: Option<Sp<String>>,
    /// How its output is decoded: a WHATWG label (`shift_jis`, `utf-16le`, ...) or `console` (the
    /// console's code page on Windows); default UTF-8. Example: `encoding: console`
    pub encoding: Option<Sp<String>>,
    /// A probe without side effects: it also runs in a dry run, so later steps are predicted
    /// from its output. Example: `read-only: true`
    #[serde(default)]
    pub read_only: bool,
    /// Running it again after an interruption is safe (resume does so without asking). Example:
    /// `idempotent: true`
    #[serde(default)]
    pub idempotent: bool,
    /// What its output must show. Example: `expect: { contains: successfully, exit-code: 0 }`
    pub expect: Option<Sp<Expectation>>,
}

/// A script run by the platform shell: a string or `{script, shell}`. Example: `echo done`
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ShellAction {
    Script(String),
    Full(Box<ShellFull>),
}

/// A script and its shell. Example: `{ script: Get-Service, shell: powershell }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ShellFull {
    /// The script, passed to the shell as typed. Example: `script: 'net stop ofcservice'`
    pub script: Sp<String>,
    /// The shell program (default `sh`, or `cmd` on Windows; `powershell` and `pwsh` are run
    /// with `-NoProfile -NonInteractive -Command`). Example: `shell: powershell`
    pub shell: Option<Sp<String>>,
    /// Running it again after an interruption is safe. Example: `idempotent: true`
    #[serde(default)]
    pub idempotent: bool,
    /// What its output must show. Example: `expect: { not-contains: ERROR }`
    pub expect: Option<Sp<Expectation>>,
}

/// What a command's output must show. Example: `{ contains: imported, exit-code: [0, 3] }`
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expectation {
    /// Text (or texts) the output must contain. Example: `contains: successfully imported`
    pub contains: Option<Sp<OneOrMany>>,
    /// Text (or texts) the output must not contain. Example: `not-contains: [ERROR, failed]`
    pub not_contains: Option<Sp<OneOrMany>>,
    /// A regular expression the output must match; named groups become
    /// `steps.<id>.captures.<name>`. Example: `matches: 'build (?P<build>\d+)'`
    pub matches: Option<Sp<String>>,
    /// Which output is checked: `stdout`, `stderr` or `any` (default). Example: `stream: stdout`
    pub stream: Option<Sp<Stream>>,
    /// The exit code (or codes) that count as success (default 0). Example: `exit-code: [0, 1]`
    pub exit_code: Option<Sp<ExitCodes>>,
}

/// Checks an earlier exec/shell step's captured output. Example:
/// `{ step: import, matches: '(?m)^.*successfully' }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectOutputAction {
    /// The exec/shell step whose output is checked (default: the most recent one). Example: `step: import`
    pub step: Option<Sp<String>>,
    /// Text (or texts) the output must contain. Example: `contains: successfully imported`
    pub contains: Option<Sp<OneOrMany>>,
    /// Text (or texts) the output must not contain. Example: `not-contains: ERROR`
    pub not_contains: Option<Sp<OneOrMany>>,
    /// A regular expression the output must match; named groups become
    /// `steps.<id>.captures.<name>`. Example: `matches: 'SHA256: (?P<sha>[0-9a-f]+)'`
    pub matches: Option<Sp<String>>,
    /// Which output is checked: `stdout`, `stderr` or `any` (default). Example: `stream: stderr`
    pub stream: Option<Sp<Stream>>,
    /// The exit code (or codes) that count as success. Example: `exit-code: 0`
    pub exit_code: Option<Sp<ExitCodes>>,
}

impl ExpectOutputAction {
    pub fn split(self) -> (Option<Sp<String>>, Expectation) {
        (
            self.step,
            Expectation {
                contains: self.contains,
                not_contains: self.not_contains,
                matches: self.matches,
                stream: self.stream,
                exit_code: self.exit_code,
            },
        )
    }
}

/// Which output a check reads. Example: `stdout`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stream {
    /// Standard output only.
    Stdout,
    /// Standard error only.
    Stderr,
    /// Both, standard output first.
    #[default]
    Any,
}

/// A text or a list of texts. Example: `[imported, OK]`
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// An exit code or a list of them. Example: `[0, 3]`
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ExitCodes {
    One(i32),
    Many(Vec<i32>),
}

/// `remove: PATH` or `{path, recursive}`. Example: `C:/staging/old.pfx`
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum RemoveAction {
    Path(String),
    Full(RemoveFull),
}

/// What to remove. Example: `{ path: 'C:/staging', recursive: true }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RemoveFull {
    /// The file or folder (nothing to do when it does not exist). Example: `path: 'C:/staging'`
    pub path: Sp<String>,
    /// Remove a folder with everything in it (default: only an empty one). Example: `recursive: true`
    #[serde(default)]
    pub recursive: bool,
}

/// A text file to write. Example: `{ path: notes.txt, content: hello }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WriteAction {
    /// The file (its folder must exist). Example: `path: '{{ backup_dir }}/README.txt'`
    pub path: Sp<String>,
    /// Its content (templates allowed). Example: `content: 'Backed up on {{ run.id }}'`
    pub content: Sp<String>,
    /// Replace a file that exists with other content (default: refuse). Example: `overwrite: true`
    #[serde(default)]
    pub overwrite: bool,
}

/// Checks; at least one. Example: `{ file: '{{ pfx }}', message: the .pfx is missing }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AssertAction {
    /// The path must exist. Example: `exists: '{{ install_dir }}'`
    pub exists: Option<Sp<String>>,
    /// The path must not exist. Example: `missing: 'C:/OfficeScanAuth.pfx'`
    pub missing: Option<Sp<String>>,
    /// The path must be a file. Example: `file: '{{ pfx }}'`
    pub file: Option<Sp<String>>,
    /// The path must be a folder. Example: `dir: '{{ backup_dir }}'`
    pub dir: Option<Sp<String>>,
    /// An expression that must be true. Example: `that: build < 8378`
    pub that: Option<Sp<Scalar>>,
    /// Shown when a check fails. Example: `message: 'the backup is missing'`
    pub message: Option<Sp<String>>,
}

/// `manual: INSTRUCTIONS` or `{instructions, confirm}`. Example: `Restart the console`
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ManualAction {
    Text(String),
    Full(ManualFull),
}

/// Instructions for the operator. Example: `{ instructions: Restart the console, confirm: true }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManualFull {
    /// What to do, shown to the operator (templates allowed). Example: `instructions: |` then the text
    pub instructions: Sp<String>,
    /// Wait for the operator's confirmation (default true). Example: `confirm: false`
    #[serde(default = "yes")]
    pub confirm: bool,
}

fn yes() -> bool {
    true
}

/// Another runbook and its inputs. Example: `{ runbook: lib/backup.yaml, with: { target: D:/ } }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IncludeAction {
    /// Path of the runbook to include, relative to this file. Example: `runbook: lib/backup.yaml`
    pub runbook: Sp<String>,
    /// Values for the included runbook's inputs (templates allowed). Example:
    /// `with: { target: '{{ backup_dir }}' }`
    #[serde(default, rename = "with")]
    pub with: IndexMap<String, Sp<String>>,
}

// Forms that are "a scalar or a mapping" (or "a list or a mapping") read themselves, so that a
// mistake inside the mapping still reports the precise key. The scalar's span is the span of the
// enclosing `Sp`.

macro_rules! scalar_or_struct {
    ($ty:ident, $scalar:ident, $full:ident, $what:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty::$scalar(v.to_owned()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $full::deserialize(de::value::MapAccessDeserializer::new(map)).map(|f| $ty::Full(f.into()))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

scalar_or_struct!(ShellAction, Script, ShellFull, "a script, or a mapping with `script`");
scalar_or_struct!(RemoveAction, Path, RemoveFull, "a path, or a mapping with `path`");
scalar_or_struct!(ManualAction, Text, ManualFull, "instructions, or a mapping with `instructions`");

impl<'de> Deserialize<'de> for ExecAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExecAction;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list `[program, arg, ...]` or a mapping with `program`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExecAction, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Sp<String>>()? {
                    items.push(item);
                }
                if items.is_empty() {
                    return Err(de::Error::custom("an exec list needs at least the program"));
                }
                Ok(ExecAction::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ExecAction, A::Error> {
                ExecFull::deserialize(de::value::MapAccessDeserializer::new(map)).map(|f| ExecAction::Full(Box::new(f)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

impl<'de> Deserialize<'de> for ExitCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExitCodes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an exit code or a list of exit codes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExitCodes, E> {
                i32::try_from(v).map(ExitCodes::One).map_err(|_| E::custom("exit code out of range"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExitCodes, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<i32>()? {
                    items.push(item);
                }
                Ok(ExitCodes::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl ExitCodes {
    pub fn into_vec(self) -> Vec<i32> {
        match self {
            ExitCodes::One(c) => vec![c],
            ExitCodes::Many(v) => v,
        }
    }
}
