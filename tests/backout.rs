//! Backout: every step's undo, `runbook rollback`, `--on-failure rollback`, the backout in the
//! plan, and a rollback killed at every point converging to the tree before the run.

use std::process::Stdio;

use crate::support::{KILLED, Test, command, snapshot, wait_for_no_processes_in};

/// Left out of tree comparisons: the runbook and the log its command writes.
const IGNORED: &[&str] = &["rb.yaml", "service.log"];

/// Creates folders, writes a new file, overwrites one twice, renames one, removes a tree, copies
/// a folder over, runs a command with a declared undo, then fails.
const CHANGE: &str = r#"runbook: 1
name: change
steps:
  - id: dirs
    mkdir: out/a/b
  - id: new_file
    write: { path: out/a/b/new.txt, content: "new\n" }
  - id: settings
    write: { path: site/settings.ini, content: "level=2\n", overwrite: true }
  - id: settings_again
    write: { path: site/settings.ini, content: "level=3\n", overwrite: true }
  - id: move_aside
    rename: { from: site/old.log, to: out/old.log }
  - id: tidy
    remove: { path: site/cache, recursive: true }
  - id: stage
    copy: { from: payload/keep.txt, to: site/payload/keep.txt, overwrite: true }
  - id: stage_dir
    copy: { from: payload/extra, to: site/extra }
  - id: service
    exec: [helper, append, service.log, stopped]
    undo: { exec: { program: helper, args: [append, service.log, started], idempotent: true } }
  - id: import
    exec: [helper, err, 'the import failed', exit, '5']
"#;

fn site(t: Test) -> Test {
    t.file("rb.yaml", CHANGE)
        .file("site/settings.ini", "level=1\n")
        .file("site/old.log", "yesterday\n")
        .file("site/cache/a/one.bin", [1u8, 2, 3])
        .file("site/cache/two.bin", [4u8; 100])
        .file("site/payload/keep.txt", "previous payload\n")
        .file("payload/keep.txt", "new payload\n")
        .file("payload/extra/more.txt", "more\n")
}

fn before() -> Vec<(String, Option<Vec<u8>>)> {
    let t = site(Test::new());
    snapshot(t.path(), IGNORED)
}

#[test]
fn the_plan_shows_the_backout() {
    site(Test::new())
        .args(["plan", "rb.yaml"])
        .code(0)
        .stdout_contains([
            "Backout (if the last step fails, `runbook rollback` undoes, newest first):\n",
            "  9. service: exec helper append service.log started\n",
            "  8. stage_dir: remove [TMP]/site/extra/more.txt (created); remove the folder [TMP]/site/extra (created)\n",
            "  7. stage: restore [TMP]/site/payload/keep.txt (previous content kept)\n",
            "  6. tidy: restore the folder [TMP]/site/cache (kept)\n",
            "  5. move_aside: rename [TMP]/out/old.log → [TMP]/site/old.log (back)\n",
            "  4. settings_again: restore [TMP]/site/settings.ini (previous content kept)\n",
            "  3. settings: restore [TMP]/site/settings.ini (previous content kept)\n",
            "  2. new_file: remove [TMP]/out/a/b/new.txt (created)\n",
            "  1. dirs: remove the folder [TMP]/out/a/b (created); remove the folder [TMP]/out/a (created); remove the folder [TMP]/out (created)\n",
            "Cannot be undone:\n",
            "  10. import: `exec` has no automatic inverse and the step declares no `undo:`\n",
        ])
        .run();
    // In the saved plan and the pages too.
    let out = site(Test::new()).args(["plan", "rb.yaml", "--format", "json"]).any_stdout().run();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["steps"][8]["backout"]["undo"][0], "exec helper append service.log started");
    assert!(doc["steps"][9]["backout"]["impossible"].is_string());
    let md = site(Test::new()).args(["plan", "rb.yaml", "--format", "markdown"]).any_stdout().run();
    assert!(md.stdout.contains("## Backout (newest first)"), "{}", md.stdout);
}

#[test]
fn rollback_returns_the_tree_to_where_it_was_and_runs_the_declared_undo() {
    let expected = before();
    let out = site(Test::new()).args(["run", "rb.yaml"]).code(1).any_files().any_stderr().run();
    assert_ne!(snapshot(out.path(), IGNORED), expected, "the run changed things");
    // Predicted first, touching nothing.
    let changed = snapshot(out.path(), IGNORED);
    out.then()
        .args(["rollback", "rb.yaml", "--dry-run"])
        .any_files()
        .stdout_contains([
            "Rollback of run [RUN] of change (9 steps to undo, newest first)\n",
            "1. undo service: exec helper append service.log started\n   => would change\n",
        ])
        .run();
    assert_eq!(snapshot(out.path(), IGNORED), changed);
    out.then()
        .args(["rollback", "rb.yaml"])
        .any_files()
        .stderr_contains([
            "Rolling back run [RUN]: 9 steps to undo, newest first\n",
            "[undo 1] service: exec helper append service.log started\n      undone\n",
            "Rolled back completely.\n",
        ])
        .run();
    assert_eq!(snapshot(out.path(), IGNORED), expected);
    assert_eq!(std::fs::read_to_string(out.path().join("service.log")).unwrap(), "stopped\nstarted\n");
    let status = out.then().args(["status"]).any_files().any_stdout().run();
    assert!(status.stdout.contains("  change  rolled back\n"), "{}", status.stdout);
    // Again: nothing to do; the kept copies are gone.
    out.then()
        .args(["rollback", "rb.yaml"])
        .any_files()
        .stderr_contains(["nothing to roll back: run [RUN] of `change` was rolled back"])
        .run();
    assert!(!out.path().join(".runbook/backups/change").read_dir().is_ok_and(|mut d| d.next().is_some()));
}

