//! `resume`: the newest unfinished run, continued where it stopped, once it is safe to.

use std::path::{Path, PathBuf};

use crate::cli::args::ResumeArgs;
use crate::cli::config::Config;
use crate::cli::continuing::{Continuation, continue_run};
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::session;
use crate::format::diagnostic::Diagnostic;
use crate::os::args::quote;
use crate::state::journal::{self, RunOutcome, RunSummary};

pub fn run(config: &Config, args: &ResumeArgs) -> CmdResult {
    let Some((file, summary)) = find_run(config, args)? else {
        return Ok(ExitCode::Success);
    };
    let continuation = Continuation {
        inputs: &args.inputs,
        run: &args.run,
        approval: &args.approval,
        force: args.force,
        redo: args.redo.clone(),
        mark_done: args.mark_done.clone(),
    };
    continue_run(config, &continuation, &file, summary)
}

/// Which run: the newest unfinished one of FILE's runbook, or of any runbook; `None` when the
/// newest run of FILE finished well (there is nothing to do).
fn find_run(config: &Config, args: &ResumeArgs) -> Result<Option<(PathBuf, RunSummary)>, Failure> {
    let state = &args.run.state.state_dir;
    let Some(file) = &args.file else {
        let summary = journal::list_runs(state, None)
            .iter()
            .map(|p| journal::summarize(p))
            .find(|s| s.as_ref().map_or(true, RunSummary::unfinished))
            .transpose()?
            .ok_or_else(|| Diagnostic::error(format!("there is no unfinished run to resume in {}", state.display())))?;
        // The recorded path is as it was given; from elsewhere, take it from where the run began.
        let given = PathBuf::from(&summary.runbook_path);
        let file = if given.is_relative() && !given.exists() { Path::new(&summary.cwd).join(&given) } else { given };
        return Ok(Some((file, summary)));
    };
    let runbook = session::load_runbook(&config.ui, file)?;
    match journal::newest_run(state, &runbook.name)? {
        Some(s) if s.unfinished() => Ok(Some((file.clone(), s))),
        // Resuming a finished run is not an error: there is simply nothing left to do.
        Some(s) if s.outcome == Some(RunOutcome::Succeeded) => {
            config.ui.info(&format!(
                "nothing to resume: run {} of `{}` finished successfully{}",
                s.run_id,
                runbook.name,
                s.finished.as_ref().map(|t| format!(" at {t}")).unwrap_or_default()
            ));
            Ok(None)
        }
        _ => Err(Diagnostic::error(format!(
            "there is no unfinished run of `{}` to resume in {}",
            runbook.name,
            state.display()
        ))
        .hint(format!("start one with `runbook run {}`", quote(&file.display().to_string())))
        .into()),
    }
}
