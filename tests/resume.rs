//! Resume: after a failure fixed by hand, after a crash, with a changed runbook, with the
//! operator's decisions; and the refusals that protect a change window.

use crate::support::{KILLED, Test};

const FIXABLE: &str = r#"runbook: 1
name: fix
steps:
  - id: one
    write: { path: one.txt, content: "1\n" }
  - id: needs_file
    exec: [helper, cat, needed.txt]
  - id: three
    write: { path: three.txt, content: "{{ steps.needs_file.stdout }}" }
"#;

/// A run of FIXABLE that stops at `needs_file` (its input file is missing).
fn failed_fixable_run() -> crate::support::Output {
    Test::new().file("rb.yaml", FIXABLE).args(["run", "rb.yaml"]).code(1).creates("one.txt", "1\n").any_stderr().run()
}

#[test]
fn resume_after_a_failed_step_fixed_by_hand() {
    let first = Test::new()
        .file("rb.yaml", FIXABLE)
        .args(["run", "rb.yaml"])
        .code(1)
        .creates("one.txt", "1\n")
        .stderr_contains([
            "[2/3] needs_file: exec helper cat needed.txt\n",
            "      failed\n",
            "Run failed (1 done, 1 failed). Fix the cause, then continue with: runbook resume rb.yaml\n",
        ])
        .run();
    // A second `run` is refused while the first is unfinished.
    first
        .then()
        .args(["run", "rb.yaml"])
        .code(3)
        .stderr_contains([
            "error: run [RUN] of `fix` is unfinished: it stopped at step `needs_file`\n",
            "hint: continue it with `runbook resume rb.yaml`, or start over with `runbook run rb.yaml --fresh`",
        ])
        .run();
    std::fs::write(first.path().join("needed.txt"), "fixed\n").unwrap();
    first
        .then()
        .args(["resume", "rb.yaml"])
        .creates("three.txt", "fixed\n")
        .stderr("Resuming fix (run [RUN], journal .runbook/runs/fix/[RUN].jsonl)\n[2/3] needs_file: exec helper cat needed.txt\n      | fixed\n      done\n[3/3] three: write [TMP]/three.txt (6 bytes)\n      done\nRun succeeded (2 done).\n")
        .run();
    // Nothing left to resume.
    first
        .then()
        .args(["resume", "rb.yaml"])
        .stderr_contains(["nothing to resume: run [RUN] of `fix` finished successfully at "])
        .run();
    Test::new()
        .file("rb.yaml", FIXABLE)
        .args(["resume", "rb.yaml"])
        .code(2)
        .stderr_contains([
            "error: there is no unfinished run of `fix` to resume in .runbook",
            "hint: start one with `runbook run rb.yaml`",
        ])
        .run();
}

#[test]
fn fresh_abandons_the_unfinished_run() {
    let first = failed_fixable_run();
    std::fs::write(first.path().join("needed.txt"), "x").unwrap();
    first
        .then()
        .args(["run", "rb.yaml", "--fresh"])
        .creates("three.txt", "x")
        .stderr_contains([
            "run [RUN] marked abandoned (--fresh)\n",
            "[1/3] one: write [TMP]/one.txt (2 bytes)\n      unchanged\n",
            "Run succeeded (2 done, 1 unchanged).\n",
        ])
        .run();
}

#[test]
fn a_changed_runbook_is_refused_and_force_accepts_later_changes() {
    let first = failed_fixable_run();
    // Change a step that already ran: refused, even with --force.
    let changed_before = FIXABLE.replace("\"1\\n\"", "\"one\\n\"");
    std::fs::write(first.path().join("rb.yaml"), &changed_before).unwrap();
    first
        .then()
        .args(["resume", "rb.yaml", "--force"])
        .code(3)
        .stderr_contains([
            "error: the runbook rb.yaml changed since run [RUN] started (rb.yaml changed); steps that differ: one\n",
            "steps that already ran changed (one); --force cannot accept that",
        ])
        .run();
    // Change only the step after the stopping point: refused without --force, accepted with it.
    let changed_after = FIXABLE.replace("path: three.txt", "path: three-renamed.txt");
    std::fs::write(first.path().join("rb.yaml"), &changed_after).unwrap();
    std::fs::write(first.path().join("needed.txt"), "n").unwrap();
    first
        .then()
        .args(["resume", "rb.yaml"])
        .code(3)
        .stderr_contains(["steps that differ: three\n", "hint: if the change is intended, resume with --force"])
        .run();
    first
        .then()
        .args(["resume", "rb.yaml", "--force"])
        .creates("three-renamed.txt", "n")
        .stderr_contains([
            "note: the runbook changed (steps: three); accepted with --force\n",
            "Run succeeded (2 done).\n",
        ])
        .run();
}

