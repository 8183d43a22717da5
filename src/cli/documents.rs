//! Plans as people read them: the text `plan` and `show-plan` print.

use std::fmt::Write as _;

use indexmap::IndexMap;

use crate::cli::event::{StepRecord, Text};
use crate::cli::page::{Cell, Page, Row, Table, Tone};
use crate::format::diagnostic::tail;
use crate::state::approvals::{Approver, Checked, Status};
use crate::state::journal::{RollbackOutcome, RunSummary, StepState, UndoOutcome};
use crate::state::outcome::Outcome;
use crate::state::saved_plan::{PlannedBackout, PlannedStep, SavedPlan, Verdict, backout};

/// A plan's steps, each with its rendered action and verdict, and a summary.
pub fn plan_text(runbook: &str, steps: &[PlannedStep], details: bool) -> String {
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
        if details {
            for d in &s.details {
                let mut lines = d.lines();
                let _ = writeln!(out, "{:>width$}  · {}", "", lines.next().unwrap_or(""));
                for l in lines {
                    let _ = writeln!(out, "{:>width$}    | {l}", "");
                }
            }
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
    out.push_str(&backout_text(steps));
    out
}

/// The backout a failure at the last step would run (`runbook rollback`), newest first, and the
/// steps that cannot be undone.
fn backout_text(steps: &[PlannedStep]) -> String {
    let mut out = String::new();
    let entries = backout(steps);
    if entries.is_empty() {
        return out;
    }
    let position = |s: &PlannedStep| steps.iter().position(|x| std::ptr::eq(x, s)).map_or(0, |i| i + 1);
    let _ = writeln!(out);
    if entries.iter().any(|(_, b)| matches!(b, PlannedBackout::Undo(_))) {
        let _ = writeln!(out, "Backout (if the last step fails, `runbook rollback` undoes, newest first):");
    }
    for (step, b) in &entries {
        if let PlannedBackout::Undo(lines) = b {
            let _ = writeln!(out, "  {}. {}: {}", position(step), step.id, lines.join("; "));
        }
    }
    let impossible: Vec<_> = entries.iter().filter(|(_, b)| matches!(b, PlannedBackout::Impossible(_))).collect();
    if !impossible.is_empty() {
        let _ = writeln!(out, "Cannot be undone:");
        for (step, b) in impossible {
            if let PlannedBackout::Impossible(why) = b {
                let _ = writeln!(out, "  {}. {}: {why}", position(step), step.id);
            }
        }
    }
    out
}

/// The backout as a table for the plan's page.
fn backout_table(steps: &[PlannedStep]) -> Option<Table> {
    let entries = backout(steps);
    if entries.is_empty() {
        return None;
    }
    let rows = entries
        .iter()
        .map(|(step, b)| {
            let position = steps.iter().position(|x| std::ptr::eq(x, *step)).map_or(0, |i| i + 1);
            let (tone, undo) = match b {
                PlannedBackout::Undo(lines) => (Tone::Change, Cell::code(lines.join("\n"))),
                PlannedBackout::Impossible(why) => (Tone::Bad, Cell::text(format!("cannot be undone: {why}"))),
            };
            Row { tone, cells: vec![Cell::text(position.to_string()), Cell::code(&step.id), undo] }
        })
        .collect();
    Some(Table { heading: "Backout (newest first)".into(), columns: vec!["#", "Step", "Undo"], rows })
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
pub fn saved_plan_text(plan: &SavedPlan, digest: &str, approvals: &[Checked]) -> String {
    let mut out = plan_text(&plan.runbook, &plan.steps, true);
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
    if approvals.is_empty() {
        let _ = writeln!(out, "Approvals: none");
    } else {
        let _ = writeln!(out, "Approvals ({}):{}", approvals.len(), crate::cli::policy::listing(approvals));
    }
    out
}

/// The approvals found beside a plan, each with its key and status.
fn approvals_table(approvals: &[Checked]) -> Table {
    let rows = approvals
        .iter()
        .map(|c| Row {
            tone: if c.status.counts() || c.status == Status::Signed { Tone::Change } else { Tone::Bad },
            cells: vec![Cell::code(&c.file), Cell::code(c.key.as_deref().unwrap_or("-")), Cell::text(c.status.label())],
        })
        .collect();
    Table { heading: "Approvals".into(), columns: vec!["Approval", "Key", "Status"], rows }
}

/// Who approved the reviewed plan a run ran, as checked when it began (or resumed).
fn approvers_table(approvers: &[Approver]) -> Table {
    let rows = approvers
        .iter()
        .map(|a| Row {
            tone: Tone::Plain,
            cells: vec![Cell::text(&a.principal), Cell::code(&a.key), Cell::code(&a.file), Cell::text(&a.checked)],
        })
        .collect();
    Table { heading: "Approved by".into(), columns: vec!["Principal", "Key", "Approval", "Checked"], rows }
}

fn verdict_tone(v: &Verdict) -> Tone {
    match v {
        Verdict::WouldChange => Tone::Change,
        Verdict::Unchanged => Tone::Same,
        Verdict::Skipped => Tone::Quiet,
        Verdict::DecidedAtRunTime(_) => Tone::Later,
        Verdict::WouldFail(_) => Tone::Bad,
    }
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::WouldChange => "would change",
        Verdict::Unchanged => "unchanged",
        Verdict::Skipped => "skipped",
        Verdict::DecidedAtRunTime(_) => "decided at run time",
        Verdict::WouldFail(_) => "would fail",
    }
}

/// A value as an operator typed it: text without quotes.
fn shown(value: &serde_json::Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// The inputs table: values, secrets by name only.
fn inputs_table(inputs: &IndexMap<String, serde_json::Value>, secrets: &[String], secret_note: &str) -> Table {
    let mut rows: Vec<Row> = inputs
        .iter()
        .map(|(k, v)| Row { tone: Tone::Plain, cells: vec![Cell::code(k), Cell::code(shown(v))] })
        .collect();
    rows.extend(secrets.iter().map(|k| Row { tone: Tone::Plain, cells: vec![Cell::code(k), Cell::text(secret_note)] }));
    Table { heading: "Inputs".into(), columns: vec!["Input", "Value"], rows }
}

/// A saved (or just made) plan as a page for reviewers: summary, inputs, every step with its
/// rendered action, verdict and reason, and what it was made from.
pub fn plan_page(plan: &SavedPlan, digest: &str, saved_as: Option<&str>, approvals: &[Checked]) -> Page {
    let steps = &plan.steps;
    let title = match &plan.title {
        Some(t) => format!("Plan: {t}"),
        None => format!("Plan: {}", plan.runbook),
    };
    let lead = format!("{} steps: {}.", steps.len(), summary(steps));
    let alert = steps.iter().position(|s| s.verdict.fails()).map(|i| {
        let why = match &steps[i].verdict {
            Verdict::WouldFail(why) => why.lines().next().unwrap_or("").to_string(),
            _ => String::new(),
        };
        (Tone::Bad, format!("The run would stop at step {} ({}): {why}", i + 1, steps[i].id))
    });
    let rows = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let reason = match &s.verdict {
                Verdict::WouldFail(why) | Verdict::DecidedAtRunTime(why) => why.clone(),
                _ => String::new(),
            };
            let action = match &s.action {
                Some(a) => Cell::code(a).with_notes(s.details.clone()),
                None => Cell::text("(rendered at run time)"),
            };
            Row {
                tone: verdict_tone(&s.verdict),
                cells: vec![
                    Cell::text((i + 1).to_string()),
                    Cell::code(&s.id).with_sub((Some(&s.title) != s.action.as_ref()).then(|| s.title.clone())),
                    action,
                    Cell::text(verdict_word(&s.verdict)),
                    Cell::text(reason),
                ],
            }
        })
        .collect();
    let mut tables = Vec::new();
    if !plan.inputs.is_empty() || !plan.secret_inputs.is_empty() {
        tables.push(inputs_table(&plan.inputs, &plan.secret_inputs, "secret: asked at run time"));
    }
    tables.push(Table { heading: "Steps".into(), columns: vec!["#", "Step", "Action", "Verdict", "Reason"], rows });
    tables.extend(backout_table(steps));
    if !approvals.is_empty() {
        tables.push(approvals_table(approvals));
    }
    let mut footer: Vec<(String, Cell)> = plan
        .files
        .iter()
        .map(|f| (format!("Runbook file {}", f.path), Cell::code(format!("sha256 {}", f.sha256))))
        .collect();
    footer.push(("Plan".into(), Cell::code(format!("sha256 {digest}"))));
    footer.push(("Made by".into(), Cell::text(format!("runbook {}", plan.tool_version))));
    Page {
        title,
        lead,
        facts: vec![
            ("Runbook".into(), Cell::code(&plan.runbook)),
            ("File".into(), Cell::code(&plan.path)),
            (
                "Run it".into(),
                Cell::code(format!(
                    "runbook run --plan {}",
                    saved_as.map_or_else(|| "PLAN".into(), crate::os::args::quote)
                )),
            ),
        ],
        alert,
        tables,
        footer,
    }
}

