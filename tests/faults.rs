//! Faults: a full disk during a copy, permissions on source, target and state folder, a file
//! held open by another program, and a state folder that cannot be written, refused before any
//! step runs. Where a fault is made differently on each system (an rlimit and file modes on
//! Unix; sharing modes and the read-only attribute on Windows), each has its own test.

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use crate::support::{Test, command};

#[cfg(unix)]
#[test]
fn a_copy_onto_a_full_disk_leaves_nothing_at_the_target_name_and_a_resumable_journal() {
    use std::os::unix::process::CommandExt;
    let t = Test::new()
        .file("rb.yaml", "runbook: 1\nname: full\nsteps:\n  - id: big\n    copy: { from: big.dat, to: out/big.dat }\n")
        .file("big.dat", vec![7u8; 3 * 1024 * 1024])
        .mkdir("out");
    let dir = t.path().to_path_buf();
    // A file size limit stands in for a full disk: writes past 1 MiB fail with EFBIG.
    let mut cmd = command(&dir);
    cmd.args(["run", "rb.yaml"]).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: 1024 * 1024, rlim_max: 1024 * 1024 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let out = crate::support::output(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write") && stderr.contains("file too large"), "{stderr}");
    let files: Vec<String> = crate::support::tree(&dir).into_keys().filter(|p| p.starts_with("out")).collect();
    assert_eq!(files, ["out/"], "no file (not even a temporary one) is left in out/");
    // Space is back: resume finishes the copy.
    t.args(["resume", "rb.yaml"])
        .creates("out/big.dat", vec![7u8; 3 * 1024 * 1024])
        .stderr_contains(["Run succeeded (1 done).\n"])
        .run();
}

#[cfg(unix)]
#[test]
fn permission_denied_on_the_source_is_a_clear_step_failure() {
    let t = Test::new()
        .file("rb.yaml", "runbook: 1\nname: p\nsteps:\n  - id: c\n    copy: { from: secret.dat, to: out.dat }\n")
        .file("secret.dat", "x");
    std::fs::set_permissions(t.path().join("secret.dat"), std::fs::Permissions::from_mode(0o000)).unwrap();
    t.unprivileged()
        .args(["run", "rb.yaml"])
        .code(1)
        .stderr_contains(["cannot read the source [TMP]/secret.dat: permission denied"])
        .run();
}

#[cfg(unix)]
#[test]
fn permission_denied_on_the_target_folder_is_a_clear_step_failure() {
    let t = Test::new()
        .file("rb.yaml", "runbook: 1\nname: p\nsteps:\n  - id: c\n    copy: { from: a.dat, to: locked/a.dat }\n")
        .file("a.dat", "x")
        .mkdir("locked");
    std::fs::set_permissions(t.path().join("locked"), std::fs::Permissions::from_mode(0o555)).unwrap();
    t.unprivileged()
        .args(["run", "rb.yaml"])
        .code(1)
        .stderr_contains(["      failed\n", "cannot write in [TMP]/locked: permission denied"])
        .run();
}

#[test]
fn an_unwritable_state_folder_is_refused_before_any_step_runs() {
    // A state folder under a regular file can never be created, root or not.
    Test::new()
        .file("rb.yaml", "runbook: 1\nname: p\nsteps:\n  - id: w\n    write: { path: out.txt, content: x }\n")
        .file("not-a-folder", "")
        .args(["run", "rb.yaml", "--state-dir", "not-a-folder/state"])
        .code(2)
        .stderr_contains([
            "error: cannot use the state folder not-a-folder/state: a part of the path is not a folder\n",
            "hint: choose a writable state folder with --state-dir or RUNBOOK_STATE_DIR",
        ])
        .run();
}

#[cfg(unix)]
#[test]
fn a_read_only_state_folder_is_refused_before_any_step_runs() {
    let t = Test::new()
        .file("rb.yaml", "runbook: 1\nname: p\nsteps:\n  - id: w\n    write: { path: out.txt, content: x }\n")
        .mkdir("ro");
    std::fs::set_permissions(t.path().join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    t.unprivileged()
        .args(["run", "rb.yaml", "--state-dir", "ro"])
        .code(2)
        .stderr_contains(["error: cannot use the state folder ro: permission denied"])
        .run();
}

#[test]
fn runs_of_different_runbooks_in_one_state_folder_do_not_interfere() {
    let a =
        "runbook: 1\nname: a\nsteps:\n  - id: w\n    exec: [helper, touch, a-started, wait-for, go, write, a.txt, a]\n";
    let b = "runbook: 1\nname: b\nsteps:\n  - id: w\n    write: { path: b.txt, content: b }\n";
    let t = Test::new().file("a.yaml", a).file("b.yaml", b);
    let dir = t.path().to_path_buf();
    let mut first = crate::support::spawn(command(&dir).args(["run", "a.yaml"]).stderr(Stdio::null()));
    while !dir.join("a-started").exists() {
        std::thread::yield_now();
    }
    let out = t
        .args(["run", "b.yaml"])
        .creates("a-started", "")
        .creates("b.txt", "b")
        .stderr_contains(["Run succeeded (1 done).\n"])
        .run();
    std::fs::write(out.path().join("go"), "").unwrap();
    assert!(first.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(out.path().join("a.txt")).unwrap(), "a\n");
    out.then().args(["status"]).stdout_contains(["  a  succeeded\n", "  b  succeeded\n"]).any_stdout().run();
}

/// A file another program holds open without sharing it (an editor, a virus scanner): the step
/// waits a moment for it, then fails naming the file, and the run resumes once it is free.
#[cfg(windows)]
#[test]
fn a_file_held_open_by_another_program_is_waited_for_then_reported() {
    use std::os::windows::fs::OpenOptionsExt;
    let t = Test::new()
        .file("rb.yaml", "runbook: 1\nname: held\nsteps:\n  - id: r\n    rename: { from: a.dat, to: a.pfx }\n")
        .file("a.dat", "certificate");
    let holder = std::fs::OpenOptions::new().read(true).share_mode(0).open(t.path().join("a.dat")).unwrap();
    let out = t
        .args(["run", "rb.yaml"])
        .code(1)
        .stderr_contains(["      failed\n", "cannot rename [TMP]/a.dat: the file is in use by another program"])
        .run();
    drop(holder);
    out.then()
        .args(["resume", "rb.yaml"])
        .removes("a.dat")
        .creates("a.pfx", "certificate")
        .stderr_contains(["Run succeeded (1 done).\n"])
        .run();
}

/// The source of a copy held open without sharing: reported as in use, naming it.
#[cfg(windows)]
#[test]
fn a_copy_source_held_open_is_reported_as_in_use() {
    use std::os::windows::fs::OpenOptionsExt;
    let t = Test::new()
        .file("rb.yaml", "runbook: 1\nname: held\nsteps:\n  - id: c\n    copy: { from: a.dat, to: b.dat }\n")
        .file("a.dat", "certificate");
    let holder = std::fs::OpenOptions::new().read(true).share_mode(0).open(t.path().join("a.dat")).unwrap();
    t.args(["run", "rb.yaml"])
        .code(1)
        .stderr_contains(["cannot read the source [TMP]/a.dat: the file is in use by another program"])
        .run();
    drop(holder);
}

/// Someone who can write in the target's folder plants symlinks where a temporary file might go
/// (the name older releases used, and names of the same shape): the copy and the write create
/// their temporary files exclusively under fresh names, so nothing is written through a link and
/// the files they point at keep their content.
#[cfg(unix)]
#[test]
fn no_temporary_file_is_created_through_a_planted_symlink() {
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let t = Test::new()
        .file(
            "rb.yaml",
            "runbook: 1\nname: links\nsteps:\n  - { id: c, copy: { from: src.txt, to: out/copy.txt } }\n  - { id: w, write: { path: out/note.txt, content: hello } }\n",
        )
        .file("src.txt", "data")
        .mkdir("out");
    for name in [".copy.txt.runbook-tmp", ".note.txt.runbook-tmp", ".copy.txt.tmp"] {
        std::os::unix::fs::symlink(&victim, t.path().join("out").join(name)).unwrap();
    }
    let out = t
        .args(["run", "rb.yaml"])
        .stderr_contains(["Run succeeded (2 done)."])
        .creates("out/copy.txt", "data")
        .creates("out/note.txt", "hello")
        .ignore("out/.")
        .run();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // The planted links are left as they were (not ours), and no temporary file is left.
    let mut names: Vec<String> = std::fs::read_dir(out.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".copy.txt.runbook-tmp", ".copy.txt.tmp", ".note.txt.runbook-tmp", "copy.txt", "note.txt"]);
    for name in [".copy.txt.runbook-tmp", ".note.txt.runbook-tmp", ".copy.txt.tmp"] {
        assert_eq!(std::fs::read_link(out.path().join("out").join(name)).unwrap(), victim);
    }
}
