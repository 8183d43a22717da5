//! The template environment: minijinja with strict undefined, no auto-escaping, bounded fuel,
//! and the runbook functions and filters. Each runbook's templates are compiled once, when it is
//! loaded, into an environment of its own ([`Templates`]); its expressions (`when`, `that`) into
//! owned [`Compiled`] expressions. Rendering never parses again.
//!
//! Errors are reported from `kind` and `detail` only, never with minijinja's debug info, which
//! would print variable values (and so secrets).

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use minijinja::value::Value;
use minijinja::{Environment, ErrorKind, Expression, UndefinedBehavior};

/// Enough for any sensible template; stops loops that would run for ever.
const FUEL: u64 = 200_000;
/// A rendered value larger than this is refused.
pub const MAX_RENDERED: usize = 16 * 1024 * 1024;

/// Names every template may use besides inputs, vars and `steps`.
pub const BUILTIN_NAMES: &[&str] = &["env", "os", "run", "exists", "is_file", "is_dir", "path_join"];
/// Fields of `steps.<id>`.
pub const STEP_FIELDS: &[&str] = &["stdout", "stderr", "exit_code", "captures", "status"];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // Debug info would put variable values (secrets) into error displays.
    env.set_debug(false);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("default delimiters are valid"),
    );
    env.add_function("path_join", path_join);
    env.add_filter("basename", |p: &str| basename(p).to_owned());
    env.add_filter("dirname", |p: &str| dirname(p).to_owned());
    env.add_filter("stem", |p: &str| stem(p).to_owned());
    env.add_filter("with_extension", |p: &str, ext: &str| with_extension(p, ext));
    env
});

/// Functions and globals minijinja itself provides (`range`, `dict`, ...).
pub fn is_engine_global(name: &str) -> bool {
    ENV.globals().any(|(n, _)| n == name)
}

/// What a template calls by name that may not exist: a filter (`x | name`), a test
/// (`x is name`) or a function (`name(...)`). minijinja resolves these only when it renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Callable {
    Filter,
    Test,
    Function,
}

impl Callable {
    pub fn word(self) -> &'static str {
        match self {
            Callable::Filter => "filter",
            Callable::Test => "test",
            Callable::Function => "function",
        }
    }

    /// Whether the template environment knows `name` of this kind (asked of minijinja once per
    /// name: a probe that fails only when the name is unknown).
    pub fn exists(self, name: &str) -> bool {
        static KNOWN: LazyLock<std::sync::Mutex<std::collections::HashMap<(Callable, String), bool>>> =
            LazyLock::new(Default::default);
        let key = (self, name.to_owned());
        if let Some(known) = KNOWN.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return *known;
        }
        let known = match self {
            Callable::Function => {
                FUNCTIONS.contains(&name)
                    || ENV.globals().any(|(n, v)| n == name && v.kind() != minijinja::value::ValueKind::Undefined)
            }
            Callable::Filter => probe(&format!("{{{{ none | {name} }}}}"), ErrorKind::UnknownFilter),
            Callable::Test => probe(&format!("{{{{ none is {name} }}}}"), ErrorKind::UnknownTest),
        };
        KNOWN.lock().unwrap_or_else(|e| e.into_inner()).insert(key, known);
        known
    }

    /// The names of this kind a slip of the pen most likely meant (for did-you-mean).
    pub fn candidates(self) -> Vec<&'static str> {
        let all: &[&'static str] = match self {
            Callable::Filter => FILTER_NAMES,
            Callable::Test => TEST_NAMES,
            Callable::Function => &["range", "dict", "namespace", "path_join", "exists", "is_file", "is_dir"],
        };
        all.iter().copied().filter(|n| self.exists(n)).collect()
    }
}

/// Functions the runbook scope provides (besides the environment's globals).
const FUNCTIONS: &[&str] = &["exists", "is_file", "is_dir", "path_join"];

/// Filters and tests minijinja and the runbook add, as far as suggestions go.
const FILTER_NAMES: &[&str] = &[
    "abs",
    "attr",
    "basename",
    "batch",
    "bool",
    "capitalize",
    "count",
    "default",
    "dictsort",
    "dirname",
    "escape",
    "first",
    "float",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "stem",
    "string",
    "sum",
    "title",
    "trim",
    "unique",
    "upper",
    "with_extension",
];
const TEST_NAMES: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "even",
    "false",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "true",
    "undefined",
    "upper",
];

fn probe(template: &str, unknown: ErrorKind) -> bool {
    !matches!(ENV.render_str(template, ()), Err(e) if e.kind() == unknown)
}

