//! Runs a runbook for real: renders each step, journals it, executes it, reports it. Also the
//! continuation of an unfinished run (`resume`), which replays the journal into the scope first.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::cli::args::Format;
use crate::cli::exit::ExitCode;
use crate::cli::reporter::Reporter;
use crate::cli::ui::Ui;
use crate::compile::inputs::{InputValue, Inputs, Origin};
use crate::compile::runbook::{Action, Runbook, Step};
use crate::engine::actions::{self, StepError, manual::Confirm};
use crate::engine::render::{self, Rendered};
use crate::engine::scope::{RealFs, Scope, Shared};
use crate::format::mask::Masker;
use crate::state::journal::{FileDigest, Journal, JournalError, Record, RunOutcome, RunSummary, StepDigest, StepState};
use crate::state::outcome::{Outcome, StepData};

/// The journal keeps at most this much of each output stream (the end of it).
pub const JOURNAL_OUTPUT: usize = 64 * 1024;

pub struct Config {
    pub yes: bool,
    pub step_confirm: bool,
    pub format: Format,
    pub state_dir: PathBuf,
}

pub enum Start {
    /// A new run in `cwd`, of a reviewed `plan` if one was given.
    Fresh {
        plan: Option<FileDigest>,
        cwd: PathBuf,
    },
    Resume {
        summary: Box<RunSummary>,
        forced: bool,
        redo: Option<String>,
        mark_done: Option<String>,
    },
}

enum Flow {
    Continue,
    Stop(ExitCode, RunOutcome),
}

struct Pending {
    id: String,
    outcome: Outcome,
    duration: Duration,
    error: Option<String>,
}

/// One step's result, for reports (JUnit).
#[derive(Debug, Clone)]
pub struct StepReport {
    pub id: String,
    pub title: String,
    pub outcome: Outcome,
    pub duration: Duration,
    pub error: Option<String>,
    /// The last lines of a command's output.
    pub output: Option<String>,
}

pub struct Runner<'a> {
    journal: Journal,
    reporter: Reporter,
    config: &'a Config,
    confirm: Confirm,
    resume: Option<IndexMap<String, StepState>>,
    masker: Masker,
    pending: Vec<Pending>,
    index: usize,
    counts: IndexMap<&'static str, (Outcome, usize)>,
    results: Vec<StepReport>,
}

/// What a run leaves for the command that started it.
pub struct Finished {
    pub code: ExitCode,
    pub steps: Vec<StepReport>,
}

/// Counts steps, included ones too, for the progress display.
pub fn count_steps(runbook: &Runbook) -> usize {
    runbook
        .steps
        .iter()
        .map(|s| match &s.action {
            Action::Include(inc) => 1 + count_steps(&inc.runbook),
            _ => 1,
        })
        .sum()
}

pub fn step_digests(runbook: &Runbook, prefix: &str, out: &mut Vec<StepDigest>) {
    for s in &runbook.steps {
        let id = format!("{prefix}{}", s.id);
        out.push(StepDigest {
            id: id.clone(),
            fingerprint: s.fingerprint.clone(),
            command: s.is_command(),
            idempotent: s.idempotent(),
        });
        if let Action::Include(inc) = &s.action {
            step_digests(&inc.runbook, &format!("{id}."), out);
        }
    }
}

/// The scope of an included runbook: its defaults, then the parent's `with` values.
pub fn include_scope(runbook: &Runbook, with: &[(String, String)], parent: &Arc<Scope>) -> Result<Arc<Scope>, String> {
    let mut inputs = Inputs::default();
    for def in runbook.inputs.values() {
        let given = with.iter().find(|(k, _)| *k == def.name).map(|(_, v)| serde_json::Value::String(v.clone()));
        let Some(raw) = given.or_else(|| def.default.clone()) else {
            return Err(format!("the included runbook `{}` needs input `{}`", runbook.name, def.name));
        };
        let value = crate::compile::inputs::coerce(def, &raw)
            .map_err(|why| format!("input `{}` of `{}`: {why}", def.name, runbook.name))?;
        inputs.values.insert(def.name.clone(), InputValue { value, origin: Origin::Cli });
    }
    render::new_scope(runbook, &inputs, parent.shared.clone()).map_err(|e| e.message)
}