const ONCE: &str = r#"runbook: 1
name: once
steps:
  - id: charge
    exec: [helper, append, ledger, charged, kill-parent]
  - id: after
    write: { path: after.txt, content: ok }
"#;

#[test]
fn an_interrupted_command_may_have_run_and_the_operator_decides() {
    // The command kills the engine mid-step: the journal says it started, not that it ended.
    let first = Test::new()
        .file("rb.yaml", ONCE)
        .args(["run", "rb.yaml"])
        .code(KILLED)
        .creates("ledger", "charged\n")
        .any_stderr()
        .run();
    crate::support::wait_for_commands(first.path());
    first
        .then()
        .args(["resume", "rb.yaml"])
        .code(3)
        .stderr_contains([
            "error: step `charge` started a command that never reported back: it may have run\n",
            "hint: check what it did, then either `runbook resume rb.yaml --redo charge` to run it again, or `runbook resume rb.yaml --mark-done charge` if it completed",
        ])
        .run();
    first
        .then()
        .args(["resume", "rb.yaml", "--mark-done", "charge"])
        .creates("after.txt", "ok")
        .stderr_contains(["[2/2] after: write [TMP]/after.txt (2 bytes)\n      done\n", "Run succeeded (1 done).\n"])
        .run();
    let journal = std::fs::read_dir(first.path().join(".runbook/runs/once")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(text.contains("\"type\":\"operator_decision\",\"step\":\"charge\",\"decision\":\"mark_done\""), "{text}");
}

#[test]
fn redo_runs_the_command_again() {
    let rb = "runbook: 1\nname: redo\nsteps:\n  - id: c\n    exec: [helper, append, ledger, ran, if-missing, second, touch, second, kill-parent]\n";
    let first = Test::new()
        .file("rb.yaml", rb)
        .args(["run", "rb.yaml"])
        .code(KILLED)
        .creates("ledger", "ran\n")
        .creates("second", "")
        .any_stderr()
        .run();
    crate::support::wait_for_commands(first.path());
    first
        .then()
        .args(["resume", "rb.yaml", "--redo", "c"])
        .creates("ledger", "ran\nran\n")
        .stderr_contains(["Run succeeded (1 done).\n"])
        .run();
}

#[test]
fn an_idempotent_command_is_simply_run_again() {
    let rb = "runbook: 1\nname: idem\nsteps:\n  - id: c\n    exec: { program: helper, args: [write, state, v1, if-missing, second, touch, second, kill-parent], idempotent: true }\n";
    let first = Test::new()
        .file("rb.yaml", rb)
        .args(["run", "rb.yaml"])
        .code(KILLED)
        .creates("state", "v1\n")
        .creates("second", "")
        .any_stderr()
        .run();
    crate::support::wait_for_commands(first.path());
    first
        .then()
        .args(["resume", "rb.yaml"])
        .stderr_contains(["[1/1] c: exec helper write state v1", "Run succeeded (1 done).\n"])
        .run();
}

#[test]
fn resume_without_a_file_finds_the_newest_unfinished_run() {
    let first = failed_fixable_run();
    std::fs::write(first.path().join("needed.txt"), "z").unwrap();
    first
        .then()
        .args(["resume"])
        .creates("three.txt", "z")
        .stderr_contains(["Resuming fix", "Run succeeded (2 done).\n"])
        .run();
}

#[test]
fn resume_restores_the_working_folder_and_captures() {
    let rb = r#"runbook: 1
name: cwd
steps:
  - id: into
    cd: sub
  - id: probe
    exec: { program: helper, args: [out, build=8400], expect: { matches: 'build=(?P<build>\d+)' } }
  - id: gate
    exec: [helper, cat, gate.txt]
  - id: use
    write: { path: result.txt, content: '{{ steps.probe.captures.build }}' }
"#;
    let first = Test::new().file("rb.yaml", rb).mkdir("sub").args(["run", "rb.yaml"]).code(1).any_stderr().run();
    std::fs::write(first.path().join("sub/gate.txt"), "open").unwrap();
    first
        .then()
        .args(["resume", "rb.yaml"])
        .creates("sub/result.txt", "8400")
        .stderr_contains(["Run succeeded (2 done).\n"])
        .run();
}

#[test]
fn a_second_run_while_the_lock_is_held_is_refused() {
    let rb = "runbook: 1\nname: slow\nsteps:\n  - id: wait\n    exec: [helper, touch, started, wait-for, release]\n";
    let t = Test::new().file("rb.yaml", rb);
    let dir = t.path().to_path_buf();
    let mut first = crate::support::spawn(
        crate::support::command(&dir).args(["run", "rb.yaml"]).stderr(std::process::Stdio::null()),
    );
    while !dir.join("started").exists() {
        std::thread::yield_now();
    }
    let out = t
        .args(["run", "rb.yaml"])
        .code(3)
        .creates("started", "")
        .stderr_contains([
            "error: another run of `slow` holds the lock: pid ",
            " running `run`\n",
            "hint: wait for it to finish",
        ])
        .run();
    std::fs::write(out.path().join("release"), "").unwrap();
    assert!(first.wait().unwrap().success());
}

#[test]
fn status_shows_where_runs_stopped() {
    let first = failed_fixable_run();
    first
        .then()
        .args(["status"])
        .stdout_contains([
            "run [RUN]  fix  failed\n",
            "  stopped at needs_file (failed)\n",
            "    one                      done\n",
            "    needs_file               failed\n",
            "      `helper` exited with code 1\n",
        ])
        .run();
    let out = first.then().args(["status", "--format", "json"]).any_stdout().run();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout_raw).unwrap();
    assert_eq!(doc[0]["stopped_at"], "needs_file");
    assert_eq!(doc[0]["outcome"], "failed");
}

