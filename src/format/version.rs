//! What this binary is: version, the commit it was built from, target and build date (set by
//! `build.rs`), for `--version`, `runbook version`, and every record and report.

use serde::Serialize;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("RUNBOOK_COMMIT");
pub const TARGET: &str = env!("RUNBOOK_TARGET");
pub const BUILD_DATE: &str = env!("RUNBOOK_BUILD_DATE");

/// `0.1.0 (commit 0123…, x86_64-unknown-linux-gnu, built 2026-12-02)`, as `--version` prints it
/// after the program's name.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RUNBOOK_COMMIT"),
    ", ",
    env!("RUNBOOK_TARGET"),
    ", built ",
    env!("RUNBOOK_BUILD_DATE"),
    ")"
);

/// The same, for machines (`runbook version --format json`).
#[derive(Debug, Serialize)]
pub struct Build {
    pub version: &'static str,
    pub commit: &'static str,
    pub target: &'static str,
    pub build_date: &'static str,
}

pub const BUILD: Build = Build { version: VERSION, commit: COMMIT, target: TARGET, build_date: BUILD_DATE };