fn journal_failure(e: JournalError) -> crate::cli::exit::Failure {
    crate::cli::exit::Failure::new(
        ExitCode::Invalid,
        crate::format::diagnostic::Diagnostic::error(e.to_string())
            .hint("check that the state folder (--state-dir) is writable"),
    )
}

fn keep_tail(s: Option<String>) -> Option<String> {
    s.map(|s| {
        if s.len() <= JOURNAL_OUTPUT {
            return s;
        }
        let mut cut = s.len() - JOURNAL_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        format!("[… {cut} bytes not journaled …]{}", &s[cut..])
    })
}

/// Runs (or resumes) `runbook`. The caller holds the lock.
pub fn execute(
    ui: &Ui,
    runbook: &Arc<Runbook>,
    path: &Path,
    inputs: &Inputs,
    masker: Masker,
    config: &Config,
    start: Start,
) -> Result<Finished, crate::cli::exit::Failure> {
    let started = Instant::now();
    let (journal, run_id, resume, cwd) = match start {
        Start::Fresh { plan, cwd } => {
            let run_id = crate::state::journal::new_run_id();
            // Vars render before anything is written: a runbook that cannot start leaves no run.
            new_scope(runbook, inputs, &masker, cwd.clone(), &run_id)?;
            let mut steps = Vec::new();
            step_digests(runbook, "", &mut steps);
            let secret: Vec<String> = runbook.secret_names().map(str::to_owned).collect();
            let first = Record::RunStarted {
                run_id: run_id.clone(),
                runbook: runbook.name.clone(),
                path: path.display().to_string(),
                files: runbook
                    .files()
                    .iter()
                    .map(|(s, sha)| FileDigest { path: s.path.display().to_string(), sha256: (*sha).to_owned() })
                    .collect(),
                steps,
                inputs: inputs
                    .values
                    .iter()
                    .filter(|(k, _)| !secret.contains(k))
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect(),
                secret_inputs: secret,
                tool_version: env!("CARGO_PKG_VERSION").into(),
                host: crate::state::journal::host(),
                user: crate::state::journal::user(),
                pid: std::process::id(),
                cwd: cwd.display().to_string(),
                time: crate::state::journal::now(),
                plan,
            };
            let journal = Journal::create(&config.state_dir, &runbook.name, &run_id, masker.clone(), &first)
                .map_err(journal_failure)?;
            (journal, run_id, None, cwd)
        }
        Start::Resume { summary, forced, redo, mark_done } => {
            let mut journal = Journal::open(&summary.path, masker.clone()).map_err(journal_failure)?;
            let who = (crate::state::journal::host(), crate::state::journal::user());
            journal
                .append(
                    &Record::RunResumed {
                        host: who.0.clone(),
                        user: who.1.clone(),
                        pid: std::process::id(),
                        time: crate::state::journal::now(),
                        forced,
                    },
                    false,
                )
                .map_err(journal_failure)?;
            let mut states = summary.step_states.clone();
            for (step, decision) in [(redo, "redo"), (mark_done, "mark_done")] {
                if let Some(step) = step {
                    journal
                        .append(
                            &Record::OperatorDecision {
                                step: step.clone(),
                                decision: decision.into(),
                                host: who.0.clone(),
                                user: who.1.clone(),
                                time: crate::state::journal::now(),
                            },
                            false,
                        )
                        .map_err(journal_failure)?;
                    if decision == "redo" {
                        states.shift_remove(&step);
                    } else {
                        states.insert(step, StepState::MarkedDone);
                    }
                }
            }
            journal.sync().map_err(journal_failure)?;
            // The working folder is where the last finished step left it, or where the run began,
            // wherever `resume` is typed.
            let cwd = states
                .values()
                .rev()
                .find_map(|s| match s {
                    StepState::Finished { cwd, .. } => Some(PathBuf::from(cwd)),
                    _ => None,
                })
                .unwrap_or_else(|| PathBuf::from(&summary.cwd));
            (journal, summary.run_id.clone(), Some(states), cwd)
        }
    };
    let scope = new_scope(runbook, inputs, &masker, cwd, &run_id)?;
    let confirm = if config.yes {
        Confirm::Yes
    } else if crate::compile::inputs::can_prompt() {
        Confirm::Ask
    } else {
        Confirm::Impossible
    };
    let reporter = Reporter::new(ui, config.format, masker.clone(), count_steps(runbook));
    let resumed = resume.is_some();
    reporter.run_started(&runbook.name, &run_id, &journal.path, resumed);
    let mut runner = Runner {
        journal,
        reporter,
        config,
        confirm,
        resume,
        masker,
        pending: Vec::new(),
        index: 0,
        counts: IndexMap::new(),
        results: Vec::new(),
    };
    let flow = runner.walk(runbook, &scope, "");
    let (code, outcome) = match flow {
        Ok(Flow::Continue) => (ExitCode::Success, RunOutcome::Succeeded),
        Ok(Flow::Stop(code, outcome)) => (code, outcome),
        Err(e) => return Err(journal_failure(e)),
    };
    runner
        .journal
        .append(&Record::RunFinished { outcome, time: crate::state::journal::now() }, true)
        .map_err(journal_failure)?;
    runner.flush();
    let label = match outcome {
        RunOutcome::Succeeded => "succeeded",
        RunOutcome::Failed => "failed",
        RunOutcome::Interrupted => "interrupted",
        RunOutcome::Refused => "stopped",
        RunOutcome::Abandoned => "abandoned",
    };
    let extra = match outcome {
        RunOutcome::Succeeded => String::new(),
        _ => format!(" Fix the cause, then continue with: runbook resume {}", shell_word(&path.display().to_string())),
    };
    let counts: Vec<(Outcome, usize)> = [Outcome::Done, Outcome::Unchanged, Outcome::Skipped, Outcome::Failed]
        .into_iter()
        .map(|o| (o, runner.counts.get(o.as_str()).map_or(0, |c| c.1)))
        .collect();
    runner.reporter.run_finished(label, &counts, started.elapsed(), &extra);
    Ok(Finished { code, steps: runner.results })
}

