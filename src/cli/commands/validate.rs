use std::path::PathBuf;

use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::format::diagnostic::{Diagnostic, plural};

/// Checks each file and reports every problem in all of them.
pub fn run(config: &Config, files: &[PathBuf]) -> CmdResult {
    let ui = &config.ui;
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut invalid = 0;
    for file in files {
        let loaded = crate::compile::load(file);
        if loaded.runbook.is_none() {
            invalid += 1;
        }
        all.extend(loaded.diagnostics);
    }
    ui.diagnostics(&all);
    if invalid > 0 {
        return Ok(ExitCode::Invalid);
    }
    if !ui.quiet {
        let n = files.len();
        let steps: String =
            if n == 1 { files[0].display().to_string() } else { format!("{n} {}", plural(n, "runbook", "runbooks")) };
        ui.info(
            &format!("{} {steps} is valid", ui.style_ok("ok:"))
                .replace(" is valid", if n == 1 { " is valid" } else { " are valid" }),
        );
    }
    Ok(ExitCode::Success)
}
