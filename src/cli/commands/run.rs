//! `run`: a runbook, or exactly a reviewed plan (`--plan`), journaled step by step.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::args::RunArgs;
use crate::cli::config::Config;
use crate::cli::continuing::{self, Continuation, continue_run};
use crate::cli::documents;
use crate::cli::exit::ExitCode;
use crate::cli::exit::{CmdResult, Failure};
use crate::cli::policy::Policy;
use crate::cli::session::{self, Session};
use crate::compile::inputs::Inputs;
use crate::compile::runbook::{FileDigest, Runbook};
use crate::engine::runner::Start;
use crate::format::diagnostic::Diagnostic;
use crate::format::mask::Masker;
use crate::os::args::quote;
use crate::state::approvals::Approver;
use crate::state::drift::{self, Difference};
use crate::state::journal::{self, Durability, Journal, Record, RunOutcome, RunSummary};
use crate::state::saved_plan::{SavedPlan, Verdict};

pub fn run(config: &Config, args: &RunArgs) -> CmdResult {
    if let Some(plan) = &args.plan {
        return run_reviewed_plan(config, args, plan);
    }
    let file: PathBuf = args.file.clone().expect("clap requires FILE without --plan");
    Policy::resolve(&args.approval)?.refuse_unreviewed(&format!("not run: {}", file.display()))?;
    let runbook = session::load_runbook(&config.ui, &file)?;
    let state = &args.run.state.state_dir;
    let newest = journal::newest_run(state, &runbook.name)?;
    if args.continue_unfinished
        && let Some(summary) = newest.clone().filter(RunSummary::unfinished)
    {
        let continuation = Continuation {
            inputs: &args.inputs,
            run: &args.run,
            approval: &args.approval,
            force: false,
            redo: None,
            mark_done: None,
        };
        return continue_run(config, &continuation, &file, summary);
    }
    let inputs = session::resolve_inputs(&config.ui, &runbook, &config.input_args(&args.inputs))?;
    if args.skip_if_succeeded
        && let Some(done) = newest.filter(|s| continuing::already_done(s, &runbook, &inputs))
    {
        continuing::report_already_done(config, args.run.format == crate::cli::args::Format::Json, &done);
        return Ok(ExitCode::Success);
    }
    start(config, args, &file, &runbook, &inputs, None, Vec::new())
}

/// On a terminal, before anything changes: the plan's summary, its predicted failures, and the
/// question. Only `y` or `yes` goes on; any other answer refuses (exit 3) with nothing touched.
fn ask_first(
    config: &Config,
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    masker: &Masker,
    backup_limit: u64,
) -> Result<(), Failure> {
    let ui = &config.ui;
    let steps = session::plan_steps(config, runbook, inputs, masker, backup_limit)?;
    ui.info(&format!("Plan for {} ({} steps): {}.", runbook.name, steps.len(), documents::summary(&steps)));
    for (i, s) in steps.iter().enumerate() {
        if let Verdict::WouldFail(why) = &s.verdict {
            let first = why.lines().next().unwrap_or("");
            ui.info(&ui.style_bad(&format!("  step {} ({}) would fail: {first}", i + 1, s.id)));
        }
    }
    let question = format!("Run {} steps? [y/N] ", steps.len());
    match crate::cli::ui::ask_once(&question) {
        Ok(true) => Ok(()),
        _ => Err(Failure::refused(
            Diagnostic::error("not run: the operator did not say yes; nothing was changed")
                .hint("`--yes` runs without asking; `runbook plan FILE` shows every step"),
        )),
    }
}

/// Takes the lock, refuses while an unfinished run exists (unless `--fresh`), then runs.
fn start(
    config: &Config,
    args: &RunArgs,
    file: &Path,
    runbook: &Arc<Runbook>,
    inputs: &Inputs,
    plan: Option<FileDigest>,
    approvals: Vec<Approver>,
) -> CmdResult {
    let masker = inputs.masker(runbook);
    let state = &args.run.state.state_dir;
    // A reviewed plan was the question; so is `--yes`. Asked before anything is written (the
    // state folder included), and only when the run could start.
    if plan.is_none() && !args.run.yes && config.can_ask {
        refuse_unfinished(config, args, file, runbook, false)?;
        ask_first(config, runbook, inputs, &masker, args.run.backout.backup_limit)?;
    }
    let _lock = session::take_lock(&config.ui, state, &runbook.name, "run")?;
    refuse_unfinished(config, args, file, runbook, true)?;
    let start = Start::Fresh { plan, cwd: config.cwd.clone(), approvals };
    Session { config, flags: &args.run, runbook, path: file, inputs, masker: &masker }.execute(start)
}

