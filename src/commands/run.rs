use crate::exit::{CmdResult, ExitCode};
use crate::ui::Ui;

pub fn run(_ui: &Ui, _args: &crate::cli::RunArgs) -> CmdResult {
    Ok(ExitCode::Success)
}
