//! Crash convergence: the engine is killed (SIGKILL) at every journal sync, before and after,
//! and inside long steps; resuming until done must leave exactly the files of an uninterrupted
//! run, run each non-idempotent command at most once, and keep the journal readable.

use std::path::Path;
use std::process::Stdio;

use crate::support::{KILLED, command, tree, wait_for_no_processes_in};

const RUNBOOK: &str = r#"runbook: 1
name: crashy
inputs:
  secret: { secret: true, default: 'Sup3r-Secret!' }
steps:
  - id: make
    mkdir: out/stage
  - id: note
    write: { path: out/note.txt, content: "started\n" }
  - id: stage
    copy: { from: big.dat, to: out/stage }
  - id: rename
    rename: { from: out/stage/big.dat, to: out/stage/big.pfx }
  - id: idem
    exec: { program: helper, args: [write, out/idem.txt, v1], idempotent: true }
  - id: charge
    exec: [helper, append, out/ledger, charged]
  - id: check
    expect-output: { step: idem, not-contains: error }
  - id: tool
    exec: { program: helper, args: [echo, 'tool ok {{ secret }}'], idempotent: true }
  - id: confirm
    expect-output: { contains: tool ok }
  - id: second_copy
    copy: { from: out/stage/big.pfx, to: out/copy.pfx }
  - id: again
    exec: [helper, append, out/ledger2, again]
  - id: tidy
    remove: out/note.txt
  - id: summary
    write: { path: out/summary.txt, content: "{{ steps.idem.exit_code }} {{ steps.tool.status }}\n" }
  - id: more
    mkdir: out/more/deep
  - id: more_note
    write: { path: out/more/deep/n.txt, content: "{{ steps.stage.captures.sha256 }}\n" }
  - id: more_copy
    copy: { from: out/more/deep/n.txt, to: out/more/n2.txt }
  - id: more_rename
    rename: { from: out/more/n2.txt, to: out/more/n3.txt }
  - id: more_idem
    exec: { program: helper, args: [cat, out/more/n3.txt], idempotent: true }
  - id: more_out
    write: { path: out/more/n4.txt, content: "{{ steps.more_idem.stdout }}" }
  - id: done
    log: finished
"#;

fn setup(dir: &Path) {
    std::fs::write(dir.join("rb.yaml"), RUNBOOK).unwrap();
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big.dat"), big).unwrap();
}

fn runbook(dir: &Path, args: &[&str], crash: Option<&str>) -> (i32, String) {
    runbook_at(dir, args, crash, "full")
}

