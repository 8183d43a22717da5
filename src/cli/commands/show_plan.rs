//! `show-plan`: a saved plan, printed for reviewers.

use std::path::Path;

use crate::cli::args::DocFormat;
use crate::cli::documents;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::cli::page;
use crate::state::saved_plan::SavedPlan;

pub fn run(path: &Path, format: DocFormat) -> CmdResult {
    let (plan, digest) = SavedPlan::read(path)?;
    let shown = path.display().to_string();
    match format {
        DocFormat::Text => print!("{}", documents::saved_plan_text(&plan, &digest)),
        DocFormat::Json => print!("{}", plan.to_text()),
        DocFormat::Markdown => print!("{}", page::markdown(&documents::plan_page(&plan, &digest, Some(&shown)))),
        DocFormat::Html => print!("{}", page::html(&documents::plan_page(&plan, &digest, Some(&shown)))),
    }
    Ok(ExitCode::Success)
}
