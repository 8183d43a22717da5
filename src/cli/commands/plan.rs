//! `plan` (and `run --dry-run`): the dry run, printed, saved for review, reported.

use crate::cli::args::{DocFormat, PlanArgs};
use crate::cli::config::Config;
use crate::cli::continuing;
use crate::cli::documents;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::cli::junit::Case;
use crate::cli::page;
use crate::cli::session;
use crate::state::saved_plan::SavedPlan;

pub fn run(config: &Config, args: &PlanArgs) -> CmdResult {
    let ui = &config.ui;
    let runbook = session::load_runbook(ui, &args.file)?;
    // A plan needs no secret: one not given is shown as asked at run time, never asked for.
    let mut input_args = config.input_args(&args.inputs);
    input_args.secrets_at_run_time = true;
    let inputs = session::resolve_inputs(ui, &runbook, &input_args)?;
    if let Some(state) = &args.skip_if_succeeded_in
        && let Some(done) = continuing::already_succeeded(state, &runbook, &inputs)?
    {
        continuing::report_already_done(config, args.format == DocFormat::Json, &done);
        return Ok(ExitCode::Success);
    }
    let masker = inputs.masker(&runbook);
    let steps = session::plan_steps(config, &runbook, &inputs, &masker, args.backout.backup_limit)?;
    let would_fail = steps.iter().any(|s| s.verdict.fails());
    let cases: Vec<Case> = steps.iter().map(Case::from).collect();
    let plan = SavedPlan::new(&runbook, &args.file, &inputs, steps);
    let saved_as = args.out.as_ref().map(|p| p.display().to_string());
    match args.format {
        DocFormat::Text => print!("{}", documents::plan_text(&runbook.name, &plan.steps, config.ui.verbose > 0)),
        DocFormat::Json => print!("{}", plan.to_text()),
        DocFormat::Markdown => {
            print!("{}", page::markdown(&documents::plan_page(&plan, &plan.digest(), saved_as.as_deref(), &[])))
        }
        DocFormat::Html => {
            print!("{}", page::html(&documents::plan_page(&plan, &plan.digest(), saved_as.as_deref(), &[])))
        }
    }
    if let Some(out) = &args.out {
        session::save(out, &plan.to_text(), "the plan")?;
        ui.info(&format!("plan saved to {}", out.display()));
    }
    session::write_report(args.report.as_deref(), &runbook, cases, &masker)?;
    Ok(if would_fail { ExitCode::StepFailed } else { ExitCode::Success })
}
