//! Runs a runbook for real: the shared walk over the disk, every step journaled before it takes
//! effect and reported once its record is on disk, in order (a step's start, its output, its end,
//! the next step's start), with one journal sync per step. Also the continuation of an unfinished
//! run (`resume`), which first puts the journal's results back into the scope.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::compile::inputs::Inputs;
use crate::compile::runbook::{Action, Condition, FileDigest, Runbook, Step};
use crate::engine::actions::{self, Confirmation, Context, StepError, World, stream_of};
use crate::engine::events::Events;
use crate::engine::fs::real::RealFs;
use crate::engine::render::{self, RenderError, Rendered};
use crate::engine::scope::{Scope, Shared};
use crate::engine::undo::{Keeper, Recorder};
use crate::engine::walk::{Flow, Phase, walk};
use crate::format::diagnostic::tail;
use crate::format::mask::Masker;
use crate::format::model::Stream;
use crate::os::process::{Captured, Spec};
use crate::os::signals::interrupted;
use crate::state::approvals::Approver;
use crate::state::drift::StepText;
use crate::state::journal::{
    self, Beginning, Durability, Journal, JournalError, Record, RunOutcome, RunSummary, StepState,
};
use crate::state::outcome::{Outcome, StepData};
use crate::state::saved_plan::PlannedStep;
use crate::state::undo::Backout;

/// The journal keeps at most this much of each output stream (the end of it).
pub const JOURNAL_OUTPUT: usize = 64 * 1024;

/// How manual steps are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// `--yes`: confirmations are given in advance.
    Yes,
    /// On the terminal.
    Ask,
    /// No terminal and no `--yes`.
    Impossible,
}

pub struct RunConfig {
    pub state_dir: PathBuf,
    /// Whether records and copies are synced before a step counts (`--durability`).
    pub durability: Durability,
    /// The most a run keeps of what its steps replace or remove, to undo them.
    pub backup_limit: u64,
    pub confirm: Confirm,
    /// Ask before each step (`--step`).
    pub step_confirm: bool,
}

