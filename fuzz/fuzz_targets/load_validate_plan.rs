//! Load, validate and plan arbitrary text: no panic, and every error has a location.
//! Run: `cargo fuzz run load_validate_plan` (libFuzzer needs a compiler that accepts `-Z` flags).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = std::env::temp_dir();
    let loaded = runbook::compile::load_text(&dir.join("fuzz.yaml"), text.to_owned());
    for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
        assert!(d.location.is_some() || d.message.contains("fuzz.yaml:"), "unlocated: {}", d.message);
        let _ = d.to_string();
    }
    let Some(rb) = loaded.runbook else { return };
    // A read-only probe runs for real during a plan: never let generated input run programs.
    let probes = rb.steps.iter().any(|s| matches!(&s.action, runbook::compile::runbook::Action::Exec(e) if e.read_only))
        || rb.steps.iter().any(|s| matches!(s.action, runbook::compile::runbook::Action::Include(_)));
    if probes {
        return;
    }
    let Ok((inputs, _)) = runbook::compile::inputs::resolve(&rb, &runbook::compile::inputs::InputArgs::default()) else { return };
    // Without probes, a plan only reads the filesystem.
    let _ = runbook::engine::plan::Planner::plan(
        &rb,
        &inputs,
        &runbook::format::mask::Masker::default(),
        Path::new("/nonexistent").into(),
    );
});
