use std::fmt::Write as _;

use crate::cli::args::ShowArgs;
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::compile::inputs::InputArgs;
use crate::compile::runbook::Runbook;

pub fn run(config: &Config, args: &ShowArgs) -> CmdResult {
    let ui = &config.ui;
    let runbook = crate::cli::session::load_runbook(ui, &args.file)?;
    let mut out = describe(&runbook);
    if args.explain_inputs {
        // Every layer but the terminal: this explains the values, it does not ask for them.
        let input_args = InputArgs { prompt: None, ..config.input_args(&args.inputs) };
        let resolved = crate::cli::session::resolve_inputs(ui, &runbook, &input_args)?;
        out.push_str("\nInput values:\n");
        let width = runbook.inputs.keys().map(String::len).max().unwrap_or(0);
        for def in runbook.inputs.values() {
            let Some(v) = resolved.values.get(&def.name) else {
                continue;
            };
            let shown = if def.secret { crate::format::mask::MASK.to_string() } else { json_text(&v.value) };
            let _ = writeln!(out, "  {:width$}  {shown}  ({})", def.name, v.origin);
        }
    }
    print!("{out}");
    Ok(ExitCode::Success)
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The human description of a runbook: title, description, inputs, steps.
pub fn describe(runbook: &Runbook) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", runbook.name);
    if let Some(title) = &runbook.title {
        let _ = writeln!(out, "  {title}");
    }
    if let Some(description) = &runbook.description {
        out.push('\n');
        for line in description.trim_end().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !runbook.inputs.is_empty() {
        out.push_str("\nInputs:\n");
        for def in runbook.inputs.values() {
            let mut facts = vec![def.ty.as_str().to_string()];
            if def.secret {
                facts.push("secret".into());
            }
            match &def.default {
                Some(d) if !def.secret => facts.push(format!("default: {}", json_text(d))),
                Some(_) => facts.push("has a default".into()),
                None => facts.push("required".into()),
            }
            if !def.choices.is_empty() {
                facts.push(format!("choices: {}", def.choices.join(", ")));
            }
            let _ = writeln!(out, "  {} ({})", def.name, facts.join(", "));
            if let Some(d) = &def.description {
                let _ = writeln!(out, "      {d}");
            }
        }
    }
    out.push_str("\nSteps:\n");
    for (i, step) in runbook.steps.iter().enumerate() {
        let title = step.name.as_ref().map_or_else(|| step.action.summary(), |n| n.text.clone());
        let _ = writeln!(out, "  {:>2}. {:<20} {title}", i + 1, step.id);
        if let Some(crate::compile::runbook::Condition::Expr { tpl: w, .. }) = &step.when {
            let _ = writeln!(out, "      when: {}", w.text);
        }
    }
    out
}
