//! `verify`: an evidence bundle checked offline. Every member against the manifest; the
//! journal's plan digest against the bundled plan; each approval against that plan and the
//! allowed signers; the run's steps against the plan's, in order. Deviations (resumes,
//! `--redo`, `--mark-done`, `--force`, skipped steps, rollbacks) are listed, never hidden.
//! Exit 0 verified, 1 not verified (every reason named), 2 unreadable.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::SystemTime;

use serde::Serialize;

use crate::cli::args::{VerdictFormat, VerifyArgs};
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::policy::listing;
use crate::format::allowed_signers::AllowedSigners;
use crate::format::diagnostic::Diagnostic;
use crate::format::digest::sha256_hex;
use crate::format::source::Source;
use crate::state::approvals::{self, Check, Checked, EVIDENCE_NAMESPACE, Found, Status};
use crate::state::drift::{self, StepText};
use crate::state::evidence::{self, Manifest, Opened};
use crate::state::journal::{self, Record, RunSummary};
use crate::state::outcome::Outcome;
use crate::state::saved_plan::{PlannedStep, SavedPlan};

/// One line of the verdict table.
#[derive(Debug, Serialize)]
struct Row {
    check: &'static str,
    /// `pass`, `fail`, or `info` (a fact, not a verdict).
    result: &'static str,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Report {
    bundle: String,
    verified: bool,
    run_id: String,
    runbook: String,
    outcome: String,
    checks: Vec<Row>,
    approvals: Vec<Checked>,
    deviations: Vec<String>,
}

impl Report {
    fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.checks.push(Row { check, result: "pass", detail: detail.into() });
    }
    fn fail(&mut self, check: &'static str, detail: impl Into<String>) {
        self.checks.push(Row { check, result: "fail", detail: detail.into() });
    }
    fn info(&mut self, check: &'static str, detail: impl Into<String>) {
        self.checks.push(Row { check, result: "info", detail: detail.into() });
    }
}

pub fn run(_config: &Config, args: &VerifyArgs) -> CmdResult {
    let unreadable = |why: String| -> Failure {
        Diagnostic::error(format!("{} cannot be verified: {why}", args.bundle.display()))
            .hint("give a bundle written by `runbook evidence --out FILE.zip`")
            .into()
    };
    let opened = Opened::read(&args.bundle).map_err(unreadable)?;
    let manifest_bytes = opened.get(evidence::MANIFEST).ok_or_else(|| unreadable("it has no manifest.json".into()))?;
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| unreadable(format!("its manifest.json cannot be read ({e})")))?;
    let signers = match &args.allowed_signers {
        Some(path) => {
            let text = crate::format::file::read_text(path)?;
            Some(AllowedSigners::parse(&Source::new(path.clone(), text))?)
        }
        None => None,
    };
    let mut report = Report {
        bundle: args.bundle.display().to_string(),
        verified: false,
        run_id: manifest.run.run_id.clone(),
        runbook: manifest.run.runbook.clone(),
        outcome: manifest.run.outcome.clone(),
        checks: Vec::new(),
        approvals: Vec::new(),
        deviations: Vec::new(),
    };
    check_members(&mut report, &opened, &manifest);
    check_manifest_signature(&mut report, &opened, manifest_bytes, signers.as_ref());
    let run = read_journal(&mut report, &opened, &manifest);
    let plan = check_plan(&mut report, &opened, run.as_ref());
    check_approvals(&mut report, &opened, run.as_ref(), plan.as_ref(), signers.as_ref(), args.require_approvals);
    if let Some((run, records)) = &run {
        check_runbook_files(&mut report, &opened, run, plan.as_ref());
        if let Some((plan, _)) = &plan {
            check_steps(&mut report, run, records, plan);
        }
        report.deviations = deviations(run, records);
        report.outcome = crate::cli::documents::outcome_text(run);
    }
    for note in &manifest.notes {
        report.info("note", note.clone());
    }
    report.verified = report.checks.iter().all(|r| r.result != "fail");
    match args.format {
        VerdictFormat::Json => println!("{}", serde_json::to_string_pretty(&report).expect("a report serializes")),
        VerdictFormat::Markdown => print!("{}", markdown(&report)),
        VerdictFormat::Text => print!("{}", text(&report)),
    }
    Ok(if report.verified { ExitCode::Success } else { ExitCode::StepFailed })
}

