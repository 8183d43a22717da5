//! The dry run: predictions over the filesystem as earlier steps would leave it, never a change.

use crate::support::{Test, tree};

fn plan(yaml: &str) -> Test {
    Test::new().file("rb.yaml", yaml).args(["plan", "rb.yaml"])
}

#[test]
fn a_failure_caused_by_an_earlier_step_is_predicted_at_the_right_step() {
    // Step 2 copies into the wrong name, so the file step 3 renames never exists.
    let yaml = "runbook: 1\nname: p\nsteps:\n  - id: make\n    mkdir: stage\n  - id: stage\n    copy: { from: backup.dat, to: stage/wrong-name.dat }\n  - id: rename\n    rename: { from: stage/OfficeScanAuth.dat, to: stage/OfficeScanAuth.pfx }\n";
    let out = plan(yaml).file("backup.dat", "cert").code(1).any_stdout().run();
    insta::assert_snapshot!(out.stdout);
    assert!(out.stdout.contains("3. rename: rename [TMP]/stage/OfficeScanAuth.dat → [TMP]/stage/OfficeScanAuth.pfx\n   => would fail: [TMP]/stage/OfficeScanAuth.dat does not exist\n"));
}

#[test]
fn files_created_by_earlier_steps_are_seen_by_later_ones() {
    let yaml = r#"runbook: 1
name: p
steps:
  - id: dir
    mkdir: out/sub
  - id: copy
    copy: { from: a.dat, to: out/sub }
  - id: rename
    rename: { from: out/sub/a.dat, to: out/sub/a.pfx }
  - id: check
    when: 'exists("out/sub/a.pfx") and not exists("out/sub/a.dat")'
    assert: { file: out/sub/a.pfx, missing: out/sub/a.dat }
  - id: into
    cd: out/sub
  - id: rel
    assert: { file: a.pfx }
  - id: gone
    remove: a.pfx
  - id: after
    when: 'exists("a.pfx")'
    fail: removed files are gone
"#;
    let out = plan(yaml).file("a.dat", "x").any_stdout().run();
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn overwriting_a_different_file_is_predicted() {
    let yaml = "runbook: 1\nname: p\nsteps:\n  - id: c\n    copy: { from: a, to: b }\n  - id: same\n    copy: { from: a, to: c }\n";
    let out = plan(yaml).file("a", "new").file("b", "old").file("c", "new").code(1).any_stdout().run();
    assert!(
        out.stdout
            .contains("=> would fail: [TMP]/b exists with different content; set `overwrite: true` to replace it"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("2. same: copy [TMP]/a → [TMP]/c\n   => unchanged\n"), "{}", out.stdout);
}

#[test]
fn command_outputs_are_unknown_until_run_time() {
    let yaml = r#"runbook: 1
name: p
steps:
  - id: tool
    exec: [helper, out, "version 7"]
  - id: check
    expect-output: { matches: 'version (?P<v>\d+)' }
  - id: use
    when: steps.check.captures.v == "7"
    log: old version
  - id: missing
    exec: [no-such-program-anywhere]
"#;
    let out = plan(yaml).code(1).any_stdout().run();
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn read_only_probes_run_during_the_plan() {
    let yaml = r#"runbook: 1
name: p
steps:
  - id: probe
    exec: { program: helper, args: [out, build=8400], read-only: true }
  - id: parse
    expect-output: { matches: 'build=(?P<build>\d+)' }
  - id: refuse
    when: steps.parse.captures.build | int >= 8378
    fail: 'build {{ steps.parse.captures.build }} is too new'
"#;
    let out = plan(yaml).code(1).any_stdout().run();
    assert!(
        out.stdout.contains("3. refuse: fail: build 8400 is too new\n   => would fail: build 8400 is too new\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_plan_never_touches_the_filesystem() {
    let yaml = r#"runbook: 1
name: p
steps:
  - id: d
    mkdir: new/dir
  - id: c
    copy: { from: a, to: new/dir }
  - id: r
    rename: { from: a, to: b }
  - id: w
    write: { path: w.txt, content: hi }
  - id: x
    remove: { path: old, recursive: true }
  - id: e
    exec: [helper, touch, should-not-exist]
  - id: s
    shell: 'touch should-not-exist-either'
"#;
    let t = plan(yaml).file("a", "1").file("old/f", "2");
    let before = tree(t.path());
    let out = t.any_stdout().run();
    assert_eq!(tree(out.path()), before, "the plan changed the folder");
    assert!(!out.path().join(".runbook").exists(), "a plan must not create a state folder");
}

#[test]
fn json_plan_is_one_document() {
    let yaml = "runbook: 1\nname: p\ninputs:\n  pw: { secret: true }\nsteps:\n  - id: e\n    exec: [helper, out, '{{ pw }}']\n";
    let out = plan(yaml).args(["--format", "json", "--var", "pw=hunter2"]).any_stdout().run();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout_raw).unwrap();
    assert_eq!(doc["steps"][0]["action"], "exec helper out ****");
    assert_eq!(doc["steps"][0]["verdict"], "would_change");
    assert_eq!(doc["secret_inputs"][0], "pw");
    assert!(!out.stdout.contains("hunter2"));
}

#[test]
fn dry_run_is_plan() {
    let yaml = "runbook: 1\nname: p\nsteps:\n  - id: d\n    mkdir: x\n";
    let a = plan(yaml).any_stdout().run();
    let b = Test::new().file("rb.yaml", yaml).args(["run", "rb.yaml", "--dry-run"]).any_stdout().run();
    assert_eq!(a.stdout, b.stdout);
}

/// Every shipped runbook, with each site file: every step rendered and predicted, the whole
/// plan pinned (on a machine without the Apex One server, where each stops at its first need of it).
#[test]
fn every_shipped_runbook_plans_with_every_site() {
    let mut books: Vec<_> = std::fs::read_dir(crate::support::crate_path("runbooks/apex-one"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    books.sort();
    assert_eq!(books.len(), 4);
    for book in &books {
        for site in ["fresh-install", "upgraded", "japanese-windows"] {
            let site_file = crate::support::crate_path(&format!("examples/sites/{site}.yaml"));
            // What the legacy export needs besides a site (a file of inputs serves several runbooks).
            let out = Test::new()
                .file("export.yaml", "build: 8000\nexport_file: C:/export/OfficeScanAuth.pfx\n")
                .args(["plan", book.to_str().unwrap(), "--vars", site_file.to_str().unwrap(), "--vars", "export.yaml"])
                .env("RUNBOOK_INPUT_PASSWORD", "Sh1pped-Runbook-Pw")
                .code_any()
                .any_stdout()
                .run();
            let name = book.file_stem().unwrap().to_string_lossy();
            // A site's `C:/...` paths are absolute only on Windows: one snapshot per system.
            let system = std::env::consts::FAMILY;
            insta::assert_snapshot!(format!("{name}@{site}@{system}"), format!("exit {}\n{}", out.code, out.stdout));
        }
    }
}

/// The plan sees what earlier steps put in a folder: removing it without `recursive` would fail
/// at that step, as the run does.
#[test]
fn removing_a_folder_that_earlier_steps_filled_is_predicted_to_fail() {
    let yaml = "runbook: 1\nname: p\nsteps:\n  - id: d\n    mkdir: d\n  - id: w\n    write: { path: d/x, content: hi }\n  - id: rm\n    remove: d\n";
    let out = plan(yaml)
        .code(1)
        .stdout_contains([
            "3. rm: remove [TMP]/d\n   => would fail: cannot remove [TMP]/d: the folder is not empty; set `recursive: true` to remove a folder with content\n",
            "The run would stop at step 3 (rm).\n",
        ])
        .run();
    out.then()
        .args(["run", "rb.yaml"])
        .code(1)
        .creates("d/x", "hi")
        .stderr_contains([
            "[3/3] rm: remove [TMP]/d\n      failed\n      cannot remove [TMP]/d: the folder is not empty",
        ])
        .run();
}