fn new_scope(
    runbook: &Runbook,
    inputs: &Inputs,
    masker: &Masker,
    cwd: PathBuf,
    run_id: &str,
) -> Result<Arc<Scope>, crate::cli::exit::Failure> {
    let shared = Arc::new(Shared { fs: Arc::new(RealFs), cwd: Mutex::new(cwd), run_id: run_id.into(), dry_run: false });
    render::new_scope(runbook, inputs, shared).map_err(|e| {
        crate::cli::exit::Failure::invalid(vec![crate::format::diagnostic::Diagnostic::error(masker.mask(&e.message))])
    })
}

pub fn shell_word(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl Runner<'_> {
    fn flush(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.reporter.step_finished(&p.id, p.outcome, p.duration, p.error.as_deref());
        }
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        self.journal.sync()?;
        self.flush();
        Ok(())
    }

    fn walk(&mut self, runbook: &Runbook, scope: &Arc<Scope>, prefix: &str) -> Result<Flow, JournalError> {
        for step in &runbook.steps {
            let id = format!("{prefix}{}", step.id);
            let flow = if self.restore(step, &id, scope) {
                self.index += 1;
                match &step.action {
                    Action::Include(inc) => self.include(step, inc, &id, scope)?,
                    _ => Flow::Continue,
                }
            } else {
                self.step(step, &id, scope)?
            };
            if let Flow::Stop(..) = flow {
                return Ok(flow);
            }
        }
        Ok(Flow::Continue)
    }

    /// On resume, puts a step that already finished back into the scope; false if it must run.
    fn restore(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> bool {
        let Some(states) = &self.resume else { return false };
        match states.get(id) {
            Some(StepState::Finished { outcome, data, .. })
                if *outcome != Outcome::Failed || step.continue_on_error =>
            {
                scope.set_step(&step.id, data.to_value(*outcome));
                true
            }
            Some(StepState::MarkedDone) => {
                scope.set_step(&step.id, StepData::default().to_value(Outcome::Done));
                true
            }
            _ => false,
        }
    }

    /// Runs (or, on resume, continues) an included runbook's steps in a scope of its own.
    fn include(
        &mut self,
        step: &Step,
        inc: &crate::compile::runbook::Include,
        id: &str,
        scope: &Arc<Scope>,
    ) -> Result<Flow, JournalError> {
        let with = match render::action(step, scope) {
            Ok(Rendered::Include { with, .. }) => with,
            _ => return Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Failed)),
        };
        match include_scope(&inc.runbook, &with, scope) {
            Ok(child) => {
                scope.set_step(&step.id, child.steps_value());
                self.walk(&inc.runbook, &child, &format!("{id}."))
            }
            Err(message) => {
                self.reporter.say(id, &message);
                Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Failed))
            }
        }
    }

    /// Records a finished step: journal (synced when `sync`), report, counts, and `steps.<id>`.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        step: &Step,
        id: &str,
        title: &str,
        outcome: Outcome,
        duration: Duration,
        data: StepData,
        error: Option<String>,
        scope: &Arc<Scope>,
        sync: bool,
    ) -> Result<(), JournalError> {
        let confirmed_by = (outcome == Outcome::Done && matches!(step.action, Action::Manual { confirm: true, .. }))
            .then(|| {
                let how = if self.confirm == Confirm::Yes { "--yes" } else { "at the terminal" };
                format!("{}@{} ({how})", crate::state::journal::user(), crate::state::journal::host())
            });
        let output = data.stdout.is_some().then(|| data.text(crate::format::model::Stream::Any));
        self.journal.append(
            &Record::StepFinished {
                step: id.into(),
                outcome,
                duration_ms: duration.as_millis() as u64,
                cwd: scope.shared.cwd().display().to_string(),
                data: journal_data(data.clone()),
                error: error.clone(),
                confirmed_by,
                time: crate::state::journal::now(),
            },
            false,
        )?;
        scope.set_step(&step.id, data.to_value(outcome));
        self.counts.entry(outcome.as_str()).or_insert((outcome, 0)).1 += 1;
        self.results.push(StepReport {
            id: id.into(),
            title: title.into(),
            outcome,
            duration,
            error: error.clone(),
            output: output.map(|o| crate::state::outcome::tail(&o, 20)),
        });
        self.pending.push(Pending { id: id.into(), outcome, duration, error });
        if sync { self.sync() } else { Ok(()) }
    }

    fn step(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> Result<Flow, JournalError> {
        let index = self.index;
        self.index += 1;
        if crate::os::signals::interrupted() {
            return Ok(Flow::Stop(ExitCode::Interrupted, RunOutcome::Interrupted));
        }
        let rendered = match render::should_run(step, scope) {
            Ok(true) => render::action(step, scope),
            Ok(false) => {
                let title = render::title(step, None, scope);
                self.reporter.step_started(index, id, &title, "");
                self.finish(
                    step,
                    id,
                    &title,
                    Outcome::Skipped,
                    Duration::ZERO,
                    StepData::default(),
                    None,
                    scope,
                    false,
                )?;
                return Ok(Flow::Continue);
            }
            Err(e) => Err(render::RenderError { message: format!("cannot evaluate `when`: {}", e.message), ..e }),
        };
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => {
                // Whatever earlier steps reported goes first.
                self.sync()?;
                let title = render::title(step, None, scope);
                self.reporter.step_started(index, id, &title, "");
                self.journal.append(
                    &Record::StepStarted { step: id.into(), attempt: 1, time: crate::state::journal::now() },
                    false,
                )?;
                self.finish(
                    step,
                    id,
                    &title,
                    Outcome::Failed,
                    Duration::ZERO,
                    StepData::default(),
                    Some(e.message),
                    scope,
                    true,
                )?;
                return Ok(self.after_failure(step, id));
            }
        };
        let title = render::title(step, Some(&rendered), scope);
        if self.config.step_confirm {
            self.sync()?;
            let question = format!("Run step {id} ({})? [yes/no] ", self.masker.mask(&rendered.describe()));
            if !matches!(self.reporter.suspend(|| actions::manual::ask(&question)), Ok(true)) {
                self.reporter.say(id, "stopped by the operator before this step");
                return Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Interrupted));
            }
        }
        let attempts = step.retries + 1;
        let mut attempt = 1;
        loop {
            self.journal
                .append(&Record::StepStarted { step: id.into(), attempt, time: crate::state::journal::now() }, true)?;
            self.flush();
            if attempt == 1 {
                self.reporter.step_started(index, id, &title, &rendered.describe());
            }
            let t0 = Instant::now();
            let result = {
                let reporter = &self.reporter;
                let mut on_line = |stream, line: &str| reporter.output(id, stream, line);
                let mut say = |text: &str| reporter.say(id, text);
                let mut ask = |question: &str| reporter.suspend(|| actions::manual::ask(question));
                let mut bytes = |done, total| reporter.bytes(done, total);
                let mut cx = actions::Context {
                    scope,
                    timeout: step.timeout,
                    on_line: &mut on_line,
                    say: &mut say,
                    manual: self.confirm,
                    ask: &mut ask,
                    bytes: &mut bytes,
                };
                actions::execute(&rendered, &mut cx)
            };
            let duration = t0.elapsed();
            let (message, data) = match result {
                Ok((outcome, data)) => {
                    self.finish(step, id, &title, outcome, duration, data, None, scope, false)?;
                    return match &step.action {
                        Action::Include(inc) => self.include(step, inc, id, scope),
                        _ => Ok(Flow::Continue),
                    };
                }
                Err(StepError::Interrupted) => {
                    self.journal.append(
                        &Record::StepInterrupted { step: id.into(), time: crate::state::journal::now() },
                        true,
                    )?;
                    self.flush();
                    self.reporter.say(id, "interrupted; the command's process group was stopped");
                    return Ok(Flow::Stop(ExitCode::Interrupted, RunOutcome::Interrupted));
                }
                Err(StepError::Failed(message)) => (message, StepData::default()),
                Err(StepError::Command { message, data }) => (message, *data),
            };
            if attempt < attempts && !crate::os::signals::interrupted() {
                let record = Record::StepFinished {
                    step: id.into(),
                    outcome: Outcome::Failed,
                    duration_ms: duration.as_millis() as u64,
                    cwd: scope.shared.cwd().display().to_string(),
                    data: journal_data(data),
                    error: Some(message.clone()),
                    confirmed_by: None,
                    time: crate::state::journal::now(),
                };
                self.journal.append(&record, true)?;
                self.reporter.say(id, &message);
                attempt += 1;
                self.reporter.retrying(id, attempt, attempts, step.retry_delay);
                sleep_interruptibly(step.retry_delay);
                continue;
            }
            self.finish(step, id, &title, Outcome::Failed, duration, data, Some(message), scope, true)?;
            return Ok(self.after_failure(step, id));
        }
    }

    fn after_failure(&mut self, step: &Step, id: &str) -> Flow {
        if step.continue_on_error {
            self.reporter.say(id, "continue-on-error: the run goes on");
            return Flow::Continue;
        }
        Flow::Stop(ExitCode::StepFailed, RunOutcome::Failed)
    }
}

fn journal_data(mut data: StepData) -> StepData {
    data.stdout = keep_tail(data.stdout);
    data.stderr = keep_tail(data.stderr);
    data
}

fn sleep_interruptibly(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !crate::os::signals::interrupted() {
        std::thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
}
