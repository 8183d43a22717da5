use std::fmt::Write as _;

use crate::cli::args::{Format, StatusArgs};
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::state::journal::{self, StepState};

pub fn run(config: &Config, args: &StatusArgs) -> CmdResult {
    let ui = &config.ui;
    let name = match &args.file {
        Some(file) => Some(crate::cli::session::load_runbook(ui, file)?.name.clone()),
        None => None,
    };
    let mut runs = Vec::new();
    for path in journal::list_runs(&args.state.state_dir, name.as_deref()) {
        match journal::summarize(&path) {
            Ok(s) => runs.push(s),
            Err(e) => ui.diagnostics(&[crate::format::diagnostic::Diagnostic::warning(e.to_string())]),
        }
    }
    match args.format {
        Format::Json => {
            let doc: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "run_id": r.run_id,
                        "runbook": r.runbook,
                        "path": r.runbook_path,
                        "journal": r.path.display().to_string(),
                        "started": r.started,
                        "finished": r.finished,
                        "outcome": r.outcome,
                        "inputs": r.inputs,
                        "secret_inputs": r.secret_inputs,
                        "stopped_at": r.stopped_at().map(|(id, _)| id),
                        "steps": r.step_states.iter().map(|(id, s)| serde_json::json!({"step": id, "state": state_label(s), "error": state_error(s)})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&doc).expect("status serializes"));
        }
        Format::Text => {
            let mut out = String::new();
            if runs.is_empty() {
                let _ = writeln!(out, "no runs in {}", args.state.state_dir.display());
            }
            for r in &runs {
                let outcome = match r.outcome {
                    Some(o) => {
                        serde_json::to_value(o).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                    }
                    None => "unfinished".into(),
                };
                let _ = writeln!(out, "run {}  {}  {outcome}", r.run_id, r.runbook);
                let _ = writeln!(
                    out,
                    "  started {}{}",
                    r.started,
                    r.finished.as_ref().map(|f| format!(", finished {f}")).unwrap_or_default()
                );
                if !r.inputs.is_empty() || !r.secret_inputs.is_empty() {
                    let mut parts: Vec<String> = r
                        .inputs
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                        .collect();
                    parts.extend(r.secret_inputs.iter().map(|k| format!("{k}=****")));
                    let _ = writeln!(out, "  inputs: {}", parts.join(" "));
                }
                if r.unfinished()
                    && let Some((id, state)) = r.stopped_at()
                {
                    let _ = writeln!(out, "  stopped at {id} ({})", state_label(state));
                }
                for (id, s) in &r.step_states {
                    let _ = writeln!(out, "    {id:<24} {}", state_label(s));
                    if let Some(e) = state_error(s) {
                        for l in e.lines().take(4) {
                            let _ = writeln!(out, "      {l}");
                        }
                    }
                }
                out.push('\n');
            }
            print!("{out}");
        }
    }
    Ok(ExitCode::Success)
}

fn state_label(s: &StepState) -> &'static str {
    match s {
        StepState::Started { .. } => "started, never finished",
        StepState::Interrupted => "interrupted",
        StepState::Finished { outcome, .. } => outcome.as_str(),
        StepState::MarkedDone => "marked done by the operator",
    }
}

fn state_error(s: &StepState) -> Option<&str> {
    match s {
        StepState::Finished { error, .. } => error.as_deref(),
        _ => None,
    }
}
