//! `status`: the runs in the state folder, where each stopped; or one run's record, to attach to
//! the ticket (Markdown or HTML).

use std::fmt::Write as _;

use crate::cli::args::{DocFormat, StatusArgs};
use crate::cli::config::Config;
use crate::cli::documents::{self, state_label};
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::page;
use crate::format::diagnostic::Diagnostic;
use crate::state::journal::{self, RunSummary, StepState};

pub fn run(config: &Config, args: &StatusArgs) -> CmdResult {
    let runs = runs(config, args)?;
    match args.format {
        DocFormat::Json => {
            let doc: Vec<serde_json::Value> = runs.iter().map(documents::run_json).collect();
            println!("{}", serde_json::to_string_pretty(&doc).expect("status serializes"));
        }
        DocFormat::Text if runs.is_empty() => println!("no runs in {}", args.state.state_dir.display()),
        DocFormat::Text => print!("{}", runs.iter().map(text).collect::<String>()),
        DocFormat::Markdown | DocFormat::Html => {
            // The record of one run: the one named, or the newest.
            let Some(run) = runs.first() else {
                return Err(Diagnostic::error(format!("there is no run in {}", args.state.state_dir.display()))
                    .hint("`runbook run FILE` starts one")
                    .into());
            };
            let page = documents::run_page(run);
            let shown = if args.format == DocFormat::Html { page::html(&page) } else { page::markdown(&page) };
            print!("{shown}");
        }
    }
    Ok(ExitCode::Success)
}

/// The runs asked about, newest first: those of FILE's runbook, the run named RUN, or all.
fn runs(config: &Config, args: &StatusArgs) -> Result<Vec<RunSummary>, Failure> {
    let ui = &config.ui;
    let state = &args.state.state_dir;
    let (name, run_id) = match &args.file {
        // Not a file but a run's id.
        Some(given) if !given.exists() && looks_like_run_id(&given.to_string_lossy()) => {
            (None, Some(given.to_string_lossy().into_owned()))
        }
        Some(file) => (Some(crate::cli::session::load_runbook(ui, file)?.name.clone()), None),
        None => (None, None),
    };
    let mut runs = Vec::new();
    for path in journal::list_runs(state, name.as_deref()) {
        if let Some(id) = &run_id
            && !path.file_stem().is_some_and(|s| s.to_string_lossy().starts_with(id.as_str()))
        {
            continue;
        }
        match journal::summarize(&path) {
            Ok(s) => runs.push(s),
            Err(e) => ui.diagnostics(&[Diagnostic::warning(e.to_string())]),
        }
    }
    if let Some(id) = run_id
        && runs.is_empty()
    {
        return Err(Diagnostic::error(format!("there is no run `{id}` in {}", state.display()))
            .hint("`runbook status` lists the runs and their ids")
            .into());
    }
    Ok(runs)
}

/// A run id (`20261126-013500-123-4567`) or the start of one.
fn looks_like_run_id(s: &str) -> bool {
    s.len() >= 8 && s.chars().all(|c| c.is_ascii_digit() || c == '-')
}

fn text(r: &RunSummary) -> String {
    let mut out = String::new();
    let outcome = documents::outcome_text(r);
    let _ = writeln!(out, "run {}  {}  {outcome}", r.run_id, r.runbook);
    let finished = r.finished.as_ref().map(|f| format!(", finished {f}")).unwrap_or_default();
    let _ = writeln!(out, "  started {}{finished}; durability {}", r.started, r.durability.as_str());
    if !r.inputs.is_empty() || !r.secret_inputs.is_empty() {
        let mut parts: Vec<String> = r
            .inputs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect();
        parts.extend(r.secret_inputs.iter().map(|k| format!("{k}=****")));
        let _ = writeln!(out, "  inputs: {}", parts.join(" "));
    }
    if let Some(plan) = &r.plan {
        let _ = writeln!(out, "  reviewed plan {} (sha256 {})", plan.path, plan.sha256);
    }
    for a in &r.approvals {
        let _ = writeln!(out, "  approved by {} ({}, {}; checked {})", a.principal, a.key, a.file, a.checked);
    }
    if r.unfinished()
        && let Some((id, state)) = r.stopped_at()
    {
        let _ = writeln!(out, "  stopped at {id} ({})", state_label(state));
    }
    for (id, s) in &r.step_states {
        let _ = writeln!(out, "    {id:<24} {}", state_label(s));
        for l in state_error(s).into_iter().flat_map(|e| e.lines().take(4)) {
            let _ = writeln!(out, "      {l}");
        }
    }
    out.push('\n');
    out
}

fn state_error(s: &StepState) -> Option<&str> {
    match s {
        StepState::Finished { error, .. } => error.as_deref(),
        _ => None,
    }
}
