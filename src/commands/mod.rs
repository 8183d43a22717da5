//! One module per subcommand; each `run` returns the exit code or a [`crate::exit::Failure`].

pub mod plan;
pub mod resume;
pub mod run;
pub mod schema;
pub mod show;
pub mod status;
pub mod validate;

use std::path::Path;
use std::sync::Arc;

use crate::exit::Failure;
use crate::runbook::Runbook;
use crate::ui::Ui;

/// Loads and checks a runbook; warnings are printed, errors fail with exit 2.
pub fn load_runbook(ui: &Ui, path: &Path) -> Result<Arc<Runbook>, Failure> {
    let loaded = crate::loader::load(path);
    match loaded.runbook {
        Some(runbook) => {
            if !ui.quiet {
                ui.diagnostics(&loaded.diagnostics);
            }
            Ok(runbook)
        }
        None => Err(Failure::invalid(loaded.diagnostics)),
    }
}