/// Whether `text` needs rendering at all (most strings are plain text).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    /// Byte range inside the template text, when minijinja knows it.
    pub range: Option<std::ops::Range<usize>>,
    /// An undefined name was used (so the value may simply not be known yet).
    pub undefined: bool,
}

fn convert(e: &minijinja::Error) -> TemplateError {
    let what = match e.kind() {
        ErrorKind::SyntaxError => "template syntax error",
        ErrorKind::UndefinedError => "undefined value",
        ErrorKind::UnknownFilter => "unknown filter",
        ErrorKind::UnknownFunction => "unknown function",
        ErrorKind::UnknownTest => "unknown test",
        ErrorKind::UnknownMethod => "unknown method",
        ErrorKind::InvalidOperation => "invalid operation",
        ErrorKind::TooManyArguments => "too many arguments",
        ErrorKind::MissingArgument => "missing argument",
        ErrorKind::OutOfFuel => "the template did too much work (a loop that does not end?)",
        _ => "template error",
    };
    let message = match e.detail() {
        Some(detail) => format!("{what}: {detail}"),
        None => what.to_string(),
    };
    TemplateError { message, range: e.range(), undefined: e.kind() == ErrorKind::UndefinedError }
}

/// How many compiled templates (or expressions) are kept at once. minijinja reserves about 12 KiB
/// for each compiled template, so keeping every one of a 10,000-step runbook would hold over
/// 100 MiB; a template renders once a step (again on a retry), and the last ones rendered are
/// the ones rendered again.
const KEEP: usize = 256;

/// A template of a runbook's [`Templates`]: its place in their list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateId(usize);

impl TemplateId {
    /// The name minijinja knows it by while it is compiled.
    fn name(self) -> String {
        format!("t{}", self.0)
    }
}

/// One runbook's templates by id: checked when the runbook loads, compiled when first rendered
/// and kept compiled (the most recently used [`KEEP`]), so a retry or a loop does not parse again.
#[derive(Debug, Default)]
pub struct Templates {
    sources: Vec<Arc<str>>,
    compiled: std::sync::Mutex<Option<Cache>>,
}

/// The compiled templates and their order of use, oldest first.
#[derive(Debug)]
struct Cache {
    env: Environment<'static>,
    used: std::collections::VecDeque<usize>,
}

impl Templates {
    /// Checks a template's syntax and returns its id and the dotted names it reads
    /// (`steps.x.stdout`, `install_dir`).
    pub fn add(&mut self, text: &str) -> Result<(TemplateId, BTreeSet<String>), TemplateError> {
        let names = {
            let template = ENV.template_from_str(text).map_err(|e| convert(&e))?;
            template.undeclared_variables(true).into_iter().collect()
        };
        let id = TemplateId(self.sources.len());
        self.sources.push(Arc::from(text));
        Ok((id, names))
    }

    /// Renders the template `id` (which `add` gave).
    pub fn render(&self, id: TemplateId, ctx: &Value) -> Result<String, TemplateError> {
        let TemplateId(index) = id;
        let name = id.name();
        let mut guard = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        let cache = guard.get_or_insert_with(|| Cache { env: ENV.clone(), used: Default::default() });
        match cache.used.iter().position(|&i| i == index) {
            Some(at) => {
                cache.used.remove(at);
            }
            None => {
                cache.env.add_template_owned(name.clone(), self.sources[index].to_string()).map_err(|e| convert(&e))?;
                if cache.used.len() >= KEEP
                    && let Some(oldest) = cache.used.pop_front()
                {
                    cache.env.remove_template(&TemplateId(oldest).name());
                }
            }
        }
        cache.used.push_back(index);
        let out = cache.env.get_template(&name).and_then(|t| t.render(ctx)).map_err(|e| convert(&e))?;
        if out.len() > MAX_RENDERED {
            return Err(TemplateError {
                message: format!("the rendered text is larger than {} MiB", MAX_RENDERED >> 20),
                range: None,
                undefined: false,
            });
        }
        Ok(out)
    }
}

/// An expression (`when`, `assert.that`): checked when the runbook loads, compiled when first
/// evaluated and kept compiled (the most recently used [`KEEP`] of the process).
#[derive(Debug, Clone)]
pub struct Compiled(Arc<str>);

type Expr = Arc<Expression<'static, 'static>>;

/// Compiled expressions by text, and their order of use (oldest first).
#[derive(Default)]
struct Expressions {
    known: std::collections::HashMap<Arc<str>, Expr>,
    used: std::collections::VecDeque<Arc<str>>,
}

