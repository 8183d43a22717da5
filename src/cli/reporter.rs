//! What a run shows while it goes (the engine's [`Events`]): plain lines on stderr (with
//! indicatif progress on a terminal outside CI), or one JSON event per line on stdout with
//! `--format json`. Every string passes through the masker first.

use std::io::Write;
use std::time::Duration;

use std::cell::RefCell;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use std::path::{Path, PathBuf};

use crate::cli::args::Format;
use crate::cli::event::{Counts, Event, Text};
use crate::cli::ui::Ui;
use crate::engine::events::Events;
use crate::format::mask::Masker;
use crate::format::model::Stream;
use crate::state::journal::{RollbackOutcome, RunOutcome, UndoOutcome};
use crate::state::outcome::Outcome;

pub struct Reporter {
    pub ui: Ui,
    pub format: Format,
    masker: Masker,
    multi: Option<MultiProgress>,
    bar: Option<ProgressBar>,
    /// A byte bar under the step bar while a large file is copied.
    bytes_bar: RefCell<Option<ProgressBar>>,
    total: usize,
    /// The runbook file, for the command that continues an unfinished run.
    path: PathBuf,
}

/// Copies smaller than this finish too fast for a byte bar to help.
const BYTE_BAR_MIN: u64 = 16 << 20;

impl Reporter {
    pub fn new(ui: &Ui, format: Format, masker: Masker, total: usize, path: &Path) -> Reporter {
        let multi = (ui.interactive && format == Format::Text && !ui.quiet).then(MultiProgress::new);
        let bar = multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter {
            ui: ui.clone(),
            format,
            masker,
            multi,
            bar,
            bytes_bar: RefCell::new(None),
            total,
            path: path.to_path_buf(),
        }
    }

    /// Runs `f` (a prompt) with the progress display out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.multi {
            Some(multi) => multi.suspend(f),
            None => f(),
        }
    }

    /// A line for the operator; never lost when a progress bar is shown.
    fn line(&self, text: &str) {
        let text = self.masker.mask(text);
        self.suspend(|| eprintln!("{text}"));
    }

    fn event(&self, event: Event) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, &event);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    /// Text for an event, masked.
    fn text(&self, text: &str) -> Text {
        Text::masked(&self.masker, text)
    }
}

impl Events for Reporter {
    /// Progress of a large copy: a byte bar while it lasts.
    fn bytes(&self, done: u64, total: u64) {
        let Some(multi) = &self.multi else { return };
        if total < BYTE_BAR_MIN {
            return;
        }
        let mut slot = self.bytes_bar.borrow_mut();
        let bar = slot.get_or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template("  {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
            multi.remove(bar);
            *slot = None;
        }
    }

    fn run_started(&self, runbook: &str, run_id: &str, journal: &std::path::Path, resumed: bool) {
        match self.format {
            Format::Json => {
                let (runbook, run_id, journal) =
                    (runbook.to_owned(), run_id.to_owned(), self.text(&journal.display().to_string()));
                self.event(if resumed {
                    Event::RunResumed { runbook, run_id, journal }
                } else {
                    Event::RunStarted { runbook, run_id, journal }
                })
            }
            Format::Text if !self.ui.quiet => self.line(&format!(
                "{} {runbook} (run {run_id}, journal {})",
                if resumed { "Resuming" } else { "Running" },
                journal.display()
            )),
            Format::Text => {}
        }
    }

    fn step_started(&self, index: usize, id: &str, title: &str, action: &str) {
        match self.format {
            Format::Json => self.event(Event::StepStarted {
                step: id.to_owned(),
                index: index + 1,
                title: self.text(title),
                action: self.text(action),
            }),
            Format::Text => {
                if let Some(bar) = &self.bar {
                    bar.set_position(index as u64);
                    // The elapsed time shown is the current step's.
                    bar.reset_elapsed();
                    bar.set_message(self.masker.mask(&format!("{id}: {title}")));
                }
                if !self.ui.quiet {
                    self.line(&format!("[{}/{}] {id}: {title}", index + 1, self.total));
                    if self.ui.verbose > 0 && action != title {
                        self.line(&format!("      {}", self.ui.style_dim(action)));
                    }
                }
            }
        }
    }

    fn output(&self, id: &str, stream: Stream, line: &str) {
        match self.format {
            Format::Json => {
                self.event(Event::Output { step: id.to_owned(), stream: stream.into(), line: self.text(line) })
            }
            Format::Text if !self.ui.quiet => self.line(&format!("      | {line}")),
            Format::Text => {}
        }
    }

    fn message(&self, id: &str, text: &str) {
        match self.format {
            Format::Json => self.event(Event::Message { step: id.to_owned(), text: self.text(text) }),
            Format::Text => {
                for l in text.lines() {
                    self.line(&format!("      {l}"));
                }
            }
        }
    }

