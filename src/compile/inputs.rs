//! Input values: the layers that set them, their types, and where each one came from.
//!
//! Layers, lowest to highest: `default` < the values a run or a reviewed plan recorded (when
//! continuing one) < each `--vars FILE` in order < `RUNBOOK_INPUT_<NAME>` < `--var name=value`; a
//! required input still missing is asked for on a terminal. Nothing here reads the process's
//! environment or terminal: the caller hands both over in [`InputArgs`].

use std::fmt;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::Value as J;

use crate::compile::runbook::{InputDef, Runbook};
use crate::format::diagnostic::{Diagnostic, did_you_mean, near_miss};
use crate::format::model::InputType;
use crate::format::source::{Located, Source, Span};
use crate::format::yaml::{self, NodeKind};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Origin {
    Default,
    VarsFile {
        path: PathBuf,
    },
    Env {
        name: String,
    },
    Cli,
    Prompt,
    /// Recorded by the run being continued, or by the reviewed plan being run.
    Recorded {
        by: String,
    },
    /// A secret a plan does without: the run asks for it.
    AskedAtRunTime,
    /// `--secrets-from FILE` or `-` (standard input).
    Secrets {
        from: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::VarsFile { path } => write!(f, "--vars {}", crate::format::source::display_path(path)),
            Origin::Env { name } => write!(f, "environment {name}"),
            Origin::Cli => f.write_str("--var"),
            Origin::Prompt => f.write_str("prompt"),
            Origin::Recorded { by } => write!(f, "recorded by {by}"),
            Origin::AskedAtRunTime => f.write_str("asked at run time"),
            Origin::Secrets { from } => write!(f, "--secrets-from {from}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InputValue {
    pub value: J,
    pub origin: Origin,
}

/// Asks the operator for an input's value (a secret without echo).
pub type Prompt = fn(&InputDef) -> std::io::Result<String>;

/// Where input values may come from.
#[derive(Debug, Clone, Default)]
pub struct InputArgs {
    pub vars_files: Vec<PathBuf>,
    /// `--secrets-from`: where from, and its text (or why it could not be read).
    pub secrets: Option<(PathBuf, Result<String, String>)>,
    pub vars: Vec<String>,
    /// The environment's `RUNBOOK_INPUT_*` variables, as the process saw them.
    pub environment: Vec<(String, String)>,
    /// Values recorded by the run being continued or the plan being run, and by which.
    pub recorded: Option<(IndexMap<String, J>, String)>,
    /// Asks for what is still missing (none in CI or without a terminal).
    pub prompt: Option<Prompt>,
    /// A secret no layer sets is left for the run to ask for (a plan needs none), never asked
    /// for now.
    pub secrets_at_run_time: bool,
}

impl InputArgs {
    /// The `RUNBOOK_INPUT_*` variables of this process's environment.
    pub fn environment_of_process() -> Vec<(String, String)> {
        std::env::vars().filter(|(k, _)| k.starts_with("RUNBOOK_INPUT_")).collect()
    }
}

/// The resolved values, in the runbook's declaration order.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub values: IndexMap<String, InputValue>,
}

impl Inputs {
    pub fn get(&self, name: &str) -> Option<&J> {
        self.values.get(name).map(|v| &v.value)
    }

    /// The values that may be written down (journal, saved plan): every one but the secrets.
    pub fn recordable(&self, runbook: &Runbook) -> IndexMap<String, J> {
        self.values
            .iter()
            .filter(|(k, _)| !runbook.inputs.get(*k).is_some_and(|d| d.secret))
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }

    /// The secrets left for the run to ask for.
    pub fn asked_at_run_time(&self) -> impl Iterator<Item = &str> {
        self.values.iter().filter(|(_, v)| v.origin == Origin::AskedAtRunTime).map(|(k, _)| k.as_str())
    }

    /// What hides the secret values wherever text leaves the process.
    pub fn masker(&self, runbook: &Runbook) -> crate::format::mask::Masker {
        let secrets: Vec<String> = runbook
            .secret_names()
            .filter_map(|n| self.values.get(n))
            .filter(|v| v.origin != Origin::AskedAtRunTime)
            .map(|v| match &v.value {
                J::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        crate::format::mask::Masker::new(secrets.iter().map(String::as_str))
    }
}

/// What a plan shows in place of a secret it does without.
pub fn asked_at_run_time(name: &str) -> String {
    format!("<secret {name}: asked at run time>")
}

/// The environment variable that sets an input.
pub fn env_name(input: &str) -> String {
    format!("RUNBOOK_INPUT_{}", input.to_ascii_uppercase().replace('-', "_"))
}

/// Resolves every input of `runbook`; all problems are reported together.
pub fn resolve(runbook: &Runbook, args: &InputArgs) -> Result<(Inputs, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut r = Resolution { runbook, values: IndexMap::new(), errors: Vec::new(), warnings: Vec::new() };
    for def in runbook.inputs.values() {
        if let Some(d) = &def.default {
            r.values.insert(def.name.clone(), InputValue { value: d.clone(), origin: Origin::Default });
        }
    }
    if let Some((recorded, by)) = &args.recorded {
        // A recorded value of an input the runbook no longer has is left for the caller to
        // report (the runbook changed); one that no longer fits is an error.
        for (name, value) in recorded {
            if let Some(def) = runbook.inputs.get(name) {
                r.set(def, value, Origin::Recorded { by: by.clone() }, None);
            }
        }
    }
    for path in &args.vars_files {
        r.vars_file(path);
    }
    if let Some((from, text)) = &args.secrets {
        match text {
            Ok(text) => r.vars_text(from, text.clone(), Origin::Secrets { from: from.display().to_string() }),
            Err(e) => r.errors.push(Diagnostic::error(format!("--secrets-from {}: {e}", from.display()))),
        }
    }
    for def in runbook.inputs.values() {
        let name = env_name(&def.name);
        if let Some((_, text)) = args.environment.iter().find(|(k, _)| *k == name) {
            r.set(def, &J::String(text.clone()), Origin::Env { name }, None);
        }
    }
    for pair in &args.vars {
        r.command_line(pair);
    }
    r.missing(args.prompt, args.secrets_at_run_time);
    r.finish()
}

/// The values so far, and every problem met.
struct Resolution<'a> {
    runbook: &'a Runbook,
    values: IndexMap<String, InputValue>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Resolution<'_> {
    /// A value from one layer, checked against the input's type; `at` is where it was written.
    fn set(&mut self, def: &InputDef, raw: &J, origin: Origin, at: Option<Located>) {
        match coerce(def, raw) {
            Ok(value) => {
                self.values.insert(def.name.clone(), InputValue { value, origin });
            }
            Err(why) => {
                let d = bad_value(def, raw, &origin, &why);
                self.errors.push(match at {
                    Some(at) => d.at(at),
                    None => d,
                });
            }
        }
    }

    /// A `--vars FILE`: names that are not this runbook's inputs are left alone (a site file
    /// serves several runbooks), unless one looks like a slip of the pen.
    fn vars_file(&mut self, path: &std::path::Path) {
        match crate::format::file::read_text(path) {
            Ok(text) => self.vars_text(path, text, Origin::VarsFile { path: path.to_path_buf() }),
            Err(d) => self.errors.push(d),
        }
    }

    /// A mapping of input values read from `path` (a `--vars` file, or `--secrets-from`).
    fn vars_text(&mut self, path: &std::path::Path, text: String, origin: Origin) {
        let (source, entries) = match parse_vars(path, text) {
            Ok(read) => read,
            Err(d) => return self.errors.push(d),
        };
        for (name, value, key_span, span) in entries {
            let Some(def) = self.runbook.inputs.get(&name) else {
                if let Some(s) = near_miss(&name, self.runbook.inputs.keys().map(String::as_str)) {
                    self.warnings.push(
                        Diagnostic::warning(format!("`{name}` is not an input of `{}`", self.runbook.name))
                            .at(Located::new(&source, key_span))
                            .hint(format!("did you mean `{s}`?")),
                    );
                }
                continue;
            };
            // A secret's value is never shown, even where it is written.
            let at = (!def.secret).then(|| Located::new(&source, span));
            self.set(def, &value, origin.clone(), at);
        }
    }

    /// A `--var name=value`.
    fn command_line(&mut self, pair: &str) {
        let Some((name, text)) = pair.split_once('=') else {
            return self.errors.push(
                Diagnostic::error(format!("`--var {pair}` is not of the form name=value"))
                    .hint("write `--var install_dir=D:/Apex One`"),
            );
        };
        let name = name.trim();
        let Some(def) = self.runbook.inputs.get(name) else {
            let inputs = || self.runbook.inputs.keys().cloned().collect::<Vec<_>>().join(", ");
            let hint = did_you_mean(name, self.runbook.inputs.keys().map(String::as_str))
                .map_or_else(|| format!("its inputs are: {}", inputs()), |s| format!("did you mean `{s}`?"));
            let d = Diagnostic::error(format!("`{name}` is not an input of `{}`", self.runbook.name)).hint(hint);
            return self.errors.push(d);
        };
        self.set(def, &J::String(text.to_owned()), Origin::Cli, None);
    }

    /// Inputs no layer set: asked for when possible, errors otherwise.
    fn missing(&mut self, prompt: Option<Prompt>, secrets_at_run_time: bool) {
        for def in self.runbook.inputs.values() {
            if self.values.contains_key(&def.name) {
                continue;
            }
            if def.secret && secrets_at_run_time {
                let value = J::String(asked_at_run_time(&def.name));
                self.values.insert(def.name.clone(), InputValue { value, origin: Origin::AskedAtRunTime });
                continue;
            }
            if let Some(prompt) = prompt {
                match prompt(def) {
                    Ok(text) => self.set(def, &J::String(text), Origin::Prompt, None),
                    Err(e) => self.errors.push(Diagnostic::error(format!("could not read input `{}`: {e}", def.name))),
                }
                continue;
            }
            let how = if def.secret {
                format!("set {} in the environment (or give `--var {}=...`)", env_name(&def.name), def.name)
            } else {
                format!("give `--var {}=...`, a `--vars FILE` that sets it, or set {}", def.name, env_name(&def.name))
            };
            let d = Diagnostic::error(format!("missing required input `{}`", def.name)).at(def.loc.clone()).hint(how);
            self.errors.push(d);
        }
    }

    fn finish(mut self) -> Result<(Inputs, Vec<Diagnostic>), Vec<Diagnostic>> {
        if !self.errors.is_empty() {
            self.errors.extend(self.warnings);
            return Err(self.errors);
        }
        // In declaration order.
        let mut ordered = IndexMap::new();
        for name in self.runbook.inputs.keys() {
            if let Some(v) = self.values.shift_remove(name) {
                ordered.insert(name.clone(), v);
            }
        }
        Ok((Inputs { values: ordered }, self.warnings))
    }
}

fn bad_value(def: &InputDef, value: &J, origin: &Origin, why: &str) -> Diagnostic {
    let shown = if def.secret {
        "****".to_string()
    } else {
        match value {
            J::String(s) => format!("{s:?}"),
            other => other.to_string(),
        }
    };
    Diagnostic::error(format!("invalid value {shown} for input `{}` (from {origin}): {why}", def.name))
        .hint(describe_type(def))
}

fn describe_type(def: &InputDef) -> String {
    let what = match_type(def);
    match &def.description {
        Some(d) => format!("{what} ({}: {d})", def.name),
        None => what,
    }
}

fn match_type(def: &InputDef) -> String {
    match def.ty {
        InputType::Int => "give a whole number".into(),
        InputType::Bool => "give true or false".into(),
        InputType::Choice => format!("give one of: {}", def.choices.join(", ")),
        InputType::String | InputType::Path => match &def.pattern {
            Some(p) => format!(
                "the value must match the pattern {}",
                p.as_str().trim_start_matches("^(?:").trim_end_matches(")$")
            ),
            None => "give a text value".into(),
        },
    }
}

/// Checks `value` against the input's type, returning the typed value.
pub fn coerce(def: &InputDef, value: &J) -> Result<J, String> {
    let typed = match (def.ty, value) {
        (InputType::Int, J::Number(n)) if n.is_i64() => value.clone(),
        (InputType::Int, J::String(s)) => {
            s.trim().parse::<i64>().map(J::from).map_err(|_| "not a whole number".to_string())?
        }
        (InputType::Int, _) => return Err("not a whole number".into()),
        (InputType::Bool, J::Bool(_)) => value.clone(),
        (InputType::Bool, J::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => J::Bool(true),
            "false" | "no" | "0" => J::Bool(false),
            _ => return Err("not true or false".into()),
        },
        (InputType::Bool, _) => return Err("not true or false".into()),
        (_, J::String(_)) => value.clone(),
        (_, J::Number(n)) => J::String(n.to_string()),
        (_, J::Bool(b)) => J::String(b.to_string()),
        (_, J::Null) => return Err("empty".into()),
        (_, _) => return Err("a list or mapping where text was expected".into()),
    };
    if let J::String(s) = &typed {
        if def.ty == InputType::Choice && !def.choices.iter().any(|c| c == s) {
            return Err(format!("not one of the choices ({})", def.choices.join(", ")));
        }
        if let Some(p) = &def.pattern
            && !p.is_match(s)
        {
            return Err("does not match the input's pattern".into());
        }
    }
    Ok(typed)
}

/// Each entry: name, value, the key's span, the value's span.
type VarsEntries = (std::sync::Arc<Source>, Vec<(String, J, Span, Span)>);

fn parse_vars(path: &std::path::Path, text: String) -> Result<VarsEntries, Diagnostic> {
    let source = Source::new(path, text);
    let root = yaml::parse(&source.text).map_err(|e| {
        let offset = source.offset_of(e.line, e.col);
        Diagnostic::error(format!("invalid YAML in input file: {}", e.message))
            .at(Located::new(&source, Span::new(offset, 1)))
            .hint(e.hint())
    })?;
    let entries = match &root.kind {
        NodeKind::Map(entries) => entries,
        NodeKind::Null => return Ok((source, Vec::new())),
        _ => {
            return Err(Diagnostic::error(format!(
                "an input file must be a mapping of input names to values, not {}",
                root.describe()
            ))
            .at(Located::new(&source, root.span))
            .hint("write one `name: value` per line"));
        }
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let Some(name) = k.scalar_text() else {
            return Err(Diagnostic::error("input names must be strings").at(Located::new(&source, k.span)));
        };
        out.push((name, v.to_json(), k.span, v.span));
    }
    Ok((source, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::source::Source;

    fn def(ty: InputType) -> InputDef {
        InputDef {
            name: "x".into(),
            description: None,
            ty,
            default: None,
            choices: vec!["apex-one".into(), "officescan".into()],
            pattern: None,
            secret: false,
            loc: Located::new(&Source::new("t.yaml", String::new()), Span::default()),
        }
    }

    #[test]
    fn coercion() {
        assert_eq!(coerce(&def(InputType::Int), &J::from("8378")).unwrap(), J::from(8378));
        assert!(coerce(&def(InputType::Int), &J::from("83a")).is_err());
        assert_eq!(coerce(&def(InputType::Bool), &J::from("yes")).unwrap(), J::Bool(true));
        assert!(coerce(&def(InputType::Bool), &J::from(3)).is_err());
        assert!(coerce(&def(InputType::Choice), &J::from("apex")).is_err());
        assert_eq!(coerce(&def(InputType::String), &J::from(5)).unwrap(), J::from("5"));
        let mut d = def(InputType::String);
        d.pattern = Some(regex::Regex::new("^(?:[0-9]+)$").unwrap());
        assert!(coerce(&d, &J::from("12")).is_ok());
        assert!(coerce(&d, &J::from("12a")).is_err());
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("install_dir"), "RUNBOOK_INPUT_INSTALL_DIR");
    }
}
