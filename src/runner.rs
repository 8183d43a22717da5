//! Runs a runbook for real: renders each step, journals it, executes it, reports it. Also the
//! continuation of an unfinished run (`resume`), which replays the journal into the scope first.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::cli::Format;
use crate::executor::{self, StepError, manual::Confirm};
use crate::exit::ExitCode;
use crate::inputs::{InputValue, Inputs, Origin};
use crate::journal::{FileDigest, Journal, JournalError, Record, RunOutcome, RunSummary, StepDigest, StepState};
use crate::outcome::{Outcome, StepData};
use crate::render::{self, Rendered};
use crate::reporter::Reporter;
use crate::runbook::{Action, Runbook, Step};
use crate::scope::{RealFs, Scope, Shared};
use crate::secrets::Masker;
use crate::ui::Ui;

/// The journal keeps at most this much of each output stream (the end of it).
pub const JOURNAL_OUTPUT: usize = 64 * 1024;

pub struct Config {
    pub yes: bool,
    pub step_confirm: bool,
    pub format: Format,
    pub state_dir: PathBuf,
}

pub enum Start {
    Fresh {
        plan: Option<FileDigest>,
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

pub struct Runner<'a> {
    journal: Journal,
    reporter: Reporter,
    config: &'a Config,
    confirm: Confirm,
    resume: Option<IndexMap<String, StepState>>,
    pending: Vec<Pending>,
    index: usize,
    counts: IndexMap<&'static str, (Outcome, usize)>,
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
        let given = with
            .iter()
            .find(|(k, _)| *k == def.name)
            .map(|(_, v)| serde_json::Value::String(v.clone()));
        let Some(raw) = given.or_else(|| def.default.clone()) else {
            return Err(format!(
                "the included runbook `{}` needs input `{}`",
                runbook.name, def.name
            ));
        };
        let value = crate::inputs::coerce(def, &raw)
            .map_err(|why| format!("input `{}` of `{}`: {why}", def.name, runbook.name))?;
        inputs.values.insert(
            def.name.clone(),
            InputValue {
                value,
                origin: Origin::Cli,
            },
        );
    }
    render::new_scope(runbook, &inputs, parent.shared.clone()).map_err(|e| e.message)
}

