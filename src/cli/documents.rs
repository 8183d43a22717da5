//! Plans as people read them: the text `plan` and `show-plan` print.

use std::fmt::Write as _;

use crate::state::saved_plan::{PlannedStep, SavedPlan, Verdict};

/// A plan's steps, each with its rendered action and verdict, and a summary.
pub fn plan_text(runbook: &str, steps: &[PlannedStep]) -> String {
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
    let _ = writeln!(out);
    let _ = writeln!(out, "Summary: {}.", summary(steps));
    if let Some(first) = steps.iter().position(|s| s.verdict.fails()) {
        let _ = writeln!(out, "The run would stop at step {} ({}).", first + 1, steps[first].id);
    }
    out
}

/// How many steps get each verdict, e.g. "3 would change, 1 unchanged".
pub fn summary(steps: &[PlannedStep]) -> String {
    let count = |f: fn(&Verdict) -> bool| steps.iter().filter(|s| f(&s.verdict)).count();
    let parts = [
        (count(|v| matches!(v, Verdict::WouldChange)), "would change"),
        (count(|v| matches!(v, Verdict::Unchanged)), "unchanged"),
        (count(|v| matches!(v, Verdict::Skipped)), "skipped"),
        (count(|v| matches!(v, Verdict::DecidedAtRunTime(_))), "decided at run time"),
        (count(|v| matches!(v, Verdict::WouldFail(_))), "would fail"),
    ];
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, l)| format!("{n} {l}")).collect::<Vec<_>>().join(", ")
}

/// A saved plan for review: its steps, then what it was made from.
pub fn saved_plan_text(plan: &SavedPlan, digest: &str) -> String {
    let mut out = plan_text(&plan.runbook, &plan.steps);
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
    out
}
