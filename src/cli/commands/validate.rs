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
        // A test file (`*.test.yaml`) is checked as one, with what it says of its runbook.
        if crate::compile::testfile::is_test_file(file) {
            let found = match crate::format::file::read_text(file) {
                Ok(text) => crate::compile::testfile::diagnostics(file, text),
                Err(d) => vec![d],
            };
            if found.iter().any(Diagnostic::is_error) {
                invalid += 1;
            }
            all.extend(found);
            continue;
        }
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
        let tests = files.iter().filter(|f| crate::compile::testfile::is_test_file(f)).count();
        let noun = match tests {
            0 => ("runbook", "runbooks"),
            t if t == n => ("test file", "test files"),
            _ => ("file", "files"),
        };
        let steps: String =
            if n == 1 { files[0].display().to_string() } else { format!("{n} {}", plural(n, noun.0, noun.1)) };
        ui.info(
            &format!("{} {steps} is valid", ui.style_ok("ok:"))
                .replace(" is valid", if n == 1 { " is valid" } else { " are valid" }),
        );
    }
    Ok(ExitCode::Success)
}
