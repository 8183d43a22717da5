//! Ctrl-C / SIGTERM during a step: the command's whole process group is stopped, the step is
//! journaled as interrupted, the exit code is 130, and the next `resume` continues.

use std::process::{Command, Stdio};

use crate::support::{BIN, Test, wait_for_no_processes_in};

fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "rb.yaml"]).current_dir(dir).env("CI", "true").stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn wait_for(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

const RB: &str = r#"runbook: 1
name: sig
steps:
  - id: long
    exec: { program: sh, args: [-c, 'sleep 300 & touch started; sleep 300; echo finished > done.txt'], idempotent: true }
  - id: after
    write: { path: after.txt, content: ok }
"#;

#[test]
fn sigterm_stops_the_command_group_and_resume_continues() {
    let t = Test::new().file("rb.yaml", RB);
    let dir = t.path().to_path_buf();
    let child = start(&dir, &[]);
    wait_for(&dir.join("started"));
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted; the command's process group was stopped"), "{stderr}");
    assert!(stderr.contains("Run interrupted."), "{stderr}");
    // The command and the grandchild it started in the background are gone.
    assert_eq!(wait_for_no_processes_in(&dir), Vec::<u32>::new());
    assert!(!dir.join("done.txt").exists());
    // An idempotent command is simply run again; make it quick this time.
    std::fs::write(dir.join("rb.yaml"), RB.replace("sleep 300 & touch started; sleep 300; ", "")).unwrap();
    t.args(["resume", "rb.yaml", "--force"])
        .creates("started", "")
        .creates("done.txt", "finished\n")
        .creates("after.txt", "ok")
        .stderr_contains([
            "note: the runbook changed (steps: long); accepted with --force\n",
            "[1/2] long:",
            "Run succeeded (2 done).\n",
        ])
        .run();
}

#[test]
fn sigint_exits_130_too() {
    let t = Test::new().file("rb.yaml", RB);
    let dir = t.path().to_path_buf();
    let child = start(&dir, &[]);
    wait_for(&dir.join("started"));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(wait_for_no_processes_in(&dir), Vec::<u32>::new());
    let journal = std::fs::read_dir(dir.join(".runbook/runs/sig")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(text.contains("\"type\":\"step_interrupted\",\"step\":\"long\""), "{text}");
    assert!(text.contains("\"type\":\"run_finished\",\"outcome\":\"interrupted\""), "{text}");
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let rb = "runbook: 1\nname: stubborn\nsteps:\n  - id: s\n    exec: [sh, -c, 'trap \"\" TERM; touch started; sleep 300']\n";
    let t = Test::new().file("rb.yaml", rb);
    let dir = t.path().to_path_buf();
    let child = start(&dir, &[("RUNBOOK_KILL_GRACE_MS", "200")]);
    wait_for(&dir.join("started"));
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(wait_for_no_processes_in(&dir), Vec::<u32>::new());
}

#[test]
fn a_timeout_kills_background_grandchildren_too() {
    Test::new()
        .file(
            "rb.yaml",
            "runbook: 1\nname: t\nsteps:\n  - id: s\n    timeout: 200ms\n    exec: [sh, -c, 'sleep 300 & sleep 300']\n",
        )
        .args(["run", "rb.yaml"])
        .code(1)
        .stderr_contains(["      `sh` timed out after 200ms and was stopped\n"])
        .run();
}
