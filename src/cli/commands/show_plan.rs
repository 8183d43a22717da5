//! `show-plan`: a saved plan, printed for reviewers.

use std::path::Path;

use crate::cli::documents;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::state::saved_plan::SavedPlan;

pub fn run(path: &Path) -> CmdResult {
    let (plan, digest) = SavedPlan::read(path)?;
    print!("{}", documents::saved_plan_text(&plan, &digest));
    Ok(ExitCode::Success)
}
