use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::cli::args::{PlanArgs, RunArgs};
use crate::cli::exit::{CmdResult, Failure};
use crate::cli::ui::Ui;
use crate::compile::inputs::{self, InputArgs, Inputs};
use crate::compile::runbook::Runbook;
use crate::engine::plan::PlannedStep;
use crate::engine::runner::{self, Start, shell_word};
use crate::format::diagnostic::Diagnostic;
use crate::state::journal::{self, FileDigest, Record, RunOutcome};

pub fn run(ui: &Ui, args: &RunArgs) -> CmdResult {
    if let Some(plan) = &args.plan {
        return run_reviewed_plan(ui, args, plan);
    }
    let file: PathBuf = args.file.clone().expect("clap requires FILE without --plan");
    if args.dry_run {
        let plan = PlanArgs {
            file,
            inputs: args.inputs.clone(),
            format: args.run.format,
            out: None,
            report: args.run.report.clone(),
        };
        return super::plan::run(ui, &plan);
    }
    let runbook = crate::cli::session::load_runbook(ui, &file)?;
    let inputs = super::plan::resolve_inputs(ui, &runbook, &args.inputs.to_args(inputs::can_prompt()))?;
    start(ui, args, &file, &runbook, &inputs, None)
}

/// Takes the lock, refuses while an unfinished run exists (unless `--fresh`), then runs.
fn start(
    ui: &Ui,
    args: &RunArgs,
    file: &Path,
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    plan: Option<FileDigest>,
) -> CmdResult {
    crate::os::signals::install_handlers();
    let masker = super::plan::masker(runbook, inputs);
    let state = &args.run.state.state_dir;
    let lock = crate::cli::session::lock(state, &runbook.name, "run")?;
    if let Some(stale) = &lock.stale {
        ui.info(&format!(
            "note: the previous holder of the lock (pid {} on {}) is gone; its lock was stale",
            stale.pid, stale.host
        ));
    }
    let newest = journal::newest_run(state, &runbook.name)
        .map_err(|e| Failure::invalid(vec![Diagnostic::error(e.to_string())]))?;
    if let Some(summary) = newest.filter(|s| s.unfinished()) {
        let file_word = shell_word(&file.display().to_string());
        if !args.fresh {
            let at = summary
                .stopped_at()
                .map_or_else(|| "before its first step".to_string(), |(id, _)| format!("at step `{id}`"));
            return Err(Failure::refused(
                Diagnostic::error(format!("run {} of `{}` is unfinished: it stopped {at}", summary.run_id, runbook.name))
                    .hint(format!(
                        "continue it with `runbook resume {file_word}`, or start over with `runbook run {file_word} --fresh` (the old run is kept, marked abandoned)"
                    )),
            ));
        }
        let mut j = journal::Journal::open(&summary.path, masker.clone())
            .map_err(|e| Failure::invalid(vec![Diagnostic::error(e.to_string())]))?;
        j.append(&Record::RunFinished { outcome: RunOutcome::Abandoned, time: journal::now() }, true)
            .map_err(|e| Failure::invalid(vec![Diagnostic::error(e.to_string())]))?;
        ui.info(&format!("run {} marked abandoned (--fresh)", summary.run_id));
    }
    let cwd = std::env::current_dir().map_err(|e| Diagnostic::error(format!("cannot read the current folder: {e}")))?;
    let config = crate::cli::session::run_config(&args.run);
    let finished = runner::execute(ui, runbook, file, inputs, masker.clone(), &config, Start::Fresh { plan, cwd })?;
    drop(lock);
    crate::cli::session::write_report(
        args.run.report.as_deref(),
        runbook,
        finished.steps.iter().map(Into::into).collect(),
        &masker,
    )?;
    Ok(finished.code)
}

/// A plan saved by `plan --out`, as read back.
#[derive(Debug, serde::Deserialize)]
pub struct SavedPlan {
    pub format: u32,
    pub tool_version: String,
    pub runbook: String,
    pub path: String,
    pub files: Vec<FileDigest>,
    pub inputs: IndexMap<String, serde_json::Value>,
    pub secret_inputs: Vec<String>,
    pub steps: Vec<PlannedStep>,
}

