use std::path::{Path, PathBuf};

use crate::cli::args::ResumeArgs;
use crate::cli::exit::{CmdResult, Failure};
use crate::cli::ui::Ui;
use crate::compile::inputs::{self, Origin};
use crate::engine::runner::{self, Start, shell_word};
use crate::format::diagnostic::Diagnostic;
use crate::state::journal::{self, RunSummary, StepState};

fn journal_error(e: journal::JournalError) -> Failure {
    Failure::invalid(vec![
        Diagnostic::error(e.to_string()).hint("the journal is the record of the run; repair or move that file by hand"),
    ])
}

pub fn run(ui: &Ui, args: &ResumeArgs) -> CmdResult {
    crate::os::signals::install_handlers();
    let state = &args.run.state.state_dir;
    // Which run: the newest unfinished one of FILE's runbook, or of any runbook.
    let (file, summary) = match &args.file {
        Some(file) => {
            let runbook = crate::cli::session::load_runbook(ui, file)?;
            let newest = journal::newest_run(state, &runbook.name).map_err(journal_error)?;
            let summary = match newest {
                Some(s) if s.unfinished() => s,
                // Resuming a finished run is not an error: there is simply nothing left to do.
                Some(s) if s.outcome == Some(journal::RunOutcome::Succeeded) => {
                    ui.info(&format!(
                        "nothing to resume: run {} of `{}` finished successfully{}",
                        s.run_id,
                        runbook.name,
                        s.finished.as_ref().map(|t| format!(" at {t}")).unwrap_or_default()
                    ));
                    return Ok(crate::cli::exit::ExitCode::Success);
                }
                _ => {
                    return Err(Failure::invalid(vec![
                        Diagnostic::error(format!(
                            "there is no unfinished run of `{}` to resume in {}",
                            runbook.name,
                            state.display()
                        ))
                        .hint(format!("start one with `runbook run {}`", shell_word(&file.display().to_string()))),
                    ]));
                }
            };
            (file.clone(), summary)
        }
        None => {
            let summary = newest_unfinished(state, None)?.ok_or_else(|| {
                Failure::invalid(vec![Diagnostic::error(format!(
                    "there is no unfinished run to resume in {}",
                    state.display()
                ))])
            })?;
            // The recorded path is as it was given; from elsewhere, take it from where the run began.
            let given = PathBuf::from(&summary.runbook_path);
            let file =
                if given.is_relative() && !given.exists() { Path::new(&summary.cwd).join(&given) } else { given };
            (file, summary)
        }
    };
    let runbook = crate::cli::session::load_runbook(ui, &file)?;
    if summary.torn_tail {
        ui.diagnostics(&[Diagnostic::warning(format!(
            "the last line of {} was cut short (a crash while writing it); it is ignored",
            summary.path.display()
        ))]);
    }
    // A changed runbook: list what changed; with --force, accept it when nothing before the stop changed.
    let mut current = Vec::new();
    runner::step_digests(&runbook, "", &mut current);
    let changed: Vec<String> = current
        .iter()
        .filter(|c| !summary.steps.iter().any(|s| s.id == c.id && s.fingerprint == c.fingerprint))
        .map(|c| c.id.clone())
        .chain(
            summary
                .steps
                .iter()
                .filter(|s| !current.iter().any(|c| c.id == s.id))
                .map(|s| format!("{} (removed)", s.id)),
        )
        .collect();
    // Any file the run loaded (the runbook and each include), not only the steps, may matter.
    // Paths were recorded as given, relative to where the run began; compare them as files.
    let here = std::env::current_dir().unwrap_or_default();
    let key = |base: &Path, p: &str| {
        let full = base.join(p);
        std::fs::canonicalize(&full).unwrap_or(full)
    };
    let then: Vec<(PathBuf, &str)> =
        summary.files.iter().map(|f| (key(Path::new(&summary.cwd), &f.path), f.sha256.as_str())).collect();
    let now: Vec<(PathBuf, &str, String)> = runbook
        .files()
        .iter()
        .map(|(src, sha)| (key(&here, &src.path.display().to_string()), *sha, src.display_path()))
        .collect();
    let mut changed_files: Vec<String> = now
        .iter()
        .filter(|(path, sha, _)| !then.iter().any(|(p, s)| p == path && s == sha))
        .map(|(_, _, shown)| shown.clone())
        .collect();
    changed_files.extend(
        then.iter()
            .filter(|(p, _)| !now.iter().any(|(path, _, _)| path == p))
            .map(|(p, _)| format!("{} (no longer loaded)", p.display())),
    );
    let files_changed = !changed_files.is_empty();
    let stop_id = summary.stopped_at().map(|(id, _)| id.to_owned());
    let stop_index =
        stop_id.as_ref().and_then(|id| summary.steps.iter().position(|s| s.id == *id)).unwrap_or(summary.steps.len());
    if files_changed || !changed.is_empty() {
        let before_stop: Vec<&String> = changed
            .iter()
            .filter(|id| {
                summary
                    .steps
                    .iter()
                    .position(|s| s.id == **id || format!("{} (removed)", s.id) == **id)
                    .is_some_and(|i| i < stop_index)
            })
            .collect();
        let listed = if changed.is_empty() {
            "none (the change is outside the steps: inputs, vars, comments or layout)".to_string()
        } else {
            changed.join(", ")
        };
        if !args.force || !before_stop.is_empty() {
            let hint = if before_stop.is_empty() {
                "if the change is intended, resume with --force".to_string()
            } else {
                format!(
                    "steps that already ran changed ({}); --force cannot accept that. Start over with `runbook run {} --fresh`",
                    before_stop.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    shell_word(&file.display().to_string())
                )
            };
            return Err(Failure::refused(
                Diagnostic::error(format!(
                    "the runbook {} changed since run {} started ({} changed); steps that differ: {listed}",
                    file.display(),
                    summary.run_id,
                    changed_files.join(", ")
                ))
                .hint(hint),
            ));
        }
        ui.info(&format!("note: the runbook changed (steps: {listed}); accepted with --force"));
    }
    // A command that started but never finished may have run.
    for decision in [&args.redo, &args.mark_done].into_iter().flatten() {
        if !summary.steps.iter().any(|s| s.id == *decision) {
            return Err(Failure::invalid(vec![Diagnostic::error(format!(
                "`{decision}` is not a step of run {}",
                summary.run_id
            ))]));
        }
    }
    if let Some((id, state)) = summary.stopped_at()
        && matches!(state, StepState::Started | StepState::Interrupted)
    {
        let digest = summary.steps.iter().find(|s| s.id == id);
        let decided = args.redo.as_deref() == Some(id) || args.mark_done.as_deref() == Some(id);
        if digest.is_some_and(|d| d.command && !d.idempotent) && !decided {
            let file_word = shell_word(&file.display().to_string());
            return Err(Failure::refused(Diagnostic::error(format!("step `{id}` started a command that never reported back: it may have run")).hint(format!(
                "check what it did, then either `runbook resume {file_word} --redo {id}` to run it again, or `runbook resume {file_word} --mark-done {id}` if it completed"
            ))));
        }
    }
    // Inputs: the run's recorded values, then what is given now; secrets are asked again.
    let mut input_args = args.inputs.to_args(inputs::can_prompt());
    let recorded = RecordedVars::new(&summary.inputs)?;
    input_args.vars_files.insert(0, recorded.path().to_path_buf());
    let (mut inputs, warnings) = inputs::resolve(&runbook, &input_args).map_err(Failure::invalid)?;
    ui.diagnostics(&warnings);
    for v in inputs.values.values_mut() {
        if v.origin == (Origin::VarsFile { path: recorded.path().to_path_buf() }) {
            v.origin = Origin::VarsFile { path: summary.path.clone() };
        }
    }
    let masker = super::plan::masker(&runbook, &inputs);
    let lock = crate::cli::session::lock(state, &runbook.name, "resume")?;
    if let Some(stale) = &lock.stale {
        ui.info(&format!(
            "note: the previous holder of the lock (pid {} on {}) is gone; its lock was stale",
            stale.pid, stale.host
        ));
    }
    let config = crate::cli::session::run_config(&args.run);
    let start = Start::Resume {
        summary: Box::new(summary),
        forced: args.force,
        redo: args.redo.clone(),
        mark_done: args.mark_done.clone(),
    };
    let finished = runner::execute(ui, &runbook, &file, &inputs, masker.clone(), &config, start)?;
    drop(lock);
    crate::cli::session::write_report(
        args.run.report.as_deref(),
        &runbook,
        finished.steps.iter().map(Into::into).collect(),
        &masker,
    )?;
    Ok(finished.code)
}

fn newest_unfinished(state: &std::path::Path, runbook: Option<&str>) -> Result<Option<RunSummary>, Failure> {
    for path in journal::list_runs(state, runbook) {
        let summary = journal::summarize(&path).map_err(journal_error)?;
        if summary.unfinished() {
            return Ok(Some(summary));
        }
        if runbook.is_some() {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Recorded non-secret input values as a temporary vars file (a layer under what is given now).
pub struct RecordedVars {
    dir: PathBuf,
    path: PathBuf,
}

impl RecordedVars {
    pub fn new(values: &indexmap::IndexMap<String, serde_json::Value>) -> Result<RecordedVars, Failure> {
        let dir = std::env::temp_dir().join(format!("runbook-inputs-{}", std::process::id()));
        let err = |e: std::io::Error| Diagnostic::error(format!("cannot create a temporary file: {e}"));
        std::fs::create_dir_all(&dir).map_err(err)?;
        let path = dir.join("recorded-inputs.yaml");
        // JSON is YAML: the values keep their types.
        std::fs::write(&path, serde_json::to_string(values).expect("inputs serialize")).map_err(err)?;
        Ok(RecordedVars { dir, path })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for RecordedVars {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