    fn step_finished(&self, id: &str, outcome: Outcome, duration: Duration, error: Option<&str>) {
        match self.format {
            Format::Json => self.event(Event::StepFinished {
                step: id.to_owned(),
                outcome,
                duration_ms: duration.as_millis() as u64,
                error: error.map(|e| self.text(e)),
            }),
            Format::Text => {
                let label = match outcome {
                    Outcome::Failed => self.ui.style_bad("failed"),
                    Outcome::Done => self.ui.style_ok("done"),
                    other => other.as_str().to_string(),
                };
                if outcome == Outcome::Failed || !self.ui.quiet {
                    let time = if self.ui.verbose > 0 {
                        format!(" ({})", crate::cli::ui::duration(duration))
                    } else {
                        String::new()
                    };
                    self.line(&format!("      {label}{time}"));
                }
                if let Some(e) = error {
                    for l in e.lines() {
                        self.line(&format!("      {l}"));
                    }
                }
            }
        }
    }

    fn retrying(&self, id: &str, attempt: u32, of: u32, delay: Duration) {
        match self.format {
            Format::Json => self.event(Event::Retry { step: id.to_owned(), attempt, of }),
            Format::Text => {
                self.line(&format!("      retrying ({attempt}/{of}) in {}", crate::cli::ui::duration(delay)))
            }
        }
    }

    fn run_finished(&self, outcome: RunOutcome, counts: &[(Outcome, usize)], elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let run_outcome = outcome;
        let outcome = outcome.as_str();
        let extra = match outcome {
            "succeeded" => String::new(),
            _ => format!(
                " Fix the cause, then continue with: runbook resume {}",
                crate::os::args::quote(&self.path.display().to_string())
            ),
        };
        match self.format {
            Format::Json => self.event(Event::RunFinished {
                outcome: run_outcome,
                steps: Counts::of(counts),
                duration_ms: elapsed.as_millis() as u64,
            }),
            Format::Text => {
                let parts: Vec<String> =
                    counts.iter().filter(|(_, n)| *n > 0).map(|(o, n)| format!("{n} {}", o.as_str())).collect();
                let summary = if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) };
                self.line(&format!("Run {outcome}{summary}.{extra}"));
            }
        }
    }

    fn ask(&self, question: &str) -> std::io::Result<bool> {
        self.suspend(|| crate::cli::ui::ask(question))
    }

    fn rollback_started(&self, run_id: &str, steps: usize) {
        match self.format {
            Format::Json => self.event(Event::RollbackStarted { run_id: run_id.to_owned(), steps }),
            Format::Text if !self.ui.quiet => {
                let what = if steps == 1 { "1 step".to_string() } else { format!("{steps} steps") };
                self.line(&format!("Rolling back run {run_id}: {what} to undo, newest first"));
            }
            Format::Text => {}
        }
    }

    fn undo_started(&self, index: usize, id: &str, what: &str) {
        match self.format {
            Format::Json => {
                self.event(Event::UndoStarted { step: id.to_owned(), index: index + 1, action: self.text(what) })
            }
            Format::Text if !self.ui.quiet => self.line(&format!("[undo {}] {id}: {what}", index + 1)),
            Format::Text => {}
        }
    }

    fn undo_finished(&self, id: &str, outcome: UndoOutcome, duration: Duration, error: Option<&str>) {
        match self.format {
            Format::Json => self.event(Event::UndoFinished {
                step: id.to_owned(),
                outcome,
                duration_ms: duration.as_millis() as u64,
                error: error.map(|e| self.text(e)),
            }),
            Format::Text => {
                let label = match outcome {
                    UndoOutcome::Failed => self.ui.style_bad(outcome.as_str()),
                    UndoOutcome::Impossible => self.ui.style_bad(outcome.as_str()),
                    UndoOutcome::Done => self.ui.style_ok(outcome.as_str()),
                    UndoOutcome::Unchanged => outcome.as_str().to_string(),
                };
                if outcome == UndoOutcome::Failed || !self.ui.quiet {
                    self.line(&format!("      {label}"));
                }
                for l in error.into_iter().flat_map(str::lines) {
                    self.line(&format!("      {l}"));
                }
            }
        }
    }

    fn rollback_finished(&self, outcome: RollbackOutcome, not_undone: &[String], elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        match self.format {
            Format::Json => self.event(Event::RollbackFinished {
                outcome,
                not_undone: not_undone.to_vec(),
                duration_ms: elapsed.as_millis() as u64,
            }),
            Format::Text => {
                let file = crate::os::args::quote(&self.path.display().to_string());
                let line = match outcome {
                    RollbackOutcome::Complete => "Rolled back completely.".to_string(),
                    RollbackOutcome::Partial => format!(
                        "Rolled back partly: {} cannot be undone; see to {} by hand.",
                        not_undone.join(", "),
                        if not_undone.len() == 1 { "it" } else { "them" }
                    ),
                    RollbackOutcome::Failed => {
                        format!("Rollback failed. Fix the cause, then continue it with: runbook rollback {file}")
                    }
                    RollbackOutcome::Interrupted => {
                        format!("Rollback interrupted. Continue it with: runbook rollback {file}")
                    }
                };
                self.line(&line);
            }
        }
    }
}