fn outcome_tone(state: Option<&StepState>) -> Tone {
    match state {
        Some(StepState::Finished { outcome: Outcome::Done, .. }) => Tone::Change,
        Some(StepState::Finished { outcome: Outcome::Unchanged, .. }) | Some(StepState::MarkedDone) => Tone::Same,
        Some(StepState::Finished { outcome: Outcome::Skipped, .. }) | None => Tone::Quiet,
        Some(StepState::Finished { outcome: Outcome::Failed, .. }) => Tone::Bad,
        Some(StepState::Started { .. } | StepState::Interrupted) => Tone::Later,
    }
}

/// How a run ended, in words: `succeeded`, `failed`, `unfinished`, `rolled back (partly: ...)`.
pub fn outcome_text(run: &RunSummary) -> String {
    let base = run.outcome.map_or("unfinished", |o| o.as_str()).to_string();
    let Some(rollback) = &run.rollback else { return base };
    let not_undone: Vec<&str> = rollback
        .undone
        .iter()
        .filter(|(_, u)| matches!(u, Some((UndoOutcome::Impossible, _))))
        .map(|(id, _)| id.as_str())
        .collect();
    match rollback.outcome {
        Some(RollbackOutcome::Partial) => format!("{base} (partly: {} cannot be undone)", not_undone.join(", ")),
        Some(RollbackOutcome::Failed) => format!("{base}; rollback failed, unfinished"),
        Some(RollbackOutcome::Interrupted) | None => format!("{base}; rollback interrupted, unfinished"),
        Some(RollbackOutcome::Complete) => base,
    }
}