/// Every member is in the manifest with its digest, and every listed member is there.
fn check_members(report: &mut Report, opened: &Opened, manifest: &Manifest) {
    let mut problems = Vec::new();
    for m in &manifest.members {
        match opened.get(&m.path) {
            None => problems.push(format!("{} is missing", m.path)),
            Some(bytes) if sha256_hex(bytes) != m.sha256 => {
                problems.push(format!("{} changed (sha256 {}, manifest says {})", m.path, sha256_hex(bytes), m.sha256))
            }
            Some(_) => {}
        }
    }
    let listed: BTreeSet<&str> = manifest.members.iter().map(|m| m.path.as_str()).collect();
    for (path, _) in &opened.members {
        if path != evidence::MANIFEST && path != evidence::MANIFEST_SIGNATURE && !listed.contains(path.as_str()) {
            problems.push(format!("{path} is not in the manifest"));
        }
    }
    if problems.is_empty() {
        report.pass("members", format!("{} members match the manifest's SHA-256 digests", manifest.members.len()));
    } else {
        report.fail("members", problems.join("; "));
    }
}

fn check_manifest_signature(report: &mut Report, opened: &Opened, manifest: &[u8], signers: Option<&AllowedSigners>) {
    let Some(sig) = opened.get(evidence::MANIFEST_SIGNATURE) else {
        report.info("manifest signature", "none (`runbook evidence --sign KEY` signs the manifest)");
        return;
    };
    let Ok(parsed) = ssh_key::SshSig::from_pem(sig) else {
        report.fail("manifest signature", "manifest.json.sig is not an SSH signature");
        return;
    };
    let key = parsed.public_key().clone();
    let print = approvals::fingerprint(&key);
    let good = parsed.namespace() == EVIDENCE_NAMESPACE
        && ssh_key::PublicKey::new(key.clone(), "").verify(EVIDENCE_NAMESPACE, manifest, &parsed).is_ok();
    if !good {
        report.fail("manifest signature", format!("bad signature by {print}: the manifest is not what was signed"));
        return;
    }
    let who = signers
        .and_then(|s| s.for_key(&key).find(|l| l.allows_namespace(EVIDENCE_NAMESPACE)))
        .map_or_else(|| "a key not in the allowed signers".to_string(), |l| l.principals.clone());
    report.pass("manifest signature", format!("signed by {who} ({print})"));
}

type Journaled = (RunSummary, Vec<Record>);

fn read_journal(report: &mut Report, opened: &Opened, manifest: &Manifest) -> Option<Journaled> {
    let Some(bytes) = opened.get(evidence::JOURNAL) else {
        report.fail("journal", "the bundle has no journal.jsonl");
        return None;
    };
    match journal::summarize_bytes(bytes, std::path::Path::new(evidence::JOURNAL)) {
        Ok((run, records)) if run.run_id == manifest.run.run_id => {
            report.pass("journal", format!("run {} of {}: {} records", run.run_id, run.runbook, records.len()));
            Some((run, records))
        }
        Ok((run, _)) => {
            report.fail("journal", format!("it is of run {}, the manifest says {}", run.run_id, manifest.run.run_id));
            None
        }
        Err(e) => {
            report.fail("journal", e.to_string());
            None
        }
    }
}

/// The plan the journal names: bundled, with the digest the run recorded.
fn check_plan(report: &mut Report, opened: &Opened, run: Option<&Journaled>) -> Option<(SavedPlan, Vec<u8>)> {
    let (run, _) = run?;
    let Some(recorded) = &run.plan else {
        report.info("plan", "the run was not of a reviewed plan: there is nothing to check it against");
        return None;
    };
    let Some(bytes) = opened.get(evidence::PLAN) else {
        report
            .fail("plan", format!("the run recorded the plan sha256 {}, and the bundle has no plan", recorded.sha256));
        return None;
    };
    let digest = sha256_hex(bytes);
    if digest != recorded.sha256 {
        report.fail(
            "plan",
            format!("the bundled plan (sha256 {digest}) is not the one the run recorded (sha256 {})", recorded.sha256),
        );
        return None;
    }
    let Some(plan) = SavedPlan::from_bytes(bytes) else {
        report.fail("plan", "the bundled plan/plan.json is not a saved plan");
        return None;
    };
    report.pass("plan", format!("the run's reviewed plan (sha256 {digest}), {} steps", plan.steps.len()));
    Some((plan, bytes.to_vec()))
}