static EXPRESSIONS: LazyLock<std::sync::Mutex<Expressions>> = LazyLock::new(Default::default);

impl Compiled {
    /// Checks an expression's syntax; returns it with the dotted names it reads.
    pub fn new(expr: &str) -> Result<(Compiled, BTreeSet<String>), TemplateError> {
        let compiled = ENV.compile_expression(expr).map_err(|e| convert(&e))?;
        let names = compiled.undeclared_variables(true).into_iter().collect();
        Ok((Compiled(Arc::from(expr)), names))
    }

    fn compiled(&self) -> Result<Expr, TemplateError> {
        let mut guard = EXPRESSIONS.lock().unwrap_or_else(|e| e.into_inner());
        let Expressions { known, used } = &mut *guard;
        if let Some(e) = known.get(&self.0) {
            let e = e.clone();
            if let Some(at) = used.iter().position(|t| *t == self.0) {
                used.remove(at);
            }
            used.push_back(self.0.clone());
            return Ok(e);
        }
        let e: Expr = Arc::new(ENV.compile_expression_owned(self.0.to_string()).map_err(|e| convert(&e))?);
        if used.len() >= KEEP
            && let Some(oldest) = used.pop_front()
        {
            known.remove(&oldest);
        }
        known.insert(self.0.clone(), e.clone());
        used.push_back(self.0.clone());
        Ok(e)
    }

    /// Evaluates it; an undefined result is an error, never false.
    pub fn eval(&self, ctx: &Value) -> Result<Value, TemplateError> {
        let value = self.compiled()?.eval(ctx.clone()).map_err(|e| convert(&e))?;
        if value.is_undefined() {
            return Err(TemplateError { message: "the expression is undefined".into(), range: None, undefined: true });
        }
        Ok(value)
    }
}