/// An unfinished run of the same runbook is refused (exit 3), or with `--fresh` marked abandoned
/// (when `abandon`: the caller holds the lock).
fn refuse_unfinished(
    config: &Config,
    args: &RunArgs,
    file: &Path,
    runbook: &Runbook,
    abandon: bool,
) -> Result<(), Failure> {
    let state = &args.run.state.state_dir;
    if let Some(summary) = journal::newest_run(state, &runbook.name)?.filter(|s| s.unfinished()) {
        let file_word = quote(&file.display().to_string());
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
        if abandon {
            let mut old = Journal::open(&summary.path, Masker::default(), Durability::Full)?;
            old.append(&Record::RunFinished { outcome: RunOutcome::Abandoned, time: journal::now() }, true)?;
            config.ui.info(&format!("run {} marked abandoned (--fresh)", summary.run_id));
        }
    }
    Ok(())
}

/// The command that makes a new plan of the same runbook with the same inputs, in place of the
/// reviewed one.
fn replan_command(plan: &SavedPlan, plan_path: &Path) -> String {
    let mut words = vec!["runbook".to_string(), "plan".into(), quote(&plan.path)];
    for (name, value) in &plan.inputs {
        let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
        words.push("--var".into());
        words.push(quote(&format!("{name}={text}")));
    }
    words.push("--out".into());
    words.push(quote(&plan_path.display().to_string()));
    words.join(" ")
}

/// `run --plan`: runs only if the runbook and inputs still render to exactly the reviewed plan.
fn run_reviewed_plan(config: &Config, args: &RunArgs, plan_path: &Path) -> CmdResult {
    let ui = &config.ui;
    let (plan, _) = SavedPlan::read(plan_path)?;
    // Approvals first: an unapproved plan asks for nothing and touches nothing.
    let policy = Policy::resolve(&args.approval)?;
    let bytes = std::fs::read(plan_path).map_err(|e| {
        Diagnostic::error(format!("cannot read {}: {}", plan_path.display(), crate::os::fs::io_reason(&e)))
    })?;
    // The run records the digest of the bytes the approvals signed.
    let digest = crate::format::digest::sha256_hex(&bytes);
    let approvers = policy.check_plan(plan_path, &bytes)?;
    if !approvers.is_empty() {
        let names: Vec<&str> = approvers.iter().map(|a| a.principal.as_str()).collect();
        ui.info(&format!("the plan {} is approved by {}", plan_path.display(), names.join(", ")));
    }
    let file = PathBuf::from(&plan.path);
    let runbook = session::load_runbook(ui, &file)?;
    // Inputs: exactly the reviewed values; secrets are asked for again.
    // Secrets may come from a file or standard input (`--secrets-from`), never the command line.
    let secrets_only =
        crate::cli::args::InputFlags { secrets_from: args.inputs.secrets_from.clone(), ..Default::default() };
    let newest = journal::newest_run(&args.run.state.state_dir, &runbook.name)?;
    let same_plan = |s: &RunSummary| s.plan.as_ref().is_some_and(|p| p.sha256 == digest);
    // `--continue`: an unfinished run of this same plan goes on (its approvals checked again).
    if args.continue_unfinished
        && let Some(summary) = newest.clone().filter(RunSummary::unfinished)
    {
        if !same_plan(&summary) {
            return Err(Failure::refused(
                Diagnostic::error(format!(
                    "run {} of `{}` is unfinished, and it is not of the plan {}",
                    summary.run_id,
                    runbook.name,
                    plan_path.display()
                ))
                .hint(format!(
                    "finish it with `runbook resume {}` first, or start over with --fresh",
                    quote(&plan.path)
                )),
            ));
        }
        let continuation = Continuation {
            inputs: &secrets_only,
            run: &args.run,
            approval: &args.approval,
            force: false,
            redo: None,
            mark_done: None,
        };
        return continue_run(config, &continuation, &file, summary);
    }
    let mut input_args = config.input_args(&secrets_only);
    input_args.recorded = Some((plan.inputs.clone(), format!("the reviewed plan {}", plan_path.display())));
    let inputs = session::resolve_inputs(ui, &runbook, &input_args)?;
    if args.skip_if_succeeded
        && let Some(done) = newest.filter(|s| same_plan(s) && continuing::already_done(s, &runbook, &inputs))
    {
        continuing::report_already_done(config, args.run.format == crate::cli::args::Format::Json, &done);
        return Ok(ExitCode::Success);
    }
    let masker = inputs.masker(&runbook);
    let steps = session::plan_steps(config, &runbook, &inputs, &masker, args.run.backout.backup_limit)?;
    let differences = plan.drift(&runbook, &inputs, &steps);
    if !differences.is_empty() {
        let mut list = drift::render(&differences, "reviewed");
        if !differences.iter().any(|d| matches!(d, Difference::Input(_)) || d.is_step()) {
            list.push_str("  text changed; every step renders as reviewed\n");
        }
        return Err(Failure::refused(
            Diagnostic::error(masker.mask(&format!(
                "the runbook no longer renders to the reviewed plan {}:\n{}",
                plan_path.display(),
                list.trim_end()
            )))
            .hint(format!("review a new plan before running: `{}`", replan_command(&plan, plan_path))),
        ));
    }
    ui.info(&format!("the runbook renders to the reviewed plan {} ({} steps)", plan_path.display(), steps.len()));
    let reference = FileDigest { path: plan_path.display().to_string(), sha256: digest };
    start(config, args, &file, &runbook, &inputs, Some(reference), approvers)
}