fn check_approvals(
    report: &mut Report,
    opened: &Opened,
    run: Option<&Journaled>,
    plan: Option<&(SavedPlan, Vec<u8>)>,
    signers: Option<&AllowedSigners>,
    required: Option<usize>,
) {
    let required = required.unwrap_or(0);
    let Some((_, bytes)) = plan else {
        if required > 0 {
            report.fail("approvals", format!("{required} required, and there is no reviewed plan to have approved"));
        }
        return;
    };
    let found: Vec<Found> = opened
        .under(evidence::APPROVALS)
        .filter(|(name, _)| name.ends_with(".sig"))
        .map(|(name, b)| Found { name: name.to_owned(), bytes: b.to_vec() })
        .collect();
    let check = Check { plan: bytes, others: &[], signers, operator: None, at: SystemTime::now() };
    let checked = approvals::check(&found, &check);
    let valid: Vec<&str> = checked
        .iter()
        .filter_map(|c| match &c.status {
            Status::Valid { principal } => Some(principal.as_str()),
            _ => None,
        })
        .collect();
    let signed = checked.iter().filter(|c| c.status == Status::Signed).count();
    // Every approver the journal recorded must be among the bundled approvals.
    let mut missing = Vec::new();
    if let Some((run, _)) = run {
        for a in &run.approvals {
            let present = checked.iter().any(|c| {
                c.key.as_deref() == Some(a.key.as_str())
                    && !matches!(c.status, Status::BadSignature | Status::OtherPlan { .. })
            });
            if !present {
                missing.push(format!("{} ({})", a.principal, a.key));
            }
        }
    }
    let summary = if signers.is_some() {
        format!(
            "{} valid: {}{}",
            valid.len(),
            if valid.is_empty() { "none".into() } else { valid.join(", ") },
            listing(&checked)
        )
    } else {
        format!(
            "{signed} of {} signatures are good signatures of this plan (give --allowed-signers to say whose){}",
            checked.len(),
            listing(&checked)
        )
    };
    let bad = checked.iter().any(|c| matches!(c.status, Status::BadSignature | Status::Unreadable { .. }));
    if !missing.is_empty() {
        report.fail(
            "approvals",
            format!(
                "approved by {} when the run began, and that approval is not in the bundle; {summary}",
                missing.join(", ")
            ),
        );
    } else if required > 0 && signers.is_none() {
        report.fail("approvals", format!("{required} required, and no --allowed-signers say whose count; {summary}"));
    } else if valid.len() < required {
        report.fail("approvals", format!("{required} required; {summary}"));
    } else if bad {
        report.fail("approvals", format!("an approval in the bundle does not verify; {summary}"));
    } else {
        report.pass("approvals", summary);
    }
    report.approvals = checked;
}

/// The runbook files the journal names are bundled, with their digests (and the plan's).
fn check_runbook_files(report: &mut Report, opened: &Opened, run: &RunSummary, plan: Option<&(SavedPlan, Vec<u8>)>) {
    let mut problems = Vec::new();
    for (file, name) in run.files.iter().zip(journal::source_names(&run.files)) {
        match opened.get(&format!("{}{name}", evidence::RUNBOOK)) {
            None => problems.push(format!("{} is not bundled", file.path)),
            Some(bytes) if sha256_hex(bytes) != file.sha256 => {
                problems.push(format!("runbook/{name} is not the file that ran (sha256 {})", file.sha256))
            }
            Some(_) => {}
        }
    }
    if let Some((plan, _)) = plan
        && plan.files != run.files
    {
        problems.push("the run's runbook files are not the ones the plan was made from".into());
    }
    if problems.is_empty() {
        report.pass("runbook files", format!("{} files, as they ran", run.files.len()));
    } else {
        report.fail("runbook files", problems.join("; "));
    }
}

/// The run rendered exactly the plan's steps, and took them in the plan's order.
fn check_steps(report: &mut Report, run: &RunSummary, records: &[Record], plan: &SavedPlan) {
    let reviewed: Vec<StepText> = plan.steps.iter().map(PlannedStep::text).collect();
    let differences = drift::steps(&reviewed, &run.rendered);
    if run.rendered.is_empty() {
        report.fail("steps", "the journal does not record how the steps rendered");
        return;
    }
    if !differences.is_empty() {
        report.fail(
            "steps",
            format!("the run's steps are not the plan's:\n{}", drift::render(&differences, "reviewed").trim_end()),
        );
        return;
    }
    let order: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    let mut last = 0;
    let mut problems = Vec::new();
    for record in records {
        if let Record::StepStarted { step, .. } = record {
            match order.iter().position(|id| id == step) {
                None => problems.push(format!("step {step} is not in the plan")),
                Some(i) if i < last => problems.push(format!("step {step} ran after step {}", order[last])),
                Some(i) => last = i,
            }
        }
    }
    if problems.is_empty() {
        let ran = run.step_states.len();
        report.pass(
            "steps",
            format!("the plan's {} steps, as reviewed; {ran} reached, in the plan's order", order.len()),
        );
    } else {
        report.fail("steps", problems.join("; "));
    }
}

