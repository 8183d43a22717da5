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
    /// Format marker; must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub runbook: u32,
    /// Identifier of the runbook, `[a-z0-9][a-z0-9-]*`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub name: String,
    /// One-line title.
    pub title: Option<String>,
    /// When to use it and what it does; shown by `runbook show`.
    pub description: Option<String>,
    /// What a site supplies.
    pub inputs: Option<IndexMap<String, RawInput>>,
    /// Derived values, rendered in order; may use inputs and earlier vars.
    pub vars: Option<IndexMap<String, serde_json::Value>>,
    /// The steps, run in order.
    pub steps: Vec<RawStep>,
}

/// The top-level keys, in the order they are documented.
pub const TOP_LEVEL_KEYS: &[&str] = &["runbook", "name", "title", "description", "inputs", "vars", "steps"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InputType {
    #[default]
    String,
    Path,
    Int,
    Bool,
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

/// An input a site supplies.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawInput {
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<Sp<InputType>>,
    /// The value used when no layer sets one; an input without a default is required.
    pub default: Option<Sp<serde_json::Value>>,
    /// Allowed values of a `choice` input.
    pub choices: Option<Sp<Vec<String>>>,
    /// A regular expression the whole value must match.
    pub pattern: Option<Sp<String>>,
    /// Never shown, logged or stored.
    #[serde(default)]
    pub secret: bool,
}

/// One step: an `id`, exactly one action key, and common options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawStep {
    /// Unique identifier, `[a-z][a-z0-9_]*`; the journal keys on it.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"))]
    pub id: Option<Sp<String>>,
    /// Human title (default: the rendered action).
    pub name: Option<Sp<String>>,
    /// Expression; the step is skipped when it is false.
    pub when: Option<Sp<Scalar>>,
    /// Time limit, e.g. `30s`, `5m`.
    pub timeout: Option<Sp<String>>,
    /// How many times to try again after a failure.
    pub retries: Option<Sp<u32>>,
    /// Pause between tries, e.g. `5s`.
    pub retry_delay: Option<Sp<String>>,
    /// A failure is recorded and the run goes on.
    #[serde(default)]
    pub continue_on_error: bool,

    pub copy: Option<Sp<TransferAction>>,
    pub rename: Option<Sp<TransferAction>>,
    /// Working folder for later steps.
    pub cd: Option<Sp<String>>,
    pub exec: Option<Sp<ExecAction>>,
    pub shell: Option<Sp<ShellAction>>,
    pub expect_output: Option<Sp<ExpectOutputAction>>,
    /// Create a folder and its parents.
    pub mkdir: Option<Sp<String>>,
    pub remove: Option<Sp<RemoveAction>>,
    pub write: Option<Sp<WriteAction>>,
    pub assert: Option<Sp<AssertAction>>,
    /// Stop the run with this message.
    pub fail: Option<Sp<String>>,
    /// Print a line.
    pub log: Option<Sp<String>>,
    pub manual: Option<Sp<ManualAction>>,
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

/// A scalar that may be written as a boolean or as an expression string.
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

/// `copy` and `rename`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TransferAction {
    pub from: Sp<String>,
    /// Target path; with `copy`, may be an existing folder.
    pub to: Sp<String>,
    #[serde(default)]
    pub overwrite: bool,
}

/// A program run without a shell: a list `[program, arg, ...]` or the full form.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ExecAction {
    List(Vec<Sp<String>>),
    Full(Box<ExecFull>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExecFull {
    pub program: Sp<String>,
    #[serde(default)]
    pub args: Vec<Sp<String>>,
    #[serde(default)]
    pub env: IndexMap<String, Sp<String>>,
    /// Text written to the program's standard input.
    pub stdin: Option<Sp<String>>,
    /// Output encoding, e.g. `shift_jis`, `utf-16le` (default UTF-8).
    pub encoding: Option<Sp<String>>,
    /// A probe without side effects: it also runs in a dry run.
    #[serde(default)]
    pub read_only: bool,
    /// Running it again after an interruption is safe.
    #[serde(default)]
    pub idempotent: bool,
    pub expect: Option<Sp<Expectation>>,
}

/// A script run by the platform shell: a string or `{script, shell}`.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ShellAction {
    Script(String),
    Full(Box<ShellFull>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ShellFull {
    pub script: Sp<String>,
    /// The shell program (default `sh`, or `cmd` on Windows).
    pub shell: Option<Sp<String>>,
    #[serde(default)]
    pub idempotent: bool,
    pub expect: Option<Sp<Expectation>>,
}

/// What a command's output must show.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expectation {
    pub contains: Option<Sp<OneOrMany>>,
    pub not_contains: Option<Sp<OneOrMany>>,
    /// A regular expression; named groups become `steps.<id>.captures`.
    pub matches: Option<Sp<String>>,
    pub stream: Option<Sp<Stream>>,
    /// The exit code (or codes) that count as success (default 0).
    pub exit_code: Option<Sp<ExitCodes>>,
}

/// Checks an earlier exec/shell step's captured output.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectOutputAction {
    /// The exec/shell step whose output is checked (default: the most recent one).
    pub step: Option<Sp<String>>,
    pub contains: Option<Sp<OneOrMany>>,
    pub not_contains: Option<Sp<OneOrMany>>,
    /// A regular expression; named groups become `steps.<id>.captures`.
    pub matches: Option<Sp<String>>,
    pub stream: Option<Sp<Stream>>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stream {
    Stdout,
    Stderr,
    #[default]
    Any,
}

#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ExitCodes {
    One(i32),
    Many(Vec<i32>),
}

/// `remove: PATH` or `{path, recursive}`.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum RemoveAction {
    Path(String),
    Full(RemoveFull),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RemoveFull {
    pub path: Sp<String>,
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WriteAction {
    pub path: Sp<String>,
    pub content: Sp<String>,
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AssertAction {
    /// The path must exist.
    pub exists: Option<Sp<String>>,
    /// The path must not exist.
    pub missing: Option<Sp<String>>,
    /// The path must be a file.
    pub file: Option<Sp<String>>,
    /// The path must be a folder.
    pub dir: Option<Sp<String>>,
    /// An expression that must be true.
    pub that: Option<Sp<Scalar>>,
    /// Shown when a check fails.
    pub message: Option<Sp<String>>,
}

/// `manual: INSTRUCTIONS` or `{instructions, confirm}`.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ManualAction {
    Text(String),
    Full(ManualFull),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManualFull {
    pub instructions: Sp<String>,
    #[serde(default = "yes")]
    pub confirm: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IncludeAction {
    /// Path of the runbook to include, relative to this file.
    pub runbook: Sp<String>,
    /// Values for the included runbook's inputs.
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
