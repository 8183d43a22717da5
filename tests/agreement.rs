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

/// A command step and the `undo:` that reverses it, each kind of action once: the command acts in
/// the step's folder (after random `cd`s), with relative paths, and the undo's paths are relative
/// too, so both are read against the folder the step ran in.
fn undone_command() -> impl Strategy<Value = String> {
    let file = || prop::sample::select(&["a", "c.txt", "x", "d/x", "e/z", "n"][..]);
    let dir = || prop::sample::select(&["d", "e", "f", "d/e", "g"][..]);
    let exec = |args: &str, when: &str, undo: &str| {
        format!("when: \"{when}\"\n    exec: [helper, {args}]\n    undo: {{ {undo} }}")
    };
    prop_oneof![
        // A file the command creates: removed (by `remove`, or by a command).
        file().prop_map(move |f| exec(
            &format!("write, {f}, new"),
            &format!("not exists('{f}')"),
            &format!("remove: {f}")
        )),
        file().prop_map(move |f| exec(
            &format!("write, {f}, new"),
            &format!("not exists('{f}')"),
            &format!("exec: [helper, rm, {f}]")
        )),
        // A file the command replaces: written back from what it printed first.
        (file(), any::<usize>()).prop_map(move |(f, _)| exec(
            &format!("cat, {f}, write, {f}, new"),
            &format!("is_file('{f}')"),
            &format!("write: {{ path: {f}, content: '{{{{ steps.SELF.stdout }}}}', overwrite: true }}")
        )),
        // A file the command removes: copied back from the kept originals.
        file().prop_map(move |f| exec(
            &format!("cat, {f}, rm, {f}"),
            &format!("is_file('{f}')"),
            &format!("copy: {{ from: '{{{{ path_join(keep, steps.SELF.stdout | trim) }}}}', to: {f} }}")
        )),
        // A rename by the command: renamed back.
        (file(), file()).prop_map(move |(a, b)| exec(
            &format!("mv, {a}, {b}"),
            &format!("exists('{a}') and not exists('{b}')"),
            &format!("rename: {{ from: {b}, to: {a} }}")
        )),
        // A folder the command makes or removes.
        dir().prop_map(move |d| exec(
            &format!("mkdir, {d}"),
            &format!("not exists('{d}')"),
            &format!("remove: {{ path: {d}, recursive: true }}")
        )),
        prop::sample::select(&["d/d", "e/e", "d", "f"][..]).prop_map(move |d| exec(
            &format!("rmdir, {d}"),
            &format!("is_dir('{d}')"),
            &format!("mkdir: {d}")
        )),
    ]
}

fn rollback_step() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => undone_command(),
        // Relative (from wherever the run is) and back to the top.
        2 => prop::sample::select(&["d", "e", ".", "'{{ root }}'", "'{{ root }}/d/e'"][..]).prop_map(|p| format!("cd: {p}")),
        1 => action().prop_filter("no cd outside the folder", |a| !a.starts_with("cd: '..'")),
    ]
}