#[test]
fn a_stale_lock_of_a_killed_run_is_reported_and_taken_over() {
    let rb = "runbook: 1\nname: stale\nsteps:\n  - id: a\n    write: { path: a.txt, content: a }\n  - id: b\n    write: { path: b.txt, content: b }\n";
    let first = Test::new()
        .file("rb.yaml", rb)
        .args(["run", "rb.yaml"])
        .env("RUNBOOK_TEST_CRASH", "after-sync:2")
        .code(KILLED)
        .creates("a.txt", "a")
        .any_stderr()
        .run();
    // The dead run's holder record is still there; the OS lock is free.
    assert!(first.path().join(".runbook/locks/stale.holder.json").exists());
    first
        .then()
        .args(["resume", "rb.yaml"])
        .creates("b.txt", "b")
        .stderr_contains([
            "note: the previous holder of the lock (pid ",
            ") is gone; its lock was stale\n",
            "Run succeeded",
        ])
        .run();
    assert!(!first.path().join(".runbook/locks/stale.holder.json").exists(), "the holder record goes with the lock");
}

#[test]
fn resume_continues_inside_an_included_runbook() {
    let main = "runbook: 1\nname: outer\nsteps:\n  - id: first\n    write: { path: one.txt, content: '1' }\n  - id: inner\n    include: { runbook: inner.yaml, with: { name: two.txt } }\n  - id: last\n    write: { path: three.txt, content: '{{ steps.inner.gate.stdout }}' }\n";
    let inner = "runbook: 1\nname: inner\ninputs:\n  name: {}\nsteps:\n  - id: w\n    write: { path: '{{ name }}', content: '2' }\n  - id: gate\n    exec: [helper, cat, gate.txt]\n";
    let first = Test::new()
        .file("main.yaml", main)
        .file("inner.yaml", inner)
        .args(["run", "main.yaml"])
        .code(1)
        .creates("one.txt", "1")
        .creates("two.txt", "2")
        .stderr_contains(["[4/5] inner.gate: exec helper cat gate.txt\n", "      failed\n"])
        .run();
    std::fs::write(first.path().join("gate.txt"), "open").unwrap();
    first
        .then()
        .args(["resume", "main.yaml"])
        .creates("three.txt", "open")
        .stderr_contains([
            "[4/5] inner.gate: exec helper cat gate.txt\n      | open\n      done\n",
            "[5/5] last:",
            "Run succeeded (2 done).\n",
        ])
        .run();
}