/// The engine at a durability level (`full` or `process`).
fn runbook_at(dir: &Path, args: &[&str], crash: Option<&str>, level: &str) -> (i32, String) {
    let mut cmd = command(dir);
    cmd.args(args).env("RUNBOOK_DURABILITY", level).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(c) = crash {
        cmd.env("RUNBOOK_TEST_CRASH", c);
    }
    let out = crate::support::output(&mut cmd);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs with a crash at `crash`, then resumes until done, deciding "may have run" as an
/// operator would: by looking at what the command leaves behind. Returns how many runs it took.
fn converge(dir: &Path, crash: &str, level: &str) -> usize {
    let (mut code, mut err) = runbook_at(dir, &["run", "rb.yaml"], Some(crash), level);
    let mut runs = 1;
    while code != 0 {
        assert!(runs < 10, "{crash}: no convergence; last stderr:\n{err}");
        assert!(code == KILLED || code == 3, "{crash}: unexpected exit {code}\n{err}");
        // A command orphaned by the kill may still be finishing: let it, as an operator would.
        assert!(wait_for_no_processes_in(dir).is_empty(), "{crash}: processes left running");
        crate::support::wait_for_commands(dir);
        let mut args = vec!["resume".to_string(), "rb.yaml".to_string()];
        if code == 3 {
            let step = if err.contains("step `charge`") {
                "charge"
            } else if err.contains("step `again`") {
                "again"
            } else {
                panic!("{crash}: {err}")
            };
            let effect = if step == "charge" { "out/ledger" } else { "out/ledger2" };
            let ran = dir.join(effect).exists();
            args.push(if ran { "--mark-done" } else { "--redo" }.into());
            args.push(step.into());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        (code, err) = runbook_at(dir, &argv, None, level);
        runs += 1;
        // Every journal still reads: `status` lists them without a warning.
        let status = crate::support::output(command(dir).args(["status", "--format", "json"]));
        let said = String::from_utf8_lossy(&status.stderr);
        assert!(status.status.success() && said.is_empty(), "{crash}: status after the crash: {said}");
    }
    runs
}

fn final_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(dir).into_iter().filter(|(p, _)| !p.starts_with(".runbook")).collect()
}

#[test]
fn killed_at_every_point_the_run_converges() {
    converges_at("full");
}

/// Unsynced, records are still written before the step they announce: a killed engine resumes
/// exactly as at `full`.
#[test]
fn killed_at_every_point_an_unsynced_run_converges() {
    converges_at("process");
}

fn converges_at(level: &str) {
    let reference = tempfile::tempdir().unwrap();
    setup(reference.path());
    assert_eq!(runbook(reference.path(), &["run", "rb.yaml"], None).0, 0);
    let expected = final_tree(reference.path());
    assert_eq!(expected["out/ledger"], b"charged\n");

    let mut points = 0;
    for point in ["before-sync", "after-sync", "copy-chunk", "command-running"] {
        for n in 1.. {
            let dir = tempfile::tempdir().unwrap();
            setup(dir.path());
            let crash = format!("{point}:{n}");
            let runs = converge(dir.path(), &crash, level);
            let got = final_tree(dir.path());
            if got != expected {
                let digest = |t: &std::collections::BTreeMap<String, Vec<u8>>| -> Vec<(String, String)> {
                    t.iter().map(|(p, b)| (p.clone(), crate::support::sha256_hex(b)[..12].to_string())).collect()
                };
                panic!(
                    "{level} {crash}: the final files differ\nexpected {:?}\ngot      {:?}",
                    digest(&expected),
                    digest(&got)
                );
            }
            // Each journal line parses, and no secret reached it.
            for journal in std::fs::read_dir(dir.path().join(".runbook/runs/crashy")).unwrap() {
                let text = std::fs::read_to_string(journal.unwrap().path()).unwrap();
                assert!(!text.contains("Sup3r-Secret!"), "{crash}: the secret reached the journal");
                assert!(text.contains(&format!("\"durability\":\"{level}\"")), "{crash}: the level is recorded");
            }
            if runs == 1 {
                break; // the hook never fired: past the last point
            }
            points += 1;
        }
    }
    eprintln!("crash points: {points}");
    assert!(points >= 50, "only {points} crash points");
}

#[test]
fn a_torn_last_line_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    // Stop right after the first steps are on disk, then tear the journal's tail.
    let (code, _) = runbook(dir.path(), &["run", "rb.yaml"], Some("after-sync:3"));
    assert_eq!(code, KILLED);
    let journal = std::fs::read_dir(dir.path().join(".runbook/runs/crashy")).unwrap().next().unwrap().unwrap().path();
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("{\"type\":\"step_finished\",\"step\":\"sta");
    std::fs::write(&journal, text).unwrap();
    let (code, err) = runbook(dir.path(), &["resume", "rb.yaml"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: the last line of "), "{err}");
    assert!(err.contains("was cut short (a crash while writing it); it is ignored"), "{err}");
}

#[test]
fn a_garbled_line_in_the_middle_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let (code, _) = runbook(dir.path(), &["run", "rb.yaml"], Some("after-sync:4"));
    assert_eq!(code, KILLED);
    let journal = std::fs::read_dir(dir.path().join(".runbook/runs/crashy")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "this is not json";
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let (code, err) = runbook(dir.path(), &["resume", "rb.yaml"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is damaged at line 2"), "{err}");
    // The journal was not rewritten or lost.
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), lines.join("\n") + "\n");
}

#[test]
fn the_journal_records_what_the_schema_describes() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    assert_eq!(runbook(dir.path(), &["run", "rb.yaml"], None).0, 0);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::crate_path("schemas/journal.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let journal = std::fs::read_dir(dir.path().join(".runbook/runs/crashy")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(journal).unwrap();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator.iter_errors(&record).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
    assert!(text.contains("\"secret_inputs\":[\"secret\"]"));
    assert!(text.contains("tool ok ****"));
}

/// At `process` durability an OS crash may lose the journal's last records: after the machine
/// restarted, a command that is not safe to run twice and comes after the last recorded step may
/// have run, so resume asks for the operator's word. Without a restart, resume is as usual.
#[test]
fn an_unsynced_run_after_a_restart_does_not_run_a_command_twice_unasked() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let boot = |id: &str, args: &[&str], crash: Option<&str>| {
        let mut cmd = command(dir.path());
        cmd.args(args).env("RUNBOOK_DURABILITY", "process").env("RUNBOOK_TEST_BOOT_ID", id);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        if let Some(c) = crash {
            cmd.env("RUNBOOK_TEST_CRASH", c);
        }
        let out = crate::support::output(&mut cmd);
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Killed after the first steps are written (not synced), in the first boot.
    let (code, _) = boot("boot-1", &["run", "rb.yaml"], Some("after-sync:3"));
    assert_eq!(code, KILLED);
    let status = crate::support::output(command(dir.path()).args(["status"]));
    assert!(String::from_utf8_lossy(&status.stdout).contains("durability process"));
    // The machine restarted: `charge` and `again`, later and not idempotent, may have run.
    let (code, err) = boot("boot-2", &["resume", "rb.yaml"], None);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("was not synced (--durability process) and the machine has restarted since its last record"),
        "{err}"
    );
    assert!(err.contains("so these commands may have run: charge, again"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(!dir.path().join("out/ledger").exists(), "nothing ran");
    // The same boot: the records are all there, and resume goes on.
    let (code, err) = boot("boot-1", &["resume", "rb.yaml"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("out/ledger")).unwrap(), "charged\n");
}
