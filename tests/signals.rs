//! Interruption during a step (SIGTERM or Ctrl-C on Unix; Ctrl-C or Ctrl-Break on Windows): the
//! command's whole tree is stopped, the step is journaled as interrupted, the exit code is 130,
//! and the next `resume` continues. A timeout stops the whole tree too.
//!
//! On Windows the tests press Ctrl-C through the engine's test hook (`RUNBOOK_TEST_INTERRUPT_ON`):
//! under Wine there is no console to send the event through. The handler that turns the console
//! event into the same interruption is unit-tested beside it (`os::signals`).

use std::path::Path;
use std::process::Stdio;

use crate::support::{Test, command, wait_for_no_processes_in};

/// Where the Windows tests' stand-in for Ctrl-C is written (in the state folder, which the
/// tests' file comparisons leave out).
#[cfg(windows)]
fn trigger(dir: &Path) -> std::path::PathBuf {
    dir.join(".runbook").join("interrupt.now")
}

fn start(dir: &Path, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = command(dir);
    cmd.args(["run", "rb.yaml"]).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    #[cfg(windows)]
    cmd.env("RUNBOOK_TEST_INTERRUPT_ON", trigger(dir));
    crate::support::spawn(&mut cmd)
}

fn wait_for(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[derive(Clone, Copy)]
enum How {
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

fn interrupt(child: &std::process::Child, dir: &Path, how: How) {
    #[cfg(unix)]
    {
        let _ = dir;
        let signal = match how {
            How::Terminate => libc::SIGTERM,
            How::Interrupt => libc::SIGINT,
        };
        // SAFETY: kill(2) on the child we spawned.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
    }
    #[cfg(windows)]
    {
        let _ = (child, how);
        std::fs::write(trigger(dir), "").unwrap();
    }
}

/// The process whose id a helper wrote to `file` has ended (within a bounded wait).
fn assert_ended(file: &Path) {
    let pid: u32 = std::fs::read_to_string(file).unwrap().trim().parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while crate::support::pid_alive(pid) {
        assert!(std::time::Instant::now() < deadline, "process {pid} ({}) is still running", file.display());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

const RB: &str = r#"runbook: 1
name: sig
steps:
  - id: long
    exec: { program: helper, args: [spawn-sleep, '300000', grandchild.pid, touch, started, sleep, '300000', write, done.txt, finished], idempotent: true }
  - id: after
    write: { path: after.txt, content: ok }
"#;

#[test]
fn terminating_stops_the_command_tree_and_resume_continues() {
    let t = Test::new().file("rb.yaml", RB);
    let dir = t.path().to_path_buf();
    let child = start(&dir, &[]);
    wait_for(&dir.join("started"));
    interrupt(&child, &dir, How::Terminate);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted; the command's process group was stopped"), "{stderr}");
    assert!(stderr.contains("Run interrupted."), "{stderr}");
    // The command and the grandchild it started in the background are gone.
    assert_ended(&dir.join("grandchild.pid"));
    assert_eq!(wait_for_no_processes_in(&dir), Vec::<u32>::new());
    assert!(!dir.join("done.txt").exists());
    // An idempotent command is simply run again; make it quick this time.
    std::fs::write(
        dir.join("rb.yaml"),
        RB.replace("spawn-sleep, '300000', grandchild.pid, touch, started, sleep, '300000', ", ""),
    )
    .unwrap();
    t.args(["resume", "rb.yaml", "--force"])
        .creates("started", "")
        .creates_some("grandchild.pid")
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
fn interrupting_exits_130_and_journals_the_interruption() {
    let t = Test::new().file("rb.yaml", RB);
    let dir = t.path().to_path_buf();
    let child = start(&dir, &[]);
    wait_for(&dir.join("started"));
    interrupt(&child, &dir, How::Interrupt);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ended(&dir.join("grandchild.pid"));
    assert_eq!(wait_for_no_processes_in(&dir), Vec::<u32>::new());
    let journal = std::fs::read_dir(dir.join(".runbook/runs/sig")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(text.contains("\"type\":\"step_interrupted\",\"step\":\"long\""), "{text}");
    assert!(text.contains("\"type\":\"run_finished\",\"outcome\":\"interrupted\""), "{text}");
}

#[test]
fn a_command_that_ignores_the_interruption_is_killed_after_the_grace_period() {
    let rb = "runbook: 1\nname: stubborn\nsteps:\n  - id: s\n    exec: [helper, ignore-interrupts, pidfile, stubborn.pid, touch, started, sleep, '300000']\n";
    let t = Test::new().file("rb.yaml", rb);
    let dir = t.path().to_path_buf();
    let child = start(&dir, &[("RUNBOOK_KILL_GRACE_MS", "200")]);
    wait_for(&dir.join("started"));
    interrupt(&child, &dir, How::Terminate);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ended(&dir.join("stubborn.pid"));
    assert_eq!(wait_for_no_processes_in(&dir), Vec::<u32>::new());
}

#[test]
fn a_timeout_stops_background_grandchildren_too() {
    let out = Test::new()
        .file(
            "rb.yaml",
            "runbook: 1\nname: t\nsteps:\n  - id: s\n    timeout: 300ms\n    exec: [helper, spawn-sleep, '300000', grandchild.pid, sleep, '300000']\n",
        )
        .args(["run", "rb.yaml"])
        .code(1)
        .creates_some("grandchild.pid")
        .stderr_contains(["      `helper` timed out after 300ms and was stopped\n"])
        .run();
    assert_ended(&out.path().join("grandchild.pid"));
}

/// The engine itself killed mid-command: on Windows its Job Object takes the command's whole
/// tree with it; on Unix the command is left to finish (and `resume` decides about it).
#[cfg(windows)]
#[test]
fn a_killed_engine_takes_its_command_tree_with_it_on_windows() {
    let t = Test::new().file("rb.yaml", RB);
    let dir = t.path().to_path_buf();
    let mut child = start(&dir, &[]);
    wait_for(&dir.join("started"));
    child.kill().unwrap();
    let _ = child.wait();
    assert_ended(&dir.join("grandchild.pid"));
}

/// Whatever goes wrong while the engine waits for a command, the command's tree is stopped.
#[test]
fn losing_track_of_a_command_stops_its_tree() {
    let out = Test::new()
        .file("rb.yaml", "runbook: 1\nname: t\nsteps:\n  - id: s\n    exec: [helper, spawn-sleep, '300000', grandchild.pid, touch, started, sleep, '300000']\n")
        .args(["run", "rb.yaml"])
        .env("RUNBOOK_TEST_FAIL", "wait:started")
        .code(1)
        .creates_some("grandchild.pid")
        .creates("started", "")
        .stderr_contains(["lost track of it while it ran (a failure injected at `wait`), so it was stopped\n"])
        .run();
    assert_ended(&out.path().join("grandchild.pid"));
}