/// Checks syntax and returns the dotted names a template reads, without keeping it.
pub fn analyze(text: &str) -> Result<BTreeSet<String>, TemplateError> {
    if !is_template(text) {
        return Ok(BTreeSet::new());
    }
    let template = ENV.template_from_str(text).map_err(|e| convert(&e))?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

// --- path helpers, string based so a runbook for Windows plans the same on any machine -------

fn is_sep(c: char) -> bool {
    c == '/' || c == '\\'
}

fn is_absolute(p: &str) -> bool {
    p.starts_with(is_sep) || (p.len() >= 2 && p.as_bytes()[1] == b':' && p.as_bytes()[0].is_ascii_alphabetic())
}

/// Joins path parts with the separator the first part uses (`\` only if it has no `/`); on
/// Windows the result is spelled with `\` throughout, as the programs there expect.
pub fn path_join(parts: minijinja::value::Rest<String>) -> String {
    crate::os::path::native_text(&join_parts(&parts))
}

fn join_parts(parts: &[String]) -> String {
    let mut out = String::new();
    for part in parts {
        if out.is_empty() || is_absolute(part) {
            out = part.clone();
            continue;
        }
        if part.is_empty() {
            continue;
        }
        let sep = if out.contains('\\') && !out.contains('/') { '\\' } else { '/' };
        if !out.ends_with(is_sep) {
            out.push(sep);
        }
        out.push_str(part.trim_start_matches(is_sep));
    }
    out
}

pub fn basename(p: &str) -> &str {
    let trimmed = p.trim_end_matches(is_sep);
    trimmed.rsplit(is_sep).next().unwrap_or(trimmed)
}

pub fn dirname(p: &str) -> &str {
    let trimmed = p.trim_end_matches(is_sep);
    match trimmed.rfind(is_sep) {
        Some(0) => &trimmed[..1],
        Some(i) => &trimmed[..i],
        None => "",
    }
}

pub fn stem(p: &str) -> &str {
    let base = basename(p);
    match base.rfind('.') {
        Some(0) | None => base,
        Some(i) => &base[..i],
    }
}

pub fn with_extension(p: &str, ext: &str) -> String {
    let base = basename(p);
    let keep = p.trim_end_matches(is_sep);
    let dir_len = keep.len() - base.len();
    let ext = ext.trim_start_matches('.');
    let new_base = if ext.is_empty() { stem(p).to_owned() } else { format!("{}.{ext}", stem(p)) };
    format!("{}{new_base}", &keep[..dir_len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn render(text: &str, ctx: &Value) -> Result<String, TemplateError> {
        let mut templates = Templates::default();
        let (name, _) = templates.add(text)?;
        templates.render(name, ctx)
    }

    fn eval(expr: &str, ctx: &Value) -> Result<Value, TemplateError> {
        Compiled::new(expr)?.0.eval(ctx)
    }

    fn join(parts: &[&str]) -> String {
        join_parts(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn path_join_cases() {
        assert_eq!(join(&["C:/", "OfficeScanAuth.pfx"]), "C:/OfficeScanAuth.pfx");
        assert_eq!(join(&["a", "b", "c"]), "a/b/c");
        assert_eq!(join(&["a/", "b/"]), "a/b/");
        assert_eq!(join(&["a/", "/b"]), "/b");
        assert_eq!(join(&["C:\\Temp", "x.pfx"]), "C:\\Temp\\x.pfx");
        assert_eq!(join(&["a", "/abs"]), "/abs");
        assert_eq!(join(&["a", "D:/x"]), "D:/x");
        assert_eq!(join(&["a", ""]), "a");
        assert_eq!(join(&["/"]), "/");
        assert_eq!(join(&[r"\\server\share", "dir", "f.pfx"]), r"\\server\share\dir\f.pfx");
        assert_eq!(join(&["C:/", r"\\server\x"]), r"\\server\x");
    }

    #[test]
    fn filters() {
        assert_eq!(basename("/a/b/OfficeScanAuth.dat"), "OfficeScanAuth.dat");
        assert_eq!(basename("C:\\x\\y.dat"), "y.dat");
        assert_eq!(basename("dir/"), "dir");
        assert_eq!(dirname("/a/b/c.txt"), "/a/b");
        assert_eq!(dirname("/c.txt"), "/");
        assert_eq!(dirname("c.txt"), "");
        assert_eq!(stem("/a/OfficeScanAuth.dat"), "OfficeScanAuth");
        assert_eq!(stem(".bashrc"), ".bashrc");
        assert_eq!(stem("a.tar.gz"), "a.tar");
        assert_eq!(with_extension("/a/OfficeScanAuth.dat", "pfx"), "/a/OfficeScanAuth.pfx");
        assert_eq!(with_extension("x.dat", ".pfx"), "x.pfx");
        assert_eq!(with_extension("noext", "txt"), "noext.txt");
        assert_eq!(with_extension("a.b", ""), "a");
    }

    #[test]
    fn rendering_is_strict_and_unescaped() {
        let ctx = Value::from(minijinja::value::Serde(context! { a => "<x & y>" }));
        assert_eq!(render("{{ a }}", &ctx).unwrap(), "<x & y>");
        let err = render("{{ nope }}", &ctx).unwrap_err();
        assert!(err.undefined, "{err:?}");
        assert_eq!(render("{{ a | basename }}", &ctx).unwrap(), "<x & y>");
    }

    #[test]
    fn undefined_expression_is_an_error() {
        let ctx = Value::from(minijinja::value::Serde(context! { a => 1 }));
        assert!(eval("missing", &ctx).is_err());
        assert!(eval("a == 1", &ctx).unwrap().is_true());
    }

    #[test]
    fn endless_loops_run_out_of_fuel() {
        let ctx = Value::from(minijinja::value::Serde(context! {}));
        let err = render("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", &ctx)
            .unwrap_err();
        assert!(err.message.contains("too much work"), "{err:?}");
    }

    #[test]
    fn unknown_filters_tests_and_functions_are_told_apart() {
        assert!(Callable::Filter.exists("upper") && Callable::Filter.exists("basename"));
        assert!(!Callable::Filter.exists("upcase"));
        assert!(Callable::Test.exists("defined") && !Callable::Test.exists("definied"));
        assert!(Callable::Function.exists("range") && Callable::Function.exists("exists"));
        assert!(!Callable::Function.exists("lenght"));
        // Every suggestion is one that exists.
        for kind in [Callable::Filter, Callable::Test, Callable::Function] {
            assert!(kind.candidates().len() > 5, "{kind:?}");
        }
        assert_eq!(Callable::Filter.candidates().len(), FILTER_NAMES.len(), "a listed filter does not exist");
        assert_eq!(Callable::Test.candidates().len(), TEST_NAMES.len(), "a listed test does not exist");
    }

    #[test]
    fn analysis_lists_dotted_names() {
        let names = analyze("{{ steps.import.stdout }} {{ path_join(a, b) }} {{ x | basename }}").unwrap();
        assert!(names.contains("steps.import.stdout"), "{names:?}");
        assert!(names.contains("a") && names.contains("x"), "{names:?}");
        assert!(analyze("{{ a ").is_err());
    }
}