/// Everything the run did besides taking the plan's steps once, in order.
fn deviations(run: &RunSummary, records: &[Record]) -> Vec<String> {
    let mut out = Vec::new();
    for record in records {
        match record {
            Record::RunResumed { host, user, time, forced, inputs, .. } => {
                let mut line = format!("resumed {time} by {user} on {host}");
                if *forced {
                    line.push_str(", with --force (a changed runbook, a command possibly still running, or a tail possibly lost, accepted)");
                }
                if inputs.is_some() {
                    line.push_str(", with other inputs");
                }
                out.push(line);
            }
            Record::OperatorDecision { step, decision, user, time, .. } => out.push(match decision.as_str() {
                "mark_done" => format!("step {step} marked done by hand (--mark-done) by {user} at {time}"),
                "redo" => format!("step {step} run again (--redo) by {user} at {time}"),
                other => format!("step {step}: {other} by {user} at {time}"),
            }),
            Record::StepFinished { step, outcome: Outcome::Skipped, .. } => {
                out.push(format!("step {step} skipped (its `when` was false)"))
            }
            Record::StepInterrupted { step, time } => out.push(format!("step {step} interrupted at {time}")),
            Record::RollbackStarted { user, host, time, forced, .. } => out.push(format!(
                "rollback started {time} by {user} on {host}{}",
                if *forced { ", with --force" } else { "" }
            )),
            Record::UndoFinished { step, outcome, error, .. } => out.push(format!(
                "step {step}: {}{}",
                outcome.as_str(),
                error.as_ref().map(|e| format!(": {}", e.lines().next().unwrap_or(""))).unwrap_or_default()
            )),
            Record::RollbackFinished { outcome, time } => out.push(format!("rollback {} at {time}", outcome.as_str())),
            Record::RunFinished { outcome: journal::RunOutcome::Abandoned, time } => {
                out.push(format!("abandoned at {time} (replaced by `run --fresh`)"))
            }
            _ => {}
        }
    }
    let not_run: Vec<&str> =
        run.rendered.iter().filter(|s| !run.step_states.contains_key(&s.id)).map(|s| s.id.as_str()).collect();
    if !not_run.is_empty() {
        out.push(format!("not run: {}", not_run.join(", ")));
    }
    out
}

fn text(r: &Report) -> String {
    let mut out = String::new();
    let verdict = if r.verified { "VERIFIED" } else { "NOT VERIFIED" };
    let _ = writeln!(out, "{verdict}: {} (run {} of {}, {})", r.bundle, r.run_id, r.runbook, r.outcome);
    let width = r.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    for c in &r.checks {
        let mut lines = c.detail.lines();
        let _ = writeln!(out, "  {:<4}  {:<width$}  {}", c.result, c.check, lines.next().unwrap_or(""));
        for l in lines {
            let _ = writeln!(out, "  {:<4}  {:<width$}  {}", "", "", l.trim_start());
        }
    }
    if r.deviations.is_empty() {
        let _ = writeln!(out, "Deviations from the plan: none");
    } else {
        let _ = writeln!(out, "Deviations from the plan:");
        for d in &r.deviations {
            let _ = writeln!(out, "  - {d}");
        }
    }
    out
}

fn markdown(r: &Report) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', "<br>");
    let mut out = String::new();
    let verdict = if r.verified { "Verified" } else { "Not verified" };
    let _ = writeln!(out, "# {verdict}: evidence of run {} of {}\n", r.run_id, r.runbook);
    let _ = writeln!(out, "Outcome: {}\n", r.outcome);
    let _ = writeln!(out, "| Check | Result | Detail |\n|---|---|---|");
    for c in &r.checks {
        let _ = writeln!(out, "| {} | {} | {} |", c.check, c.result, cell(&c.detail));
    }
    let _ = writeln!(out, "\n## Deviations from the plan\n");
    if r.deviations.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for d in &r.deviations {
        let _ = writeln!(out, "- {}", cell(d));
    }
    out
}
