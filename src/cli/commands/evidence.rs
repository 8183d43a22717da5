//! `evidence`: one zip file for the change ticket, with everything an auditor checks a run
//! against, and a manifest of every member's SHA-256 (optionally signed by the operator).

use std::path::{Path, PathBuf};

use crate::cli::args::EvidenceArgs;
use crate::cli::config::Config;
use crate::cli::documents;
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::{junit, page, policy};
use crate::format::diagnostic::{Diagnostic, plural};
use crate::format::digest::sha256_hex;
use crate::format::mask::Masker;
use crate::state::approvals::{self, EVIDENCE_NAMESPACE, KeyChoice};
use crate::state::evidence::{self, Bundle, Manifest, RunFacts};
use crate::state::journal::{self, RunSummary, StepState};
use crate::state::saved_plan::SavedPlan;

pub fn run(config: &Config, args: &EvidenceArgs) -> CmdResult {
    let ui = &config.ui;
    let state = &args.state.state_dir;
    let path = find_run(state, args.run.as_deref())?;
    let run = journal::summarize(&path)?;
    let mut bundle = Bundle::default();
    let mut notes = Vec::new();
    let journal_bytes = std::fs::read(&path)
        .map_err(|e| Diagnostic::error(format!("cannot read {}: {}", path.display(), crate::os::fs::io_reason(&e))))?;
    bundle.add(evidence::JOURNAL, journal_bytes);
    let sources = journal::sources_dir(&path);
    // The runbook files, as they ran: kept when the run began, or still on disk unchanged.
    for (file, name) in run.files.iter().zip(journal::source_names(&run.files)) {
        match as_it_ran(&sources.join("runbook").join(&name), &resolve(&run, &file.path), &file.sha256) {
            Some(bytes) => bundle.add(format!("{}{name}", evidence::RUNBOOK), bytes),
            None => notes.push(format!(
                "runbook file {} (sha256 {}) is not included: it is no longer there as it ran",
                file.path, file.sha256
            )),
        }
    }
    match &run.plan {
        Some(plan) => add_plan(&mut bundle, &mut notes, &run, &sources, plan)?,
        None => notes.push(
            "the run was not of a reviewed plan (`run FILE`, not `run --plan`): there is no plan or approval to check it against"
                .into(),
        ),
    }
    // The record of the run, its JUnit report, each step's output (all masked as journaled).
    let record = documents::run_page(&run);
    bundle.add("record/run.md", page::markdown(&record));
    bundle.add("record/run.html", page::html(&record));
    let json = serde_json::to_string_pretty(&documents::run_json(&run)).expect("a record serializes") + "\n";
    bundle.add("record/run.json", json);
    bundle.add("junit.xml", junit::render(&run.runbook, &junit::journal_cases(&run), &Masker::default()));
    for (i, (id, state)) in run.step_states.iter().enumerate() {
        if let StepState::Finished { data, .. } = state {
            let text = data.text(crate::format::model::Stream::Any);
            if !text.is_empty() {
                bundle.add(format!("output/{:02}-{}.txt", i + 1, safe(id)), text);
            }
        }
    }
    let first = run.sessions.first();
    let manifest = Manifest {
        format: 1,
        tool_version: crate::format::version::LONG.into(),
        created: journal::now(),
        host: journal::host(),
        user: journal::user(),
        run: RunFacts {
            run_id: run.run_id.clone(),
            runbook: run.runbook.clone(),
            outcome: documents::outcome_text(&run),
            started: run.started.clone(),
            finished: run.finished.clone(),
            host: first.map(|s| s.host.clone()).unwrap_or_default(),
            user: first.map(|s| s.user.clone()).unwrap_or_default(),
            plan_sha256: run.plan.as_ref().map(|p| p.sha256.clone()),
            tool_version: run.tool_version.clone(),
        },
        notes: notes.clone(),
        members: bundle.listing(),
    };
    let manifest_text = serde_json::to_string_pretty(&manifest).expect("a manifest serializes") + "\n";
    let signature = match &args.sign {
        Some(key) => {
            let choice = KeyChoice { file: Some(key), ask_passphrase: None };
            let mut key = approvals::signing_key(&choice)?;
            let sig = key
                .sign(EVIDENCE_NAMESPACE, manifest_text.as_bytes())
                .map_err(|e| Diagnostic::error(format!("cannot sign the manifest: {e}")))?;
            Some((sig, approvals::fingerprint(&key.public())))
        }
        None => None,
    };
    let count = manifest.members.len();
    let zip = bundle
        .zip(manifest_text.as_bytes(), signature.as_ref().map(|(s, _)| s.as_bytes()))
        .map_err(|e| Diagnostic::error(format!("cannot write the bundle: {e}")))?;
    crate::cli::session::save_bytes(&args.out, &zip, "the evidence")?;
    for note in &notes {
        ui.info(&format!("note: {note}"));
    }
    let signed = signature.map(|(_, print)| format!(", manifest signed with {print}")).unwrap_or_default();
    ui.info(&format!(
        "evidence of run {} ({}) written to {}: {count} {} and the manifest{signed}",
        run.run_id,
        documents::outcome_text(&run),
        args.out.display(),
        plural(count, "member", "members")
    ));
    Ok(ExitCode::Success)
}