#[test]
fn on_failure_rollback_backs_the_run_out_by_itself() {
    let expected = before();
    let out = site(Test::new())
        .args(["run", "rb.yaml", "--on-failure", "rollback"])
        .code(1)
        .any_files()
        .stderr_contains([
            "[10/10] import:",
            "      failed\n",
            "Rolling back run [RUN]: 9 steps to undo",
            "Rolled back completely.\n",
        ])
        .run();
    assert_eq!(snapshot(out.path(), IGNORED), expected);
    // The same from the runbook's own `on-failure:`.
    let t = site(Test::new()).file("rb.yaml", CHANGE.replace("name: change\n", "name: change\non-failure: rollback\n"));
    let out = t.args(["run", "rb.yaml", "--format", "json"]).code(1).any_files().any_stdout().run();
    assert_eq!(snapshot(out.path(), IGNORED), expected);
    let events: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    let at = kinds.iter().position(|k| *k == "run_finished").unwrap();
    assert_eq!(kinds[at + 1], "rollback_started");
    assert_eq!(events.last().unwrap()["event"], "rollback_finished");
    assert_eq!(events.last().unwrap()["outcome"], "complete");
}

#[test]
fn rollback_refuses_a_file_changed_since_the_run() {
    let out = site(Test::new()).args(["run", "rb.yaml"]).code(1).any_files().any_stderr().run();
    std::fs::write(out.path().join("site/settings.ini"), "level=9 (edited by hand)\n").unwrap();
    out.then()
        .args(["rollback", "rb.yaml"])
        .code(3)
        .any_files()
        .stderr_contains([
            "error: files the run left were changed since; undoing them would lose the changes:\n  - settings_again: [TMP]/site/settings.ini\n",
            "`runbook rollback rb.yaml --force` restores them anyway",
        ])
        .run();
    assert_eq!(std::fs::read_to_string(out.path().join("site/settings.ini")).unwrap(), "level=9 (edited by hand)\n");
    out.then().args(["rollback", "rb.yaml", "--force"]).any_files().any_stderr().run();
    assert_eq!(snapshot(out.path(), IGNORED), before());
}

#[test]
fn a_step_past_the_backup_limit_is_not_undoable_and_the_plan_says_so() {
    let t = Test::new()
        .file("rb.yaml", "runbook: 1\nname: big\nsteps:\n  - id: over\n    write: { path: big.bin, content: small, overwrite: true }\n")
        .file("big.bin", vec![7u8; 4096]);
    t.args(["plan", "rb.yaml", "--backup-limit", "1k"])
        .stdout_contains(["Cannot be undone:\n  1. over: keeping what it replaces (4.0 KiB) would pass the backup limit of 1.0 KiB a run (--backup-limit)\n"])
        .run();
}

#[test]
fn a_completed_run_can_be_backed_out_and_commands_without_undo_are_named() {
    let rb = "runbook: 1\nname: done\nsteps:\n  - id: d\n    mkdir: made\n  - id: note\n    exec: [helper, echo, hi]\n";
    let out = Test::new().file("rb.yaml", rb).args(["run", "rb.yaml"]).any_files().any_stderr().run();
    out.then()
        .args(["rollback", "rb.yaml"])
        .code(1)
        .any_files()
        .stderr_contains([
            "[undo 1] note: cannot be undone: `exec` has no automatic inverse",
            "Rolled back partly: note cannot be undone; see to it by hand.\n",
        ])
        .run();
    assert!(!out.path().join("made").exists());
    let status = out.then().args(["status"]).any_files().any_stdout().run();
    assert!(status.stdout.contains("rolled back (partly: note cannot be undone)"), "{}", status.stdout);
}

/// Killed (SIGKILL, or TerminateProcess) at every journal sync and inside every copy of a
/// rollback, then rolled back again until it ends: the tree is the one before the run.
#[test]
fn a_rollback_killed_at_every_point_converges() {
    let expected = before();
    let mut points = 0;
    for point in ["before-sync", "after-sync", "copy-chunk"] {
        for n in 1.. {
            let t = site(Test::new());
            let dir = t.path().to_path_buf();
            let out = t.args(["run", "rb.yaml"]).code(1).any_files().any_stderr().run();
            let mut runs = 0;
            let mut crash = Some(format!("{point}:{n}"));
            loop {
                let mut cmd = command(out.path());
                cmd.args(["rollback", "rb.yaml"]).stdout(Stdio::null()).stderr(Stdio::piped());
                if let Some(c) = &crash {
                    cmd.env("RUNBOOK_TEST_CRASH", c);
                }
                let result = crate::support::output(&mut cmd);
                let code = result.status.code().unwrap_or(-1);
                runs += 1;
                assert!(runs < 6, "{point}:{n}: no convergence: {}", String::from_utf8_lossy(&result.stderr));
                if code == 0 {
                    break;
                }
                assert_eq!(code, KILLED, "{point}:{n}: {}", String::from_utf8_lossy(&result.stderr));
                assert!(wait_for_no_processes_in(&dir).is_empty());
                crash = None;
            }
            assert_eq!(snapshot(out.path(), IGNORED), expected, "{point}:{n}");
            let log = std::fs::read_to_string(out.path().join("service.log")).unwrap();
            assert!(log == "stopped\nstarted\n" || log == "stopped\nstarted\nstarted\n", "{point}:{n}: {log}");
            if runs == 1 {
                break; // past the last point
            }
            points += 1;
        }
    }
    eprintln!("rollback crash points: {points}");
    assert!(points >= 10, "only {points} crash points");
}
