use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::cli::args::{Format, PlanArgs};
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::ui::Ui;
use crate::compile::inputs::{self, Inputs};
use crate::compile::runbook::Runbook;
use crate::engine::plan::{PlannedStep, Planner, Verdict};
use crate::format::diagnostic::Diagnostic;
use crate::format::mask::Masker;

pub fn run(ui: &Ui, args: &PlanArgs) -> CmdResult {
    let runbook = crate::cli::session::load_runbook(ui, &args.file)?;
    let inputs = resolve_inputs(ui, &runbook, &args.inputs.to_args(inputs::can_prompt()))?;
    let masker = masker(&runbook, &inputs);
    let steps = predict(&runbook, &inputs, &masker)?;
    match args.format {
        Format::Text => print!("{}", render_text(&runbook.name, &steps)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&document(&runbook, &args.file, &inputs, &steps)).expect("plan serializes")
        ),
    }
    if let Some(out) = &args.out {
        save(out, &document(&runbook, &args.file, &inputs, &steps))?;
        ui.info(&format!("plan saved to {}", out.display()));
    }
    crate::cli::session::write_report(
        args.report.as_deref(),
        &runbook,
        steps.iter().map(Into::into).collect(),
        &masker,
    )?;
    Ok(if steps.iter().any(|s| s.verdict.fails()) { ExitCode::StepFailed } else { ExitCode::Success })
}

pub fn resolve_inputs(ui: &Ui, runbook: &Runbook, args: &inputs::InputArgs) -> Result<Inputs, Failure> {
    let (resolved, warnings) = inputs::resolve(runbook, args).map_err(Failure::invalid)?;
    ui.diagnostics(&warnings);
    Ok(resolved)
}

pub fn masker(runbook: &Runbook, inputs: &Inputs) -> Masker {
    let secrets: Vec<String> = runbook
        .secret_names()
        .filter_map(|n| inputs.get(n))
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    Masker::new(secrets.iter().map(String::as_str))
}

pub fn predict(runbook: &Arc<Runbook>, inputs: &Inputs, masker: &Masker) -> Result<Vec<PlannedStep>, Failure> {
    let cwd = std::env::current_dir().map_err(|e| Diagnostic::error(format!("cannot read the current folder: {e}")))?;
    Planner::plan(runbook, inputs, masker, cwd)
        .map_err(|e| Failure::invalid(vec![Diagnostic::error(masker.mask(&e.message))]))
}

pub fn render_text(runbook: &str, steps: &[PlannedStep]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan for {runbook} ({} steps)", steps.len());
    let _ = writeln!(out);
    let width = steps.len().to_string().len();
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(out, "{:>width$}. {}: {}", i + 1, s.id, s.title);
        if let Some(action) = &s.action
            && *action != s.title
        {
            let _ = writeln!(out, "{:>width$}  {action}", "");
        }
        let label = s.verdict.label();
        let mut lines = label.lines();
        let _ = writeln!(out, "{:>width$}  => {}", "", lines.next().unwrap_or(""));
        for l in lines {
            let _ = writeln!(out, "{:>width$}     {l}", "");
        }
    }
    let count = |f: fn(&Verdict) -> bool| steps.iter().filter(|s| f(&s.verdict)).count();
    let parts = [
        (count(|v| matches!(v, Verdict::WouldChange)), "would change"),
        (count(|v| matches!(v, Verdict::Unchanged)), "unchanged"),
        (count(|v| matches!(v, Verdict::Skipped)), "skipped"),
        (count(|v| matches!(v, Verdict::DecidedAtRunTime(_))), "decided at run time"),
        (count(|v| matches!(v, Verdict::WouldFail(_))), "would fail"),
    ];
    let summary: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, l)| format!("{n} {l}")).collect();
    let _ = writeln!(out);
    let _ = writeln!(out, "Summary: {}.", summary.join(", "));
    if let Some(first) = steps.iter().position(|s| s.verdict.fails()) {
        let _ = writeln!(out, "The run would stop at step {} ({}).", first + 1, steps[first].id);
    }
    out
}

/// The saved / JSON form of a plan (see `schemas/plan.schema.json`).
pub fn document(runbook: &Runbook, path: &Path, inputs: &Inputs, steps: &[PlannedStep]) -> serde_json::Value {
    let secret: Vec<&str> = runbook.secret_names().collect();
    serde_json::json!({
        "format": 1,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "runbook": runbook.name,
        "path": path.display().to_string(),
        "files": runbook.files().iter().map(|(s, sha)| serde_json::json!({"path": s.path.display().to_string(), "sha256": sha})).collect::<Vec<_>>(),
        "inputs": inputs.values.iter().filter(|(k, _)| !secret.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.value.clone())).collect::<serde_json::Map<_, _>>(),
        "secret_inputs": secret,
        "steps": steps,
        "would_fail": steps.iter().any(|s| s.verdict.fails()),
    })
}

fn save(out: &Path, doc: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(doc).expect("plan serializes") + "\n";
    crate::engine::actions::files::write(out, &text, true)
        .map(|_| ())
        .map_err(|e| Failure::invalid(vec![Diagnostic::error(format!("cannot save the plan: {e}"))]))
}

/// `show-plan`: a saved plan, printed for reviewers.
pub fn show_saved(path: &Path) -> CmdResult {
    let (plan, digest) = super::run::read_plan(path)?;
    let mut out = render_text(&plan.runbook, &plan.steps);
    let _ = writeln!(out);
    let _ = writeln!(out, "Runbook: {}", plan.path);
    for f in &plan.files {
        let _ = writeln!(out, "  {}  sha256 {}", f.path, f.sha256);
    }
    if !plan.inputs.is_empty() || !plan.secret_inputs.is_empty() {
        let _ = writeln!(out, "Inputs:");
        for (k, v) in &plan.inputs {
            let _ = writeln!(out, "  {k} = {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        }
        for k in &plan.secret_inputs {
            let _ = writeln!(out, "  {k} = **** (secret: asked for again when run)");
        }
    }
    let _ = writeln!(out, "Made by runbook {}; plan sha256 {digest}", plan.tool_version);
    print!("{out}");
    Ok(ExitCode::Success)
}