/// The plan as approved, its Markdown and HTML, and its approvals.
fn add_plan(
    bundle: &mut Bundle,
    notes: &mut Vec<String>,
    run: &RunSummary,
    sources: &Path,
    plan: &crate::compile::runbook::FileDigest,
) -> Result<(), Failure> {
    let on_disk = resolve(run, &plan.path);
    let name = on_disk.file_name().map_or_else(|| "plan.json".into(), |n| n.to_string_lossy().into_owned());
    let kept = sources.join("plan").join(&name);
    let Some(bytes) = as_it_ran(&kept, &on_disk, &plan.sha256) else {
        notes.push(format!(
            "the reviewed plan {} (sha256 {}) is not included: it is no longer there as it ran",
            plan.path, plan.sha256
        ));
        return Ok(());
    };
    // Approvals: as kept when the run began, else those beside the plan now.
    let kept_plan_path = if kept.is_file() { kept } else { on_disk };
    let checked = policy::check_folder(&kept_plan_path, &bytes, None, None)?;
    if let Some(saved) = SavedPlan::from_bytes(&bytes) {
        let page = documents::plan_page(&saved, &plan.sha256, Some(&plan.path), &checked);
        bundle.add("plan/plan.md", page::markdown(&page));
        bundle.add("plan/plan.html", page::html(&page));
    }
    bundle.add(evidence::PLAN, bytes);
    let folder = approvals::folder_of(&kept_plan_path);
    for found in approvals::read_folder(&kept_plan_path)? {
        let comment = folder.join(&found.name).with_extension("comment");
        if let Ok(text) = std::fs::read(&comment) {
            let name = Path::new(&found.name).with_extension("comment");
            bundle.add(format!("{}{}", evidence::APPROVALS, name.display()), text);
        }
        bundle.add(format!("{}{}", evidence::APPROVALS, found.name), found.bytes);
    }
    Ok(())
}

/// A file's bytes as the run recorded them: the copy kept when it began, else the file itself
/// when it is unchanged.
fn as_it_ran(kept: &Path, on_disk: &Path, sha256: &str) -> Option<Vec<u8>> {
    [kept, on_disk].into_iter().filter_map(|p| std::fs::read(p).ok()).find(|b| sha256_hex(b) == sha256)
}

/// A path as the run recorded it, from where it began when relative.
fn resolve(run: &RunSummary, recorded: &str) -> PathBuf {
    let given = Path::new(recorded);
    if given.is_relative() { Path::new(&run.cwd).join(given) } else { given.to_path_buf() }
}

/// A step id as a file name.
fn safe(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

/// The run named (its id or the start of one), or the newest run.
fn find_run(state: &Path, id: Option<&str>) -> Result<PathBuf, Failure> {
    let runs = journal::list_runs(state, None);
    let found = match id {
        Some(id) => runs.into_iter().find(|p| p.file_stem().is_some_and(|s| s.to_string_lossy().starts_with(id))),
        None => runs.into_iter().next(),
    };
    found.ok_or_else(|| {
        let what = id.map_or_else(|| "no run".to_string(), |id| format!("no run `{id}`"));
        Diagnostic::error(format!("there is {what} in {}", state.display()))
            .hint("`runbook status` lists the runs and their ids (give --state-dir where the run kept its journal)")
            .into()
    })
}
