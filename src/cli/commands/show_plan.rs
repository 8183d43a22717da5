//! `show-plan`: a saved plan, printed for reviewers, with the approvals found beside it.

use std::path::Path;

use crate::cli::args::DocFormat;
use crate::cli::documents;
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::page;
use crate::cli::policy;
use crate::format::allowed_signers::AllowedSigners;
use crate::format::source::Source;
use crate::state::approvals::Checked;
use crate::state::saved_plan::SavedPlan;

pub fn run(path: &Path, format: DocFormat, allowed_signers: Option<&Path>) -> CmdResult {
    let (plan, digest) = SavedPlan::read(path)?;
    let shown = path.display().to_string();
    let approvals = approvals(path, allowed_signers)?;
    match format {
        DocFormat::Text => print!("{}", documents::saved_plan_text(&plan, &digest, &approvals)),
        DocFormat::Json => print!("{}", plan.to_text()),
        DocFormat::Markdown => {
            print!("{}", page::markdown(&documents::plan_page(&plan, &digest, Some(&shown), &approvals)))
        }
        DocFormat::Html => print!("{}", page::html(&documents::plan_page(&plan, &digest, Some(&shown), &approvals))),
    }
    Ok(ExitCode::Success)
}

/// The approvals beside the plan, each checked (by whom, when allowed signers are given).
fn approvals(path: &Path, allowed_signers: Option<&Path>) -> Result<Vec<Checked>, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        crate::format::diagnostic::Diagnostic::error(format!(
            "cannot read {}: {}",
            path.display(),
            crate::os::fs::io_reason(&e)
        ))
    })?;
    let signers = match allowed_signers {
        Some(file) => {
            let text = crate::format::file::read_text(file)?;
            Some(AllowedSigners::parse(&Source::new(file.to_path_buf(), text))?)
        }
        None => None,
    };
    policy::check_folder(path, &bytes, signers.as_ref(), None)
}
