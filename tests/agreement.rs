//! Plan and run agree: random runbooks of file actions (mkdir, write, copy, rename, remove with
//! and without `recursive`, assert, `when` with `exists()`) over a random starting tree are
//! planned, then run in a fresh copy of the same tree; every step's predicted verdict must match
//! its outcome (would change ↔ done, unchanged ↔ unchanged, skipped ↔ skipped, would fail ↔
//! failed, at the same step). Then the run is rolled back: the tree must be the starting tree
//! again, exactly.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

use crate::support::command;

/// Names the generator builds paths from: files and folders, nested two deep, so that steps
/// collide (a copy onto a folder, a rename into a removed one, a folder into itself).
const PATHS: &[&str] =
    &["a", "b", "c.txt", "d", "d/x", "d/y", "e", "e/z", "d/e", "d/e/f", "e/d", "d/../a", "./b", "e/"];

#[derive(Debug, Clone)]
enum Entry {
    File(&'static str, &'static str),
    Dir(&'static str),
}

fn path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(PATHS)
}

fn content() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["1", "2", "22"][..])
}

fn action() -> impl Strategy<Value = String> {
    prop_oneof![
        path().prop_map(|p| format!("mkdir: {p}")),
        (path(), content(), any::<bool>())
            .prop_map(|(p, c, o)| format!("write: {{ path: {p}, content: '{c}', overwrite: {o} }}")),
        (path(), path(), any::<bool>()).prop_map(|(f, t, o)| format!("copy: {{ from: {f}, to: {t}, overwrite: {o} }}")),
        (path(), path(), any::<bool>())
            .prop_map(|(f, t, o)| format!("rename: {{ from: {f}, to: {t}, overwrite: {o} }}")),
        path().prop_map(|p| format!("remove: {p}")),
        prop::sample::select(&["d", "e", ".", "..", "d/e"][..]).prop_map(|p| format!("cd: '{p}'")),
        path().prop_map(|p| format!("remove: {{ path: {p}, recursive: true }}")),
        (prop::sample::select(&["exists", "missing", "file", "dir"][..]), path())
            .prop_map(|(check, p)| format!("assert: {{ {check}: {p} }}")),
    ]
}

fn condition() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        1 => path().prop_map(|p| Some(format!("exists('{p}')"))),
        1 => path().prop_map(|p| Some(format!("not is_dir('{p}')"))),
    ]
}

fn tree() -> impl Strategy<Value = Vec<Entry>> {
    // The starting tree uses the plain names; steps also spell them other ways.
    let plain = || prop::sample::select(&PATHS[..11]);
    prop::collection::vec(
        prop_oneof![(plain(), content()).prop_map(|(p, c)| Entry::File(p, c)), plain().prop_map(Entry::Dir)],
        0..6,
    )
}

fn runbook(steps: &[(String, Option<String>)]) -> String {
    let mut text = String::from("runbook: 1\nname: agree\nsteps:\n");
    for (i, (action, when)) in steps.iter().enumerate() {
        text.push_str(&format!("  - id: s{i}\n"));
        if let Some(w) = when {
            text.push_str(&format!("    when: \"{w}\"\n"));
        }
        text.push_str(&format!("    {action}\n"));
    }
    text
}

/// Builds the starting tree (entries that clash with earlier ones are left out).
fn build(dir: &Path, entries: &[Entry]) {
    for e in entries {
        let (p, is_file) = match e {
            Entry::File(p, _) => (dir.join(p), true),
            Entry::Dir(p) => (dir.join(p), false),
        };
        if p.ancestors().skip(1).any(|a| a.is_file()) || p.exists() {
            continue;
        }
        std::fs::create_dir_all(if is_file { p.parent().unwrap() } else { &p }).unwrap();
        if let Entry::File(_, c) = e {
            std::fs::write(&p, c).unwrap();
        }
    }
}

fn verdicts(dir: &Path) -> Vec<String> {
    let out = crate::support::output(command(dir).args(["plan", "rb.yaml", "--format", "json"]));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    doc["steps"].as_array().unwrap().iter().map(|s| s["verdict"].as_str().unwrap().to_owned()).collect()
}

fn outcomes(dir: &Path) -> Vec<String> {
    let out = crate::support::output(command(dir).args(["run", "rb.yaml", "--format", "json"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step_finished")
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect()
}

fn expected_outcome(verdict: &str) -> &'static str {
    match verdict {
        "would_change" => "done",
        "unchanged" => "unchanged",
        "skipped" => "skipped",
        "would_fail" => "failed",
        other => panic!("a file action's plan says {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn each_step_does_what_the_plan_predicted(
        entries in tree(),
        steps in prop::collection::vec((action(), condition()), 1..8),
    ) {
        let text = runbook(&steps);
        let plan_dir = tempfile::tempdir().unwrap();
        let run_dir = tempfile::tempdir().unwrap();
        for dir in [plan_dir.path(), run_dir.path()] {
            build(dir, &entries);
            std::fs::write(dir.join("rb.yaml"), &text).unwrap();
        }
        let before = crate::support::snapshot(run_dir.path(), &["rb.yaml"]);
        let predicted = verdicts(plan_dir.path());
        let done = outcomes(run_dir.path());
        // The run stops at its first failure; the plan goes on predicting.
        let compared = predicted.iter().position(|v| v == "would_fail").map_or(predicted.len(), |i| i + 1);
        let expected: Vec<&str> = predicted[..compared].iter().map(|v| expected_outcome(v)).collect();
        prop_assert_eq!(&done, &expected, "starting tree {:?}\n{}", entries, text);
        // Backed out, wherever it stopped: the tree is the starting one again.
        let rollback = crate::support::output(command(run_dir.path()).args(["rollback", "rb.yaml", "--yes"]));
        prop_assert!(rollback.status.success(), "rollback: {}\n{}", String::from_utf8_lossy(&rollback.stderr), text);
        prop_assert_eq!(crate::support::snapshot(run_dir.path(), &["rb.yaml"]), before, "starting tree {:?}\n{}", entries, text);
    }
}
