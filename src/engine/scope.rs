//! What templates see while a runbook runs or is planned: inputs, vars, `steps.<id>`, `env`,
//! `os`, `run`, and the filesystem functions, which ask a [`FsView`] so that a plan sees the
//! filesystem as earlier steps would have left it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error as MjError, State};

/// The kind of thing at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Answers "what is at this path" for the template functions.
pub trait FsView: Send + Sync + fmt::Debug {
    fn kind(&self, path: &Path) -> Option<Kind>;
}

/// The real filesystem.
#[derive(Debug, Default)]
pub struct RealFs;

impl FsView for RealFs {
    fn kind(&self, path: &Path) -> Option<Kind> {
        let meta = std::fs::metadata(path).ok()?;
        Some(if meta.is_dir() { Kind::Dir } else { Kind::File })
    }
}

/// Run-wide facts shared by every scope of a run.
#[derive(Debug)]
pub struct Shared {
    pub fs: Arc<dyn FsView>,
    pub cwd: Mutex<PathBuf>,
    pub run_id: String,
    pub dry_run: bool,
}

impl Shared {
    pub fn cwd(&self) -> PathBuf {
        self.cwd.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_cwd(&self, path: PathBuf) {
        *self.cwd.lock().unwrap_or_else(|e| e.into_inner()) = path;
    }

    /// A path as a step means it: relative paths are taken from the current `cd` folder, and
    /// every path is spelled the system's way (one separator on Windows).
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = crate::os::path::native(path);
        if p.is_absolute() { p } else { self.cwd().join(p) }
    }
}

/// The names one runbook's templates see. An included runbook gets a scope of its own.
#[derive(Debug)]
pub struct Scope {
    pub shared: Arc<Shared>,
    values: Mutex<IndexMap<String, Value>>,
    steps: Arc<StepsView>,
}

#[derive(Debug, Default)]
pub struct StepsView(Mutex<IndexMap<String, Value>>);

impl Object for StepsView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key.as_str()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> =
            self.0.lock().unwrap_or_else(|e| e.into_inner()).keys().map(|k| Value::from(k.as_str())).collect();
        Enumerator::Values(keys)
    }
}

impl Scope {
    pub fn new(shared: Arc<Shared>) -> Arc<Scope> {
        Arc::new(Scope { shared, values: Mutex::new(IndexMap::new()), steps: Arc::new(StepsView::default()) })
    }

    pub fn set_value(&self, name: &str, value: Value) {
        self.values.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), value);
    }

    pub fn set_step(&self, id: &str, value: Value) {
        self.steps.0.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_owned(), value);
    }

    pub fn forget_step(&self, id: &str) {
        self.steps.0.lock().unwrap_or_else(|e| e.into_inner()).shift_remove(id);
    }

    pub fn step(&self, id: &str) -> Option<Value> {
        self.steps.0.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// An earlier step's results (output, exit code, captures), empty if it has none.
    pub fn step_data(&self, id: &str) -> crate::state::outcome::StepData {
        self.step(id)
            .and_then(|v| serde_json::to_value(&v).ok())
            .and_then(|j| serde_json::from_value(j).ok())
            .unwrap_or_default()
    }

    /// `steps` of this scope as a value, live (an include exposes its children this way).
    pub fn steps_value(&self) -> Value {
        Value::from_dyn_object(self.steps.clone())
    }

    /// The render context.
    pub fn context(self: &Arc<Scope>) -> Value {
        Value::from_dyn_object(self.clone())
    }
}

impl Object for Scope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if let Some(v) = self.values.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Some(v.clone());
        }
        Some(match key {
            "steps" => self.steps_value(),
            "env" => Value::from_object(EnvView),
            "os" => Value::from(std::env::consts::OS),
            "run" => Value::from(minijinja::value::Serde(serde_json::json!({
                "id": self.shared.run_id,
                "dry_run": self.shared.dry_run,
            }))),
            "exists" => Value::from_object(FsFn { shared: self.shared.clone(), test: FsTest::Exists }),
            "is_file" => Value::from_object(FsFn { shared: self.shared.clone(), test: FsTest::File }),
            "is_dir" => Value::from_object(FsFn { shared: self.shared.clone(), test: FsTest::Dir }),
            _ => return None,
        })
    }
}

/// `env.NAME`: a process environment variable; an unset one is undefined (an error).
#[derive(Debug)]
struct EnvView;

impl Object for EnvView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        std::env::var(key.as_str()?).ok().map(Value::from)
    }
}

#[derive(Debug, Clone, Copy)]
enum FsTest {
    Exists,
    File,
    Dir,
}

#[derive(Debug)]
struct FsFn {
    shared: Arc<Shared>,
    test: FsTest,
}

impl Object for FsFn {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, MjError> {
        let [path] = args else {
            return Err(MjError::new(minijinja::ErrorKind::MissingArgument, "expects one path"));
        };
        let Some(path) = path.as_str() else {
            return Err(MjError::new(minijinja::ErrorKind::InvalidOperation, "the path must be a string"));
        };
        let kind = self.shared.fs.kind(&self.shared.resolve(path));
        Ok(Value::from(match self.test {
            FsTest::Exists => kind.is_some(),
            FsTest::File => kind == Some(Kind::File),
            FsTest::Dir => kind == Some(Kind::Dir),
        }))
    }
}