pub fn read_plan(path: &Path) -> Result<(SavedPlan, String), Failure> {
    let text = crate::compile::read_text(path)?;
    let plan: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        let source = crate::format::source::Source::new(path, text.clone());
        let offset = source.offset_of(e.line(), e.column());
        Failure::invalid(vec![
            Diagnostic::error(format!("this is not a saved plan: {e}"))
                .at(crate::format::source::Located::new(&source, crate::format::source::Span::new(offset, 1)))
                .hint("give a file written by `runbook plan ... --out PLAN`"),
        ])
    })?;
    if plan.format != 1 {
        return Err(Failure::invalid(vec![Diagnostic::error(format!(
            "{} is a plan of format {}; this version reads format 1",
            path.display(),
            plan.format
        ))]));
    }
    let digest = crate::compile::sha256_hex(text.as_bytes());
    Ok((plan, digest))
}

/// `run --plan`: runs only if the runbook and inputs still render to exactly the reviewed plan.
fn run_reviewed_plan(ui: &Ui, args: &RunArgs, plan_path: &Path) -> CmdResult {
    let (plan, digest) = read_plan(plan_path)?;
    let file = PathBuf::from(&plan.path);
    let runbook = crate::cli::session::load_runbook(ui, &file)?;
    let mut differences = Vec::new();
    let now_files: Vec<(String, String)> =
        runbook.files().iter().map(|(s, sha)| (s.path.display().to_string(), (*sha).to_owned())).collect();
    for f in &plan.files {
        match now_files.iter().find(|(p, _)| *p == f.path) {
            Some((_, sha)) if *sha == f.sha256 => {}
            Some(_) => differences.push(format!("{} changed since the review", f.path)),
            None => differences.push(format!("{} is no longer loaded", f.path)),
        }
    }
    for (p, _) in &now_files {
        if !plan.files.iter().any(|f| f.path == *p) {
            differences.push(format!("{p} is loaded now but was not reviewed"));
        }
    }
    // Inputs: exactly the reviewed values; secrets are asked for again.
    let recorded = super::resume::RecordedVars::new(&plan.inputs)?;
    let input_args =
        InputArgs { vars_files: vec![recorded.path().to_path_buf()], vars: Vec::new(), prompt: inputs::can_prompt() };
    let inputs = super::plan::resolve_inputs(ui, &runbook, &input_args)?;
    for (name, value) in &inputs.values {
        if plan.secret_inputs.contains(name) || runbook.inputs.get(name).is_some_and(|d| d.secret) {
            continue;
        }
        match plan.inputs.get(name) {
            Some(reviewed) if reviewed == &value.value => {}
            Some(reviewed) => differences.push(format!("input `{name}`: reviewed {reviewed}, now {}", value.value)),
            None => differences.push(format!("input `{name}` was not in the reviewed plan")),
        }
    }
    let masker = super::plan::masker(&runbook, &inputs);
    let steps = super::plan::predict(&runbook, &inputs, &masker)?;
    differences.extend(step_differences(&plan.steps, &steps));
    if !differences.is_empty() {
        let list: String = differences.iter().map(|d| format!("\n  - {d}")).collect();
        return Err(Failure::refused(
            Diagnostic::error(format!(
                "the runbook no longer renders to the reviewed plan {}:{list}",
                plan_path.display()
            ))
            .hint("review a new plan (`runbook plan ... --out PLAN`) before running"),
        ));
    }
    ui.info(&format!("the runbook renders to the reviewed plan {} ({} steps)", plan_path.display(), steps.len()));
    let reference = FileDigest { path: plan_path.display().to_string(), sha256: digest };
    start(ui, args, &file, &runbook, &inputs, Some(reference))
}

/// Step-by-step differences between a reviewed plan and the plan now.
pub fn step_differences(reviewed: &[PlannedStep], now: &[PlannedStep]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in reviewed.iter().enumerate() {
        match now.iter().position(|n| n.id == r.id) {
            None => out.push(format!("step {} ({}) is gone", i + 1, r.id)),
            Some(j) => {
                let n = &now[j];
                if j != i {
                    out.push(format!("step `{}` moved from position {} to {}", r.id, i + 1, j + 1));
                }
                if n.action != r.action {
                    let show = |a: &Option<String>| a.clone().unwrap_or_else(|| "(decided at run time)".into());
                    out.push(format!(
                        "step {} ({}): reviewed `{}`, now `{}`",
                        i + 1,
                        r.id,
                        show(&r.action),
                        show(&n.action)
                    ));
                } else if n.title != r.title {
                    out.push(format!("step {} ({}): reviewed title `{}`, now `{}`", i + 1, r.id, r.title, n.title));
                }
            }
        }
    }
    for (j, n) in now.iter().enumerate() {
        if !reviewed.iter().any(|r| r.id == n.id) {
            out.push(format!("step {} ({}) is new", j + 1, n.id));
        }
    }
    out
}