/// A step's state in words, as `status` prints it.
pub fn state_label(s: &StepState) -> &'static str {
    match s {
        StepState::Started { .. } => "started, never finished",
        StepState::Interrupted => "interrupted",
        StepState::Finished { outcome, .. } => outcome.as_str(),
        StepState::MarkedDone => "marked done by the operator",
    }
}

/// Lines of output a step's machine-readable record carries.
const JSON_OUTPUT_LINES: usize = 20;

/// One step of a run for machines (`status --format json`, `run --skip-if-succeeded`'s
/// `already_done`): its state, error, duration and the last lines it printed (masked, as
/// journaled).
pub fn step_record(id: &str, state: &StepState) -> StepRecord {
    let (error, duration_ms, stdout, stderr) = match state {
        StepState::Finished { error, duration_ms, data, .. } => (
            error.as_deref().map(Text::journaled),
            Some(*duration_ms),
            data.stdout.as_deref().map(|t| Text::journaled(&tail(t, JSON_OUTPUT_LINES))),
            data.stderr.as_deref().map(|t| Text::journaled(&tail(t, JSON_OUTPUT_LINES))),
        ),
        _ => (None, None, None, None),
    };
    StepRecord {
        step: id.to_owned(),
        state: state_label(state).to_owned(),
        error,
        duration_ms,
        stdout_tail: stdout,
        stderr_tail: stderr,
    }
}

/// The steps of a run that it never reached (in the runbook's order), for machines.
pub fn steps_not_reached(run: &RunSummary) -> Vec<&str> {
    run.rendered.iter().map(|s| s.id.as_str()).filter(|id| !run.step_states.contains_key(*id)).collect()
}

/// The last lines a step printed, and its error.
fn output_tail(state: &StepState) -> Vec<String> {
    let StepState::Finished { data, error, .. } = state else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(e) = error {
        out.push(e.clone());
    }
    for (label, text) in [("stdout", &data.stdout), ("stderr", &data.stderr)] {
        if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
            out.push(format!("{label}:\n{}", tail(text, OUTPUT_LINES)));
        }
    }
    out
}

/// Lines of a step's output a run record shows.
const OUTPUT_LINES: usize = 5;