pub enum Start {
    /// A new run from `cwd`, of a reviewed `plan` if one was given.
    Fresh { plan: Option<FileDigest>, cwd: PathBuf, approvals: Vec<Approver> },
    /// The continuation of an unfinished run, with the operator's decisions about a step that
    /// may have run.
    Resume {
        summary: Box<RunSummary>,
        forced: bool,
        redo: Option<String>,
        mark_done: Option<String>,
        approvals: Vec<Approver>,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    Failed,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The operator said no before a step (`--step`).
    Declined,
}

impl Ending {
    fn journal_outcome(self) -> RunOutcome {
        match self {
            Ending::Succeeded => RunOutcome::Succeeded,
            Ending::Failed => RunOutcome::Failed,
            Ending::Interrupted | Ending::Declined => RunOutcome::Interrupted,
        }
    }
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
    /// Why it was skipped, or that it ran in an earlier sitting of a resumed run.
    pub note: Option<String>,
}

/// What a run leaves for the command that started it.
pub struct Finished {
    pub ending: Ending,
    /// The steps this sitting reached (and, on resume, those an earlier one finished), in order.
    pub steps: Vec<StepReport>,
    /// Every step of the runbook as the run knows it (id, title), reached or not.
    pub all: Vec<(String, String)>,
    /// The run's journal.
    pub journal: PathBuf,
}

impl Finished {
    /// Where the run stopped: the failed step, or the first one not reached.
    pub fn stopped_at(&self) -> Option<&str> {
        match self.ending {
            Ending::Succeeded => None,
            Ending::Failed => self.steps.iter().rev().find(|s| s.outcome == Outcome::Failed).map(|s| s.id.as_str()),
            Ending::Interrupted | Ending::Declined => {
                self.all.iter().map(|(id, _)| id.as_str()).find(|id| !self.steps.iter().any(|s| s.id == *id))
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The runbook's vars cannot be rendered (secrets masked); nothing was written.
    #[error("{0}")]
    Vars(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The step being run, as the runner's pieces need it.
#[derive(Clone, Copy)]
struct At<'s> {
    step: &'s Step,
    /// Its journal id (`<include id>.<step id>` inside an include).
    id: &'s str,
    title: &'s str,
    scope: &'s Arc<Scope>,
}

/// How a step ended, for its record.
struct Ended {
    outcome: Outcome,
    duration: Duration,
    data: StepData,
    error: Option<String>,
}

/// A step's end, written to the journal but not yet synced: reported once it is.
struct Pending {
    id: String,
    outcome: Outcome,
    duration: Duration,
    error: Option<String>,
}

struct Runner<'a> {
    journal: Journal,
    events: &'a dyn Events,
    config: &'a RunConfig,
    masker: &'a Masker,
    /// On resume: each step's state in the journal.
    resume: Option<indexmap::IndexMap<String, StepState>>,
    pending: Vec<Pending>,
    index: usize,
    counts: [usize; 4],
    results: Vec<StepReport>,
    ending: Ending,
    /// Keeps what steps replace or remove, to undo them.
    keeper: Keeper,
    /// How the step being run is backed out.
    backout: Backout,
}

fn scope_for(
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    cwd: PathBuf,
    run_id: &str,
    journal: &Journal,
    durability: Durability,
) -> Result<Arc<Scope>, RunError> {
    let disk = RealFs::for_run(durability.syncs(), crate::os::path::parent_dir(&journal.path));
    let shared = Shared::new(Arc::new(disk), cwd, run_id, false, masker.clone());
    render::new_scope(runbook, inputs, shared).map_err(|e| RunError::Vars(masker.mask(&e.message)))
}

/// Runs (or resumes) `runbook`. The caller holds the lock.
pub fn execute(
    runbook: &Arc<Runbook>,
    path: &Path,
    inputs: &Inputs,
    masker: &Masker,
    config: &RunConfig,
    start: Start,
    events: &dyn Events,
) -> Result<Finished, RunError> {
    let started = Instant::now();
    let all: Vec<(String, String)>;
    let (journal, run_id, resume, cwd) = match start {
        Start::Fresh { plan, cwd, approvals } => {
            let run_id = journal::new_run_id();
            // Vars render before anything is written: a runbook that cannot start leaves no run.
            // Every step as it renders now is recorded: a resume of a changed runbook shows the
            // difference step by step.
            let rendering = crate::engine::plan::rendering(runbook, inputs, masker, cwd.clone())
                .map_err(|e| RunError::Vars(masker.mask(&e.message)))?;
            let rendered: Vec<StepText> = rendering.iter().map(PlannedStep::text).collect();
            all = rendered.iter().map(|s| (s.id.clone(), s.title.clone())).collect();
            let kept_plan = plan.clone();
            let beginning =
                Beginning { run_id: &run_id, cwd: &cwd, plan, rendered, durability: config.durability, approvals };
            let first = Record::run_started(runbook, path, inputs, beginning);
            let journal =
                Journal::create(&config.state_dir, &runbook.name, &run_id, masker.clone(), &first, config.durability)?;
            // What the run was made from, as it was, for its evidence.
            journal::keep_sources(&journal.path, &runbook.file_digests(), kept_plan.as_ref())?;
            (journal, run_id, None, cwd)
        }
        Start::Resume { summary, forced, redo, mark_done, approvals } => {
            all = if summary.rendered.is_empty() {
                summary.steps.iter().map(|s| (s.id.clone(), s.id.clone())).collect()
            } else {
                summary.rendered.iter().map(|s| (s.id.clone(), s.title.clone())).collect()
            };
            let mut journal = Journal::open(&summary.path, masker.clone(), config.durability)?;
            let now = inputs.recordable(runbook);
            let changed = (now != summary.inputs).then_some(now);
            journal.append(&Record::run_resumed(forced, config.durability, changed, approvals), false)?;
            let mut states = summary.step_states.clone();
            for (step, decision) in [(redo, "redo"), (mark_done, "mark_done")] {
                let Some(step) = step else { continue };
                journal.append(&Record::operator_decision(&step, decision), false)?;
                if decision == "redo" {
                    states.shift_remove(&step);
                } else {
                    states.insert(step, StepState::MarkedDone);
                }
            }
            journal.sync()?;
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
    let scope = scope_for(runbook, inputs, masker, cwd, &run_id, &journal, config.durability)?;
    events.run_started(&runbook.name, &run_id, &journal.path, resume.is_some());
    let mut runner = Runner {
        journal,
        events,
        config,
        masker,
        resume,
        pending: Vec::new(),
        index: 0,
        counts: [0; 4],
        results: Vec::new(),
        ending: Ending::Succeeded,
        keeper: Keeper::new(&config.state_dir, &runbook.name, &run_id, config.backup_limit, config.durability.syncs()),
        backout: Backout::Nothing,
    };
    walk(&mut runner, runbook, &scope, "")?;
    let outcome = runner.ending.journal_outcome();
    runner.journal.append(&Record::RunFinished { outcome, time: journal::now() }, true)?;
    runner.flush();
    let counts: Vec<(Outcome, usize)> = Outcome::ALL.into_iter().zip(runner.counts).collect();
    events.run_finished(outcome, &counts, started.elapsed());
    Ok(Finished { ending: runner.ending, steps: runner.results, all, journal: runner.journal.path.clone() })
}

impl Runner<'_> {
    /// Reports the ends of steps whose records are now on disk.
    fn flush(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.events.step_finished(&p.id, p.outcome, p.duration, p.error.as_deref());
        }
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        self.journal.sync()?;
        self.flush();
        Ok(())
    }

    fn next_index(&mut self) -> usize {
        self.index += 1;
        self.index - 1
    }

    /// Records a step's end in the journal (not yet synced), `steps.<id>`, the counts and the
    /// report; returns the end, to be told once it is on disk.
    fn record(&mut self, at: &At, ended: Ended) -> Result<Pending, JournalError> {
        let At { step, id, title, scope } = *at;
        let Ended { outcome, duration, data, error } = ended;
        let confirmed_by = (outcome == Outcome::Done && matches!(step.action, Action::Manual { confirm: true, .. }))
            .then(|| {
                let how = if self.config.confirm == Confirm::Yes { "--yes" } else { "at the terminal" };
                format!("{}@{} ({how})", journal::user(), journal::host())
            });
        let output = data.stdout.is_some().then(|| tail(&data.text(Stream::Any), 20));
        self.journal.append(
            &Record::StepFinished {
                step: id.into(),
                outcome,
                duration_ms: duration.as_millis() as u64,
                cwd: scope.shared.cwd().display().to_string(),
                data: journal_data(data.clone()),
                error: error.clone(),
                confirmed_by,
                time: journal::now(),
                left: if outcome == Outcome::Done || outcome == Outcome::Failed {
                    crate::engine::undo::left_by(&self.backout)
                } else {
                    Vec::new()
                },
            },
            false,
        )?;
        scope.set_step(&step.id, outcome, data);
        self.counts[outcome as usize] += 1;
        self.results.push(StepReport {
            id: id.into(),
            title: title.into(),
            outcome,
            duration,
            error: error.clone(),
            output,
            note: None,
        });
        Ok(Pending { id: id.into(), outcome, duration, error })
    }

    /// A step that ends without running (skipped, or not renderable): its records go to disk with
    /// one sync, then its start and end are told, after the previous step's end.
    fn conclude(
        &mut self,
        step: &Step,
        id: &str,
        outcome: Outcome,
        error: Option<String>,
        scope: &Arc<Scope>,
    ) -> Result<(), JournalError> {
        let index = self.next_index();
        let title = render::title(step, None, scope);
        if outcome == Outcome::Failed {
            self.backout = Backout::Nothing;
            let started =
                Record::StepStarted { step: id.into(), attempt: 1, time: journal::now(), backout: Backout::Nothing };
            self.journal.append(&started, false)?;
        }
        let at = At { step, id, title: &title, scope };
        let end = self.record(&at, Ended { outcome, duration: Duration::ZERO, data: StepData::default(), error })?;
        self.sync()?;
        self.events.step_started(index, id, &title, "");
        self.pending.push(end);
        self.flush();
        Ok(())
    }

    fn after_failure(&mut self, step: &Step, id: &str) -> Flow {
        if step.continue_on_error {
            self.events.message(id, "continue-on-error: the run goes on");
            return Flow::Continue;
        }
        self.ending = Ending::Failed;
        Flow::Stop
    }

    /// `--step`: asks before the step; false when the operator says no.
    fn operator_agrees(&mut self, id: &str, rendered: &Rendered) -> Result<bool, JournalError> {
        self.sync()?;
        let question = format!("Run step {id} ({})? [yes/no] ", rendered.describe(self.masker));
        if matches!(self.events.ask(&question), Ok(true)) {
            return Ok(true);
        }
        self.events.message(id, "stopped by the operator before this step");
        self.ending = Ending::Declined;
        Ok(false)
    }

    /// One try at the step. Its start is on disk before it takes effect; the previous step's
    /// end is told with it, then (on the first try) this step's start.
    fn attempt(
        &mut self,
        at: &At,
        index: usize,
        rendered: &Rendered,
        attempt: u32,
    ) -> Result<(Result<actions::Done, StepError>, Duration), JournalError> {
        let At { step, id, title, scope } = *at;
        let backout = if attempt == 1 { self.backout.clone() } else { Backout::Nothing };
        self.journal.append(&Record::StepStarted { step: id.into(), attempt, time: journal::now(), backout }, true)?;
        self.flush();
        if attempt == 1 {
            self.events.step_started(index, id, title, &rendered.describe(self.masker));
        }
        let t0 = Instant::now();
        let mut world =
            RunWorld { events: self.events, journal: &mut self.journal, step: id, confirm: self.config.confirm };
        let mut cx =
            Context { scope, fs: &*scope.shared.fs, world: &mut world, timeout: step.timeout, read_later: true };
        let result = actions::execute(rendered, &mut cx);
        Ok((result, t0.elapsed()))
    }

    /// How the step will be backed out: its declared undo, or the inverse of each change it will
    /// make (predicted over an overlay of the disk, with what it replaces or removes kept now).
    fn back_out(&mut self, step: &Step, rendered: &Rendered, scope: &Arc<Scope>) -> Backout {
        if step.undo.is_some() {
            return Backout::Declared;
        }
        if step.action.needs_declared_undo() {
            let reason = format!("`{}` has no automatic inverse and the step declares no `undo:`", step.action.key());
            return Backout::Impossible { reason };
        }
        if !matches!(
            rendered,
            Rendered::Copy { .. }
                | Rendered::Rename { .. }
                | Rendered::Mkdir(_)
                | Rendered::Remove { .. }
                | Rendered::Write { .. }
        ) {
            return Backout::Nothing;
        }
        let preview = crate::engine::undo::preview_fs();
        let recorder = Recorder::new(&preview);
        let mut world = actions::Silent;
        let mut cx = Context { scope, fs: &recorder, world: &mut world, timeout: None, read_later: false };
        let _ = actions::execute(rendered, &mut cx);
        self.keeper.back_out(&recorder.changes())
    }
}

impl Phase for Runner<'_> {
    type Error = JournalError;

    fn restored(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> bool {
        let Some(states) = &self.resume else { return false };
        let (outcome, duration_ms, note) = match states.get(id) {
            Some(StepState::Finished { outcome, data, duration_ms, .. })
                if *outcome != Outcome::Failed || step.continue_on_error =>
            {
                scope.set_step(&step.id, *outcome, data.clone());
                (*outcome, *duration_ms, "finished before the resume")
            }
            Some(StepState::MarkedDone) => {
                scope.set_step(&step.id, Outcome::Done, StepData::default());
                (Outcome::Done, 0, "marked done by the operator")
            }
            _ => return false,
        };
        self.index += 1;
        self.results.push(StepReport {
            id: id.into(),
            title: render::title(step, None, scope),
            outcome,
            duration: Duration::from_millis(duration_ms),
            error: None,
            output: None,
            note: Some(note.into()),
        });
        true
    }

    fn before(&mut self) -> Result<Flow, JournalError> {
        if interrupted() {
            self.ending = Ending::Interrupted;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    fn skipped(&mut self, step: &Step, id: &str, scope: &Arc<Scope>) -> Result<Flow, JournalError> {
        self.conclude(step, id, Outcome::Skipped, None, scope)?;
        if let (Some(report), Some(when)) = (self.results.last_mut(), &step.when) {
            report.note = Some(match when {
                Condition::Expr { tpl, .. } => format!("`when` was false: {}", tpl.text),
                Condition::Const(_) => "`when` is false".into(),
            });
        }
        Ok(Flow::Continue)
    }

    fn unrenderable(
        &mut self,
        step: &Step,
        id: &str,
        error: RenderError,
        in_when: bool,
        scope: &Arc<Scope>,
    ) -> Result<Flow, JournalError> {
        let message = if in_when { format!("cannot evaluate `when`: {}", error.message) } else { error.message };
        self.conclude(step, id, Outcome::Failed, Some(message), scope)?;
        Ok(self.after_failure(step, id))
    }

    fn perform(
        &mut self,
        step: &Step,
        id: &str,
        rendered: &Rendered,
        scope: &Arc<Scope>,
    ) -> Result<Flow, JournalError> {
        let index = self.next_index();
        let title = render::title(step, Some(rendered), scope);
        if self.config.step_confirm && !self.operator_agrees(id, rendered)? {
            return Ok(Flow::Stop);
        }
        self.backout = self.back_out(step, rendered, scope);
        let attempts = step.retries + 1;
        for attempt in 1..=attempts {
            let at = At { step, id, title: &title, scope };
            let (result, duration) = self.attempt(&at, index, rendered, attempt)?;
            let (message, data) = match result {
                Ok(done) => {
                    // Told when the next step's start is on disk, with it.
                    let data = done.data.unwrap_or_default();
                    let end = self.record(&at, Ended { outcome: done.outcome, duration, data, error: None })?;
                    self.pending.push(end);
                    return Ok(Flow::Continue);
                }
                Err(StepError::Interrupted) => {
                    self.journal.append(&Record::StepInterrupted { step: id.into(), time: journal::now() }, true)?;
                    self.flush();
                    self.events.message(id, "interrupted; the command's process group was stopped");
                    self.ending = Ending::Interrupted;
                    return Ok(Flow::Stop);
                }
                Err(StepError::Command { message, data }) => (message, *data),
                Err(e @ (StepError::Failed(_) | StepError::NotYetKnown(_))) => (e.to_string(), StepData::default()),
            };
            if attempt < attempts && !interrupted() {
                // A try that failed is on record before the next one starts.
                let record = Record::StepFinished {
                    step: id.into(),
                    outcome: Outcome::Failed,
                    duration_ms: duration.as_millis() as u64,
                    cwd: scope.shared.cwd().display().to_string(),
                    data: journal_data(data),
                    error: Some(message.clone()),
                    confirmed_by: None,
                    time: journal::now(),
                    left: Vec::new(),
                };
                self.journal.append(&record, false)?;
                self.events.message(id, &message);
                self.events.retrying(id, attempt + 1, attempts, step.retry_delay);
                sleep_interruptibly(step.retry_delay);
                continue;
            }
            let ended = Ended { outcome: Outcome::Failed, duration, data, error: Some(message) };
            let end = self.record(&At { step, id, title: &title, scope }, ended)?;
            self.pending.push(end);
            self.sync()?;
            return Ok(self.after_failure(step, id));
        }
        unreachable!("the last attempt returns")
    }

    fn include_failed(&mut self, _: &Step, id: &str, error: RenderError) -> Result<Flow, JournalError> {
        self.events.message(id, &self.masker.mask(&error.message));
        self.ending = Ending::Failed;
        Ok(Flow::Stop)
    }
}

/// A run's world: commands run (their output shown as it comes, their pid journaled once they
/// start), messages and questions go to the operator.
pub(super) struct RunWorld<'a> {
    pub(super) events: &'a dyn Events,
    pub(super) journal: &'a mut Journal,
    pub(super) step: &'a str,
    pub(super) confirm: Confirm,
}

impl World for RunWorld<'_> {
    fn command(&mut self, spec: &Spec, _probe: bool) -> Option<std::io::Result<Captured>> {
        let (events, step) = (self.events, self.step);
        let journal = &mut *self.journal;
        let mut started = |pid: u32| {
            // Written, not synced (the step's start is): a killed engine's successor can tell
            // whether the command it left is still running.
            let _ = journal.append_written(&Record::command_started(step, pid));
        };
        let mut on_line = |pipe, line: &str| events.output(step, stream_of(pipe), line);
        Some(crate::os::process::run(spec, &mut started, &mut on_line))
    }

    fn say(&mut self, text: &str) {
        self.events.message(self.step, text);
    }

    fn confirm(&mut self, question: &str) -> Confirmation {
        match self.confirm {
            Confirm::Yes => Confirmation::Given,
            Confirm::Impossible => Confirmation::NoOneToAsk,
            Confirm::Ask => match self.events.ask(question) {
                Ok(true) => Confirmation::Given,
                Ok(false) => Confirmation::Refused,
                Err(_) if interrupted() => Confirmation::Interrupted,
                Err(e) => Confirmation::Failed(e),
            },
        }
    }

    fn bytes(&mut self, done: u64, total: u64) {
        self.events.bytes(done, total);
    }
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

fn journal_data(mut data: StepData) -> StepData {
    data.stdout = keep_tail(data.stdout);
    data.stderr = keep_tail(data.stderr);
    data
}

fn sleep_interruptibly(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !interrupted() {
        std::thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
}
