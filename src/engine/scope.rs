//! What templates see while a runbook runs or is planned: inputs, vars, `steps.<id>`, `env`, `os`,
//! `run`, and the filesystem functions, which ask the step's [`FsView`], so that a plan sees the
//! filesystem as earlier steps would have left it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error as MjError, State};

use crate::compile::runbook::Runbook;
use crate::engine::fs::{FsView, Kind, kind};
use crate::format::mask::Masker;
use crate::state::outcome::{Outcome, StepData};

/// Run-wide facts shared by every scope of a run (an included runbook's too).
#[derive(Debug)]
pub struct Shared {
    /// The disk in a run; the overlay in a plan.
    pub fs: Arc<dyn FsView>,
    pub cwd: Mutex<PathBuf>,
    pub run_id: String,
    pub dry_run: bool,
    /// Hides the secret values in what is shown of a step.
    pub masker: Masker,
}

impl Shared {
    pub fn new(fs: Arc<dyn FsView>, cwd: PathBuf, run_id: &str, dry_run: bool, masker: Masker) -> Arc<Shared> {
        Arc::new(Shared { fs, cwd: Mutex::new(cwd), run_id: run_id.to_owned(), dry_run, masker })
    }

    pub fn cwd(&self) -> PathBuf {
        self.cwd.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_cwd(&self, path: PathBuf) {
        *self.cwd.lock().unwrap_or_else(|e| e.into_inner()) = path;
    }

    /// A path as a step means it: relative paths are taken from the current `cd` folder, `..`
    /// resolved by name, and every path spelled the system's way (one separator on Windows).
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = crate::os::path::native(path);
        crate::os::path::clean(&if p.is_absolute() { p } else { self.cwd().join(p) })
    }
}

/// The names one runbook's templates see. An included runbook gets a scope of its own.
#[derive(Debug)]
pub struct Scope {
    pub shared: Arc<Shared>,
    /// The runbook whose templates render here.
    pub runbook: Arc<Runbook>,
    values: Mutex<IndexMap<String, Value>>,
    /// Inputs and vars whose value only the run knows (a plan made without a secret), and the
    /// secret each waits for.
    secrets_later: Mutex<IndexMap<String, String>>,
    steps: Arc<StepsView>,
}

/// What `steps.<id>` holds: a step's results, or an included runbook's steps.
#[derive(Debug, Clone)]
enum StepEntry {
    Result {
        outcome: Outcome,
        data: StepData,
    },
    Include(Arc<StepsView>),
    /// Known only when the run gets there (in a plan, a command that did not run): undefined.
    Unknown,
}

/// `steps`: the results of the steps so far, by id.
#[derive(Debug, Default)]
pub struct StepsView(Mutex<IndexMap<String, StepEntry>>);

impl StepsView {
    fn entries(&self) -> MutexGuard<'_, IndexMap<String, StepEntry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Object for StepsView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match self.entries().get(key.as_str()?)? {
            StepEntry::Result { outcome, data } => data.to_value(*outcome),
            StepEntry::Include(view) => Value::from_dyn_object(view.clone()),
            StepEntry::Unknown => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.entries().keys().map(|k| Value::from(k.as_str())).collect())
    }
}

impl Scope {
    pub fn new(shared: Arc<Shared>, runbook: Arc<Runbook>) -> Arc<Scope> {
        Arc::new(Scope {
            shared,
            runbook,
            values: Mutex::new(IndexMap::new()),
            secrets_later: Mutex::new(IndexMap::new()),
            steps: Arc::new(StepsView::default()),
        })
    }

    /// `name`'s value is known only when the run asks for the secret `secret`.
    pub fn set_secret_later(&self, name: &str, secret: &str) {
        self.secrets_later.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), secret.to_owned());
    }

    /// The secret, asked for only at run time, that one of these names waits for.
    pub fn secret_later(&self, names: &[String]) -> Option<String> {
        let later = self.secrets_later.lock().unwrap_or_else(|e| e.into_inner());
        names.iter().find_map(|n| later.get(n).cloned())
    }

    /// Every secret asked for only at run time, as a plan shows it, with its name.
    pub fn secrets_shown_later(&self) -> Vec<(String, String)> {
        let later = self.secrets_later.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, String)> =
            later.values().map(|s| (crate::compile::inputs::asked_at_run_time(s), s.clone())).collect();
        out.dedup();
        out
    }

    pub fn set_value(&self, name: &str, value: Value) {
        self.values.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), value);
    }

    /// Records a step's results under `steps.<id>`.
    pub fn set_step(&self, id: &str, outcome: Outcome, data: StepData) {
        self.steps.entries().insert(id.to_owned(), StepEntry::Result { outcome, data });
    }

    /// A step whose results a plan cannot know.
    pub fn set_unknown(&self, id: &str) {
        self.steps.entries().insert(id.to_owned(), StepEntry::Unknown);
    }

    /// How an earlier step ended (or is predicted to).
    pub fn outcome(&self, id: &str) -> Option<Outcome> {
        match self.steps.entries().get(id) {
            Some(StepEntry::Result { outcome, .. }) => Some(*outcome),
            _ => None,
        }
    }

    pub fn is_unknown(&self, id: &str) -> bool {
        matches!(self.steps.entries().get(id), Some(StepEntry::Unknown))
    }

    /// Makes an included runbook's steps reachable as `steps.<id>.<its step>`.
    pub fn set_include(&self, id: &str, child: &Scope) {
        self.steps.entries().insert(id.to_owned(), StepEntry::Include(child.steps.clone()));
    }

    /// An earlier step's results (output, exit code, captures), empty if it has none.
    pub fn step_data(&self, id: &str) -> StepData {
        match self.steps.entries().get(id) {
            Some(StepEntry::Result { data, .. }) => data.clone(),
            _ => StepData::default(),
        }
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
            "steps" => Value::from_dyn_object(self.steps.clone()),
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
        let kind = kind(&*self.shared.fs, &self.shared.resolve(path));
        Ok(Value::from(match self.test {
            FsTest::Exists => kind.is_some(),
            FsTest::File => kind == Some(Kind::File),
            FsTest::Dir => kind == Some(Kind::Dir),
        }))
    }
}