/// The undos a dry run predicts and the ones the rollback then reports: (step, action, verdict).
fn predicted_undos(dir: &Path) -> (i32, Vec<(String, String, String)>) {
    let out = crate::support::output(command(dir).args(["rollback", "rb.yaml", "--dry-run", "--format", "json"]));
    let code = out.status.code().unwrap_or(-1);
    if code == 3 {
        return (code, Vec::new());
    }
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("rollback --dry-run: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    let steps = doc["steps"].as_array().unwrap().iter();
    let undos = steps
        .map(|s| {
            let verdict = match s["verdict"].as_str().unwrap() {
                "would_change" => "done",
                "would_fail" => "failed",
                other => other,
            };
            (s["step"].as_str().unwrap().to_owned(), s["action"].as_str().unwrap().to_owned(), verdict.to_owned())
        })
        .collect();
    (code, undos)
}

fn rolled_back(dir: &Path) -> (i32, Vec<(String, String, String)>) {
    let out = crate::support::output(command(dir).args(["rollback", "rb.yaml", "--yes", "--format", "json"]));
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut undos = Vec::new();
    for e in &events {
        match e["event"].as_str() {
            Some("undo_started") => undos.push((
                e["step"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                String::new(),
            )),
            Some("undo_finished") => {
                let last = undos.last_mut().expect("undo_finished after undo_started");
                assert_eq!(last.0, e["step"].as_str().unwrap());
                last.2 = e["outcome"].as_str().unwrap().to_owned();
            }
            _ => {}
        }
    }
    (out.status.code().unwrap_or(-1), undos)
}

proptest! {
    // Four runs of the binary a case: fewer under Wine, where each start costs far more.
    #![proptest_config(ProptestConfig { cases: if cfg!(windows) { 60 } else { 300 }, failure_persistence: None, ..ProptestConfig::default() })]

    /// After a failed run with `cd`s, relative paths and declared undos, `rollback --dry-run`
    /// names the same action and verdict as `rollback` for every step it undoes, and a complete
    /// rollback leaves the starting tree exactly.
    #[test]
    fn a_rollback_does_what_its_dry_run_predicted(
        entries in tree(),
        steps in prop::collection::vec(rollback_step(), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        std::fs::create_dir(&root).unwrap();
        // Folders to `cd` into and files to act on, then the random ones.
        let base = [
            Entry::Dir("d/e"),
            Entry::Dir("d/d"),
            Entry::Dir("e/d"),
            Entry::Dir("e/e"),
            Entry::File("a", "1"),
            Entry::File("d/x", "2"),
            Entry::File("e/d/x", "22"),
            Entry::File("d/e/z", "22"),
        ];
        build(&root, &base);
        build(&root, &entries);
        // Where a removed file's content is copied back from, outside the tree the steps touch.
        let keep = dir.path().join("keep");
        std::fs::create_dir(&keep).unwrap();
        for c in ["1", "2", "22", "new"] {
            std::fs::write(keep.join(c), c).unwrap();
        }
        let mut text = format!(
            "runbook: 1\nname: agree\ninputs:\n  keep: {{ type: path, default: '{}' }}\n  root: {{ type: path, default: '{}' }}\nsteps:\n",
            keep.display().to_string().replace('\\', "/"),
            root.display().to_string().replace('\\', "/")
        );
        for (i, step) in steps.iter().enumerate() {
            text.push_str(&format!("  - id: s{i}\n    {}\n", step.replace("SELF", &format!("s{i}"))));
        }
        text.push_str("  - { id: boom, fail: stop here }\n");
        std::fs::write(root.join("rb.yaml"), &text).unwrap();
        let before = crate::support::snapshot(&root, &["rb.yaml"]);
        let run = crate::support::output(command(&root).args(["run", "rb.yaml", "--yes"]));
        prop_assert_eq!(run.status.code(), Some(1), "{}\n{}", String::from_utf8_lossy(&run.stderr), text);

        let (predicted_code, predicted) = predicted_undos(&root);
        let (code, undone) = rolled_back(&root);
        if predicted_code == 3 {
            // The dry run says the rollback would refuse: it does, touching nothing.
            prop_assert_eq!(code, 3, "{}", text);
            prop_assert!(undone.is_empty());
            return Ok(());
        }
        // The rollback stops at its first failure; the dry run goes on predicting.
        let reached = undone.len();
        prop_assert!(reached <= predicted.len());
        for (done, (step, action, verdict)) in undone.iter().zip(&predicted) {
            // After an undo command, a predicted failure waits for it: either outcome agrees.
            let agrees = verdict == "decided_at_run_time" || done.2 == *verdict;
            prop_assert!(done.0 == *step && done.1 == *action && agrees, "{:?} vs {:?}\n{}", done, (step, action, verdict), text);
        }
        // It stops only at a failure, which the dry run foresaw (or left to run time).
        let stopped = undone.last().is_some_and(|u| u.2 == "failed");
        if !stopped {
            prop_assert_eq!(reached, predicted.len(), "{}", text);
        } else {
            prop_assert!(predicted[reached - 1].2 == "failed" || predicted[reached - 1].2 == "decided_at_run_time");
        }
        if predicted.iter().all(|p| p.2 != "decided_at_run_time") {
            let first_fail = predicted.iter().position(|p| p.2 == "failed").map_or(predicted.len(), |i| i + 1);
            prop_assert_eq!(reached, first_fail, "{}", text);
        }
        let incomplete = stopped || undone.iter().any(|u| u.2 == "impossible");
        prop_assert_eq!(code, i32::from(incomplete), "{}", text);
        if code == 0 {
            prop_assert_eq!(crate::support::snapshot(&root, &["rb.yaml"]), before, "starting tree {:?}\n{}", entries, text);
        }
    }
}