/// The record of a run, to attach when closing the ticket: who ran it, when and where, with
/// which inputs (secrets masked), and each step's outcome, duration and last lines of output.
pub fn run_page(run: &RunSummary) -> Page {
    let outcome = outcome_text(run);
    let mut facts = vec![
        ("Runbook".into(), Cell::code(&run.runbook)),
        ("File".into(), Cell::code(&run.runbook_path)),
        ("Outcome".into(), Cell::text(&outcome)),
        ("Durability".into(), Cell::text(run.durability.as_str())),
    ];
    for s in &run.sessions {
        let label = if s.resumed { "Resumed" } else { "Started" };
        facts.push((label.into(), Cell::text(format!("{} by {} on {}", s.time, s.user, s.host))));
    }
    if let Some(f) = &run.finished {
        facts.push(("Finished".into(), Cell::text(f)));
    }
    if let Some(plan) = &run.plan {
        facts.push(("Reviewed plan".into(), Cell::code(format!("{} (sha256 {})", plan.path, plan.sha256))));
    }
    // Every step the run knew of, in order: those it reached, then those it did not.
    let mut ids: Vec<String> = run.rendered.iter().map(|s| s.id.clone()).collect();
    for id in run.step_states.keys() {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let stopped = if run.unfinished() { run.stopped_at().map(|(id, _)| id.to_owned()) } else { None };
    let rows = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let state = run.step_states.get(id);
            let rendered = run.rendered.iter().find(|s| s.id == *id);
            let action = rendered.and_then(|s| s.action.clone()).unwrap_or_default();
            let mut word = match (state, &stopped) {
                (Some(s), _) => state_label(s).to_string(),
                (None, Some(at)) => format!("not run: the run stopped at {at}"),
                (None, None) => "not run".to_string(),
            };
            if let Some(Some((undo, _))) = run.rollback.as_ref().and_then(|r| r.undone.get(id)) {
                word = format!("{word}; {}", undo.as_str());
            }
            let duration = match state {
                Some(StepState::Finished { duration_ms, .. }) => {
                    crate::cli::ui::duration(std::time::Duration::from_millis(*duration_ms))
                }
                _ => String::new(),
            };
            Row {
                tone: outcome_tone(state),
                cells: vec![
                    Cell::text((i + 1).to_string()),
                    Cell::code(id).with_sub(rendered.map(|s| s.title.clone()).filter(|t| *t != action)),
                    if action.is_empty() { Cell::text("") } else { Cell::code(action.clone()) },
                    Cell::text(word),
                    Cell::text(duration),
                    Cell::text("").with_notes(state.map(output_tail).unwrap_or_default()),
                ],
            }
        })
        .collect();
    let alert = stopped.map(|at| (Tone::Bad, format!("The run stopped at step {at}.")));
    let mut tables = Vec::new();
    if !run.approvals.is_empty() {
        tables.push(approvers_table(&run.approvals));
    }
    if !run.inputs.is_empty() || !run.secret_inputs.is_empty() {
        tables.push(inputs_table(&run.inputs, &run.secret_inputs, "**** (secret)"));
    }
    tables.push(Table {
        heading: "Steps".into(),
        columns: vec!["#", "Step", "Action", "Outcome", "Duration", "Output"],
        rows,
    });
    let mut footer: Vec<(String, Cell)> = run
        .files
        .iter()
        .map(|f| (format!("Runbook file {}", f.path), Cell::code(format!("sha256 {}", f.sha256))))
        .collect();
    footer.push(("Journal".into(), Cell::code(run.path.display().to_string())));
    footer.push(("Recorded by".into(), Cell::text(format!("runbook {}", run.tool_version))));
    Page {
        title: format!("Run {} of {}", run.run_id, run.runbook),
        lead: format!("Run {outcome}: {}.", run_counts(run)),
        facts,
        alert,
        tables,
        footer,
    }
}

/// How many steps ended each way, e.g. "3 done, 1 unchanged, 2 not run".
fn run_counts(run: &RunSummary) -> String {
    let mut parts = Vec::new();
    for o in Outcome::ALL {
        let n = run
            .step_states
            .values()
            .filter(|s| matches!(s, StepState::Finished { outcome, .. } if *outcome == o))
            .count();
        if n > 0 {
            parts.push(format!("{n} {}", o.as_str()));
        }
    }
    let marked = run.step_states.values().filter(|s| matches!(s, StepState::MarkedDone)).count();
    if marked > 0 {
        parts.push(format!("{marked} marked done"));
    }
    let not_run = run.rendered.iter().filter(|s| !run.step_states.contains_key(&s.id)).count();
    if not_run > 0 {
        parts.push(format!("{not_run} not run"));
    }
    if parts.is_empty() { "no step ran".into() } else { parts.join(", ") }
}

/// The record of a run as JSON (`status --format json`, and the evidence's `record/run.json`).
pub fn run_json(r: &RunSummary) -> serde_json::Value {
    serde_json::json!({
        "run_id": r.run_id,
        "runbook": r.runbook,
        "path": r.runbook_path,
        "journal": r.path.display().to_string(),
        "started": r.started,
        "finished": r.finished,
        "outcome": r.outcome,
        "durability": r.durability,
        "inputs": r.inputs,
        "secret_inputs": r.secret_inputs,
        "plan": r.plan,
        "approvals": r.approvals,
        "stopped_at": r.stopped_at().map(|(id, _)| id),
        "rollback": r.rollback.as_ref().map(|rb| serde_json::json!({
            "outcome": rb.outcome,
            "steps": rb.undone.iter().map(|(id, u)| serde_json::json!({"step": id, "undo": u.as_ref().map(|(o, _)| *o), "error": u.as_ref().and_then(|(_, e)| e.clone())})).collect::<Vec<_>>(),
        })),
        "steps": r.step_states.iter().map(|(id, s)| step_record(id, s)).collect::<Vec<_>>(),
        "not_reached": steps_not_reached(r),
    })
}