#[test]
fn resume_from_another_folder_continues_where_the_run_began() {
    let first = Test::new()
        .file("rb.yaml", FIXABLE)
        .mkdir("elsewhere")
        .args(["run", "rb.yaml"])
        .code(1)
        .creates("one.txt", "1\n")
        .any_stderr()
        .run();
    std::fs::write(first.path().join("needed.txt"), "from afar\n").unwrap();
    let state = first.path().join(".runbook").display().to_string();
    let out = crate::support::output(crate::support::command(&first.path().join("elsewhere")).args([
        "resume",
        "--state-dir",
        &state,
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(std::fs::read_to_string(first.path().join("three.txt")).unwrap(), "from afar\n");
    assert!(!first.path().join("elsewhere/three.txt").exists());
}

#[test]
fn a_runbook_whose_vars_cannot_render_leaves_no_run_behind() {
    let rb = "runbook: 1\nname: badvar\nvars:\n  v: '{{ 1 // 0 }}'\nsteps:\n  - id: a\n    log: '{{ v }}'\n";
    let first = Test::new()
        .file("rb.yaml", rb)
        .args(["run", "rb.yaml"])
        .code(2)
        .stderr_contains(["error: invalid operation: unable to calculate 1 // 0 (in `{{ 1 // 0 }}` at rb.yaml:4:6)"])
        .run();
    first.then().args(["status"]).stdout("no runs in .runbook\n").run();
}

#[test]
fn a_changed_include_is_refused_on_resume() {
    let main = "runbook: 1\nname: outer2\nsteps:\n  - id: inner\n    include: { runbook: inner.yaml }\n  - id: gate\n    exec: [helper, cat, gate.txt]\n";
    let inner = "runbook: 1\nname: inner2\ninputs:\n  word: { default: one }\nsteps:\n  - id: w\n    write: { path: w.txt, content: '{{ word }}' }\n";
    let first = Test::new()
        .file("main.yaml", main)
        .file("inner.yaml", inner)
        .args(["run", "main.yaml"])
        .code(1)
        .creates("w.txt", "one")
        .any_stderr()
        .run();
    // Only a default changes: no step's definition differs, but what ran would have.
    std::fs::write(first.path().join("inner.yaml"), inner.replace("default: one", "default: two")).unwrap();
    first
        .then()
        .args(["resume", "main.yaml"])
        .code(3)
        .stderr_contains(["error: the runbook main.yaml changed since run [RUN] started (inner.yaml changed); steps that differ: none (the change is outside the steps: inputs, vars, comments or layout)\n"])
        .run();
}

/// The engine killed while its command runs: on Unix the command goes on, and `resume` waits
/// for it (refusing to start it a second time beside itself); then continues.
#[cfg(unix)]
#[test]
fn a_command_left_running_by_a_killed_engine_is_waited_for() {
    let rb = "runbook: 1\nname: left\nsteps:\n  - id: c\n    exec: { program: helper, args: [if-missing, release, wait-journaled, kill-parent, wait-for, release, append, ledger, finished], idempotent: true }\n";
    let first = Test::new().file("rb.yaml", rb).args(["run", "rb.yaml"]).code(KILLED).any_stderr().run();
    first
        .then()
        .args(["resume", "rb.yaml"])
        .code(3)
        .stderr_contains([
            "error: step `c` is still running: pid ",
            " since 20",
            "hint: wait for it to end, or stop it, then run `runbook resume rb.yaml` again; --force resumes anyway\n",
        ])
        .run();
    std::fs::write(first.path().join("release"), "").unwrap();
    crate::support::wait_for_commands(first.path());
    first
        .then()
        .args(["resume", "rb.yaml"])
        .creates("ledger", "finished\n")
        .stderr_contains(["[1/1] c: exec helper if-missing release wait-journaled", "Run succeeded (1 done).\n"])
        .run();
}

/// On Windows the engine's Job Object ends its command's tree when the engine dies, so nothing
/// is left running to wait for.
#[cfg(windows)]
#[test]
fn a_command_of_a_killed_engine_ends_with_it_on_windows() {
    let rb = "runbook: 1\nname: left\nsteps:\n  - id: c\n    exec: { program: helper, args: [pidfile, c.pid, wait-journaled, kill-parent, sleep, '300000'], idempotent: true }\n";
    let first =
        Test::new().file("rb.yaml", rb).args(["run", "rb.yaml"]).code(KILLED).creates_some("c.pid").any_stderr().run();
    crate::support::wait_for_commands(first.path());
}