fn journal_failure(e: JournalError) -> crate::exit::Failure {
    crate::exit::Failure::new(
        ExitCode::Invalid,
        crate::diagnostic::Diagnostic::error(e.to_string())
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
#[allow(clippy::too_many_arguments)]
pub fn execute(
    ui: &Ui,
    runbook: &Arc<Runbook>,
    path: &Path,
    inputs: &Inputs,
    masker: Masker,
    config: &Config,
    start: Start,
    cwd: PathBuf,
) -> Result<ExitCode, crate::exit::Failure> {
    let started = Instant::now();
    let (journal, run_id, resume, cwd) = match start {
        Start::Fresh { plan } => {
            let run_id = crate::journal::new_run_id();
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
                    .map(|(s, sha)| FileDigest {
                        path: s.path.display().to_string(),
                        sha256: (*sha).to_owned(),
                    })
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
                host: crate::journal::host(),
                user: crate::journal::user(),
                pid: std::process::id(),
                cwd: cwd.display().to_string(),
                time: crate::journal::now(),
                plan,
            };
            let journal = Journal::create(&config.state_dir, &runbook.name, &run_id, masker.clone(), &first)
                .map_err(journal_failure)?;
            (journal, run_id, None, cwd)
        }
        Start::Resume {
            summary,
            forced,
            redo,
            mark_done,
        } => {
            let mut journal = Journal::open(&summary.path, masker.clone()).map_err(journal_failure)?;
            let who = (crate::journal::host(), crate::journal::user());
            journal
                .append(
                    &Record::RunResumed {
                        host: who.0.clone(),
                        user: who.1.clone(),
                        pid: std::process::id(),
                        time: crate::journal::now(),
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
                                time: crate::journal::now(),
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
            // The working folder is where the last finished step left it.
            let cwd = states
                .values()
                .rev()
                .find_map(|s| match s {
                    StepState::Finished { cwd, .. } => Some(PathBuf::from(cwd)),
                    _ => None,
                })
                .unwrap_or(cwd);
            (journal, summary.run_id.clone(), Some(states), cwd)
        }
    };
    let shared = Arc::new(Shared {
        fs: Arc::new(RealFs),
        cwd: Mutex::new(cwd),
        run_id: run_id.clone(),
        dry_run: false,
    });
    let scope = render::new_scope(runbook, inputs, shared).map_err(|e| {
        crate::exit::Failure::invalid(vec![crate::diagnostic::Diagnostic::error(masker.mask(&e.message))])
    })?;
    let confirm = if config.yes {
        Confirm::Yes
    } else if crate::inputs::can_prompt() {
        Confirm::Ask
    } else {
        Confirm::Impossible
    };
    let reporter = Reporter::new(ui, config.format, masker, count_steps(runbook));
    let resumed = resume.is_some();
    reporter.run_started(&runbook.name, &run_id, &journal.path, resumed);
    let mut runner = Runner {
        journal,
        reporter,
        config,
        confirm,
        resume,
        pending: Vec::new(),
        index: 0,
        counts: IndexMap::new(),
    };
    let flow = runner.walk(runbook, &scope, "");
    let (code, outcome) = match flow {
        Ok(Flow::Continue) => (ExitCode::Success, RunOutcome::Succeeded),
        Ok(Flow::Stop(code, outcome)) => (code, outcome),
        Err(e) => return Err(journal_failure(e)),
    };
    runner
        .journal
        .append(
            &Record::RunFinished {
                outcome,
                time: crate::journal::now(),
            },
            true,
        )
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
        _ => format!(
            " Fix the cause, then continue with: runbook resume {}",
            shell_word(&path.display().to_string())
        ),
    };
    let counts: Vec<(Outcome, usize)> = [Outcome::Done, Outcome::Unchanged, Outcome::Skipped, Outcome::Failed]
        .into_iter()
        .map(|o| (o, runner.counts.get(o.as_str()).map_or(0, |c| c.1)))
        .collect();
    runner.reporter.run_finished(label, &counts, started.elapsed(), &extra);
    Ok(code)
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
            self.reporter
                .step_finished(&p.id, p.outcome, p.duration, p.error.as_deref());
        }
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        self.journal.sync()?;
        self.flush();
        Ok(())
    }

    fn count(&mut self, outcome: Outcome) {
        self.counts.entry(outcome.as_str()).or_insert((outcome, 0)).1 += 1;
    }

    fn walk(&mut self, runbook: &Runbook, scope: &Arc<Scope>, prefix: &str) -> Result<Flow, JournalError> {
        for step in &runbook.steps {
            let id = format!("{prefix}{}", step.id);
            if self.restore(step, &id, scope) {
                self.index += 1;
                if let Action::Include(inc) = &step.action {
                    match self.enter_include(step, inc, scope) {
                        Some(child) => {
                            if let Flow::Stop(c, o) = self.walk(&inc.runbook, &child, &format!("{id}."))? {
                                return Ok(Flow::Stop(c, o));
                            }
                        }
                        None => return Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Failed)),
                    }
                }
                continue;
            }
            if let Flow::Stop(c, o) = self.step(step, &id, scope)? {
                return Ok(Flow::Stop(c, o));
            }
        }
        Ok(Flow::Continue)
    }

    /// On resume, puts a step that already finished back into the scope; false if it must run.
    fn restore(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> bool {
        let Some(states) = &self.resume else {
            return false;
        };
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

    fn enter_include(&mut self, step: &Step, inc: &crate::runbook::Include, scope: &Arc<Scope>) -> Option<Arc<Scope>> {
        let with = match render::action(step, scope) {
            Ok(Rendered::Include { with, .. }) => with,
            _ => return None,
        };
        let child = include_scope(&inc.runbook, &with, scope).ok()?;
        scope.set_step(&step.id, child.steps_value());
        Some(child)
    }

    fn step(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> Result<Flow, JournalError> {
        let index = self.index;
        self.index += 1;
        if crate::process::interrupted() {
            return Ok(Flow::Stop(ExitCode::Interrupted, RunOutcome::Interrupted));
        }
        let now = crate::journal::now;
        let cwd = || scope.shared.cwd().display().to_string();
        // `when`
        match render::should_run(step, scope) {
            Ok(true) => {}
            Ok(false) => {
                scope.set_step(&step.id, StepData::default().to_value(Outcome::Skipped));
                self.journal.append(
                    &Record::StepFinished {
                        step: id.into(),
                        outcome: Outcome::Skipped,
                        duration_ms: 0,
                        cwd: cwd(),
                        data: StepData::default(),
                        error: None,
                        confirmed_by: None,
                        time: now(),
                    },
                    false,
                )?;
                self.reporter
                    .step_started(index, id, &render::title(step, None, scope), "");
                self.pending.push(Pending {
                    id: id.into(),
                    outcome: Outcome::Skipped,
                    duration: Duration::ZERO,
                    error: None,
                });
                self.count(Outcome::Skipped);
                return Ok(Flow::Continue);
            }
            Err(e) => {
                return self.failed_before_start(
                    step,
                    id,
                    index,
                    scope,
                    format!("cannot evaluate `when`: {}", e.message),
                );
            }
        }
        let rendered = match render::action(step, scope) {
            Ok(r) => r,
            Err(e) => return self.failed_before_start(step, id, index, scope, e.message),
        };
        let title = render::title(step, Some(&rendered), scope);
        if self.config.step_confirm {
            self.sync()?;
            let question = format!(
                "Run step {id} ({})? [yes/no] ",
                self.reporter_mask(&rendered.describe())
            );
            match executor::manual::ask(&question) {
                Ok(true) => {}
                _ => {
                    self.reporter.say(id, "stopped by the operator before this step");
                    return Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Interrupted));
                }
            }
        }
        let attempts = step.retries + 1;
        let mut attempt = 1;
        loop {
            self.journal.append(
                &Record::StepStarted {
                    step: id.into(),
                    attempt,
                    time: now(),
                },
                true,
            )?;
            self.flush();
            if attempt == 1 {
                self.reporter.step_started(index, id, &title, &rendered.describe());
            }
            let t0 = Instant::now();
            let result = {
                let reporter = &self.reporter;
                let mut on_line = |stream, line: &str| reporter.output(id, stream, line);
                let mut say = |text: &str| reporter.say(id, text);
                let mut cx = executor::Context {
                    scope,
                    timeout: step.timeout,
                    on_line: &mut on_line,
                    say: &mut say,
                    manual: self.confirm,
                };
                executor::execute(&rendered, &mut cx)
            };
            let duration = t0.elapsed();
            match result {
                Ok((outcome, data)) => {
                    if let Action::Include(inc) = &step.action {
                        self.finish(id, outcome, duration, data, None, scope)?;
                        self.count(outcome);
                        let Some(child) = self.enter_include(step, inc, scope) else {
                            return Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Failed));
                        };
                        return self.walk(&inc.runbook, &child, &format!("{id}."));
                    }
                    scope.set_step(&step.id, data.to_value(outcome));
                    let confirmed_by = matches!(step.action, Action::Manual { confirm: true, .. }).then(|| {
                        format!(
                            "{}@{} ({})",
                            crate::journal::user(),
                            crate::journal::host(),
                            if self.confirm == Confirm::Yes {
                                "--yes"
                            } else {
                                "at the terminal"
                            }
                        )
                    });
                    self.journal.append(
                        &Record::StepFinished {
                            step: id.into(),
                            outcome,
                            duration_ms: duration.as_millis() as u64,
                            cwd: cwd(),
                            data: journal_data(data),
                            error: None,
                            confirmed_by,
                            time: now(),
                        },
                        false,
                    )?;
                    self.pending.push(Pending {
                        id: id.into(),
                        outcome,
                        duration,
                        error: None,
                    });
                    self.count(outcome);
                    return Ok(Flow::Continue);
                }
                Err(StepError::Interrupted) => {
                    self.journal.append(
                        &Record::StepInterrupted {
                            step: id.into(),
                            time: now(),
                        },
                        true,
                    )?;
                    self.flush();
                    self.reporter
                        .say(id, "interrupted; the command's process group was stopped");
                    return Ok(Flow::Stop(ExitCode::Interrupted, RunOutcome::Interrupted));
                }
                Err(StepError::Failed(message)) => {
                    if attempt < attempts && !crate::process::interrupted() {
                        self.journal.append(
                            &Record::StepFinished {
                                step: id.into(),
                                outcome: Outcome::Failed,
                                duration_ms: duration.as_millis() as u64,
                                cwd: cwd(),
                                data: StepData::default(),
                                error: Some(message.clone()),
                                confirmed_by: None,
                                time: now(),
                            },
                            true,
                        )?;
                        self.reporter.say(id, &message);
                        attempt += 1;
                        self.reporter.retrying(id, attempt, attempts, step.retry_delay);
                        sleep_interruptibly(step.retry_delay);
                        continue;
                    }
                    self.journal.append(
                        &Record::StepFinished {
                            step: id.into(),
                            outcome: Outcome::Failed,
                            duration_ms: duration.as_millis() as u64,
                            cwd: cwd(),
                            data: StepData::default(),
                            error: Some(message.clone()),
                            confirmed_by: None,
                            time: now(),
                        },
                        true,
                    )?;
                    self.flush();
                    self.reporter
                        .step_finished(id, Outcome::Failed, duration, Some(&message));
                    self.count(Outcome::Failed);
                    scope.set_step(&step.id, StepData::default().to_value(Outcome::Failed));
                    if step.continue_on_error {
                        self.reporter.say(id, "continue-on-error: the run goes on");
                        return Ok(Flow::Continue);
                    }
                    return Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Failed));
                }
            }
        }
    }

    fn reporter_mask(&self, s: &str) -> String {
        s.to_owned()
    }

    fn finish(
        &mut self,
        id: &str,
        outcome: Outcome,
        duration: Duration,
        data: StepData,
        error: Option<String>,
        scope: &Arc<Scope>,
    ) -> Result<(), JournalError> {
        self.journal.append(
            &Record::StepFinished {
                step: id.into(),
                outcome,
                duration_ms: duration.as_millis() as u64,
                cwd: scope.shared.cwd().display().to_string(),
                data,
                error: error.clone(),
                confirmed_by: None,
                time: crate::journal::now(),
            },
            false,
        )?;
        self.pending.push(Pending {
            id: id.into(),
            outcome,
            duration,
            error,
        });
        Ok(())
    }

    fn failed_before_start(
        &mut self,
        step: &Step,
        id: &str,
        index: usize,
        scope: &Arc<Scope>,
        message: String,
    ) -> Result<Flow, JournalError> {
        // Whatever earlier steps reported goes first.
        self.sync()?;
        self.reporter
            .step_started(index, id, &render::title(step, None, scope), "");
        let started = Record::StepStarted {
            step: id.into(),
            attempt: 1,
            time: crate::journal::now(),
        };
        self.journal.append(&started, false)?;
        self.finish(
            id,
            Outcome::Failed,
            Duration::ZERO,
            StepData::default(),
            Some(message),
            scope,
        )?;
        self.sync()?;
        self.count(Outcome::Failed);
        if step.continue_on_error {
            return Ok(Flow::Continue);
        }
        Ok(Flow::Stop(ExitCode::StepFailed, RunOutcome::Failed))
    }
}

fn journal_data(mut data: StepData) -> StepData {
    data.stdout = keep_tail(data.stdout);
    data.stderr = keep_tail(data.stderr);
    data
}

fn sleep_interruptibly(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !crate::process::interrupted() {
        std::thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
}
