//! `plan` (and `run --dry-run`): the dry run, printed, saved for review, reported.

use crate::cli::args::{Format, PlanArgs};
use crate::cli::config::Config;
use crate::cli::documents;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::cli::junit::Case;
use crate::cli::session;
use crate::state::saved_plan::SavedPlan;

pub fn run(config: &Config, args: &PlanArgs) -> CmdResult {
    let ui = &config.ui;
    let runbook = session::load_runbook(ui, &args.file)?;
    let inputs = session::resolve_inputs(ui, &runbook, &config.input_args(&args.inputs))?;
    let masker = inputs.masker(&runbook);
    let steps = session::plan_steps(config, &runbook, &inputs, &masker)?;
    let would_fail = steps.iter().any(|s| s.verdict.fails());
    let cases: Vec<Case> = steps.iter().map(Case::from).collect();
    let plan = SavedPlan::new(&runbook, &args.file, &inputs, steps);
    match args.format {
        Format::Text => print!("{}", documents::plan_text(&runbook.name, &plan.steps)),
        Format::Json => print!("{}", plan.to_text()),
    }
    if let Some(out) = &args.out {
        session::save(out, &plan.to_text(), "the plan")?;
        ui.info(&format!("plan saved to {}", out.display()));
    }
    session::write_report(args.report.as_deref(), &runbook, cases, &masker)?;
    Ok(if would_fail { ExitCode::StepFailed } else { ExitCode::Success })
}
