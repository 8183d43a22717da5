//! Every action, run for real: success and failure, with the files, stdout, stderr and exit code.

use crate::support::Test;

fn rb(steps: &str) -> String {
    format!("runbook: 1\nname: t\nsteps:\n{steps}")
}

fn run(steps: &str) -> Test {
    Test::new().file("rb.yaml", rb(steps)).args(["run", "rb.yaml"])
}

const HEAD: &str = "Running t (run [RUN], journal .runbook/runs/t/[RUN].jsonl)\n";

#[test]
fn copy_into_a_folder_and_verify() {
    run("  - id: c\n    copy: { from: src/a.dat, to: dst }\n")
        .file("src/a.dat", "certificate")
        .mkdir("dst")
        .creates("dst/a.dat", "certificate")
        .stderr(&format!("{HEAD}[1/1] c: copy [TMP]/src/a.dat → [TMP]/dst\n      done\nRun succeeded (1 done).\n"))
        .run();
}

#[test]
fn copy_of_identical_content_is_unchanged() {
    run("  - id: c\n    copy: { from: a, to: b }\n")
        .file("a", "x")
        .file("b", "x")
        .stderr(&format!("{HEAD}[1/1] c: copy [TMP]/a → [TMP]/b\n      unchanged\nRun succeeded (1 unchanged).\n"))
        .run();
}

#[test]
fn copy_onto_different_content_needs_overwrite() {
    run("  - id: c\n    copy: { from: a, to: b }\n")
        .file("a", "new")
        .file("b", "old")
        .code(1)
        .stderr_contains([
            "      failed\n",
            "      [TMP]/b exists with different content; set `overwrite: true` to replace it\n",
            "Run failed (1 failed).",
        ])
        .run();
    run("  - id: c\n    copy: { from: a, to: b, overwrite: true }\n")
        .file("a", "new")
        .file("b", "old")
        .creates("b", "new")
        .stderr_contains(["      done\n", "Run succeeded (1 done)."])
        .run();
}

#[test]
fn copy_of_a_missing_source_fails() {
    run("  - id: c\n    copy: { from: nope, to: b }\n")
        .code(1)
        .stderr_contains(["      failed\n      the source [TMP]/nope does not exist\n"])
        .run();
}

#[test]
fn copy_of_a_folder_is_recursive() {
    run("  - id: c\n    copy: { from: tree, to: out }\n")
        .file("tree/a", "1")
        .file("tree/sub/b", "2")
        .creates("out/a", "1")
        .creates("out/sub/b", "2")
        .stderr_contains(["      done\n"])
        .run();
}

#[test]
fn rename_and_its_already_done_case() {
    let out = run("  - id: r\n    rename: { from: a.dat, to: a.pfx }\n")
        .file("a.dat", "c")
        .removes("a.dat")
        .creates("a.pfx", "c")
        .stderr(&format!("{HEAD}[1/1] r: rename [TMP]/a.dat → [TMP]/a.pfx\n      done\nRun succeeded (1 done).\n"))
        .run();
    out.then()
        .args(["run", "rb.yaml"])
        .stderr(&format!(
            "{HEAD}[1/1] r: rename [TMP]/a.dat → [TMP]/a.pfx\n      unchanged\nRun succeeded (1 unchanged).\n"
        ))
        .run();
}

#[test]
fn rename_refuses_to_replace_without_overwrite() {
    run("  - id: r\n    rename: { from: a, to: b }\n")
        .file("a", "1")
        .file("b", "2")
        .code(1)
        .stderr_contains(["[TMP]/b already exists; set `overwrite: true` to replace it"])
        .run();
}

#[test]
fn cd_changes_where_later_steps_work() {
    run("  - id: in\n    cd: sub\n  - id: w\n    write: { path: here.txt, content: hi }\n  - id: e\n    exec: [helper, pwd]\n")
        .mkdir("sub")
        .creates("sub/here.txt", "hi")
        .stderr_contains([
            "[1/3] in: cd [TMP]/sub\n      unchanged\n",
            "[2/3] w: write [TMP]/sub/here.txt (2 bytes)\n      done\n",
            "      | [TMP]/sub\n",
        ])
        .run();
}

#[test]
fn cd_into_a_missing_folder_fails() {
    run("  - id: in\n    cd: nope\n")
        .code(1)
        .stderr_contains(["      cannot enter [TMP]/nope: no such file or folder\n"])
        .run();
}

#[test]
fn exec_runs_without_a_shell_and_captures_output() {
    // No shell: `$HOME`, `;`, `*` and `%PATH%` reach the program as written, on every system.
    run("  - id: e\n    exec: [helper, echo, 'a $HOME; b', '*', '%PATH%']\n  - id: show\n    log: 'got {{ steps.e.stdout | trim }} ({{ steps.e.exit_code }})'\n")
        .stderr(&format!(
            "{HEAD}[1/2] e: exec helper echo \"a $HOME; b\" * %PATH%\n      | a $HOME; b * %PATH%\n      done\n[2/2] show: log\n      got a $HOME; b * %PATH% (0)\n      unchanged\nRun succeeded (1 done, 1 unchanged).\n"
        ))
        .run();
}

#[test]
fn exec_prefers_the_program_in_the_cd_folder() {
    // A `mytool` on PATH competes with the one in the `cd` folder: the cd folder's wins; from
    // elsewhere the one on PATH runs.
    let t = run("  - id: in\n    cd: tool\n  - id: e\n    exec: [mytool, x]\n  - id: back\n    cd: ..\n  - id: f\n    exec: [mytool, y]\n")
        .script("tool/mytool", "#!/bin/sh\necho \"local tool $1\"\n", "@echo local tool %1\n")
        .script("bin/mytool", "#!/bin/sh\necho \"tool on PATH $1\"\n", "@echo tool on PATH %1\n");
    let mut path = vec![t.path().join("bin")];
    path.extend(std::env::split_paths(&crate::support::path_with_helpers()));
    let path = std::env::join_paths(path).unwrap();
    t.env("PATH", path.to_str().unwrap())
        .stderr_contains(["      | local tool x\n      done\n", "      | tool on PATH y\n      done\n"])
        .run();
}

#[test]
fn exec_failure_shows_the_exit_code_and_the_last_lines() {
    // Live lines of stdout and stderr may interleave either way; the summary lists stdout first.
    let out = run("  - id: e\n    exec: [helper, out, first, err, oops, exit, '3']\n")
        .code(1)
        .stderr_contains([
            "      failed\n      `helper` exited with code 3\n      last lines of the output:\n        | first\n        | oops\n",
        ])
        .run();
    assert!(out.stderr.contains("      | first\n") && out.stderr.contains("      | oops\n"), "{}", out.stderr);
}

#[test]
fn exec_of_a_missing_program_says_where_it_looked() {
    run("  - id: e\n    exec: [no-such-program-here]\n")
        .code(1)
        .stderr_contains(["      program `no-such-program-here` not found in [TMP] or on PATH\n"])
        .run();
}

#[test]
fn exec_expect_accepts_other_exit_codes_and_captures() {
    run("  - id: e\n    exec:\n      program: helper\n      args: [out, version=8378, exit, '2']\n      expect: { exit-code: [0, 2], matches: 'version=(?P<build>\\d+)' }\n  - id: l\n    log: 'build {{ steps.e.captures.build }}'\n")
        .stderr_contains(["      | version=8378\n      done\n", "      build 8378\n"])
        .run();
}

#[test]
fn exec_env_and_stdin_reach_the_program() {
    run("  - id: e\n    exec: { program: helper, args: [env, GREETING, stdin], env: { GREETING: hello }, stdin: \"world\\n\" }\n")
        .stderr_contains(["      | hello\n      | world\n"])
        .run();
}

#[test]
fn exec_decodes_shift_jis_output() {
    // 「成功」 in Shift_JIS
    run("  - id: e\n    exec: { program: helper, args: [bytes, 90AC8CF70D0A], encoding: shift_jis }\n  - id: x\n    expect-output: { contains: 成功 }\n")
        .stderr_contains(["      | 成功\n      done\n", "[2/2] x: expect-output of e: contains \"成功\"\n      unchanged\n"])
        .run();
}

#[test]
fn exec_timeout_kills_the_command() {
    run("  - id: e\n    timeout: 300ms\n    exec: [helper, sleep, '30000']\n")
        .code(1)
        .stderr_contains(["      `helper` timed out after 300ms and was stopped\n"])
        .run();
}

#[cfg(unix)]
#[test]
fn shell_runs_a_script() {
    run("  - id: s\n    shell: 'echo one && echo two | tr a-z A-Z'\n")
        .stderr_contains([
            "[1/1] s: shell (sh) echo one && echo two | tr a-z A-Z\n      | one\n      | TWO\n      done\n",
        ])
        .run();
}

/// cmd reads the script as typed at its prompt: quotes stay, `&&` and `|` chain, `%VAR%` expands.
#[cfg(windows)]
#[test]
fn shell_runs_a_script() {
    // (cmd's `echo` keeps the space before `&&` and `&`.)
    run("  - id: s\n    shell: 'echo one && echo \"two words\" & echo %RUNBOOK_T%| helper stdin'\n  - id: x\n    expect-output: { contains: \"one \\n\\\"two words\\\" \\nthree\" }\n")
        .env("RUNBOOK_T", "three")
        .stderr_contains([
            "[1/2] s: shell (cmd) echo one && echo \"two words\" & echo %RUNBOOK_T%| helper stdin\n      | one \n      | \"two words\" \n      | three\n      done\n",
            "[2/2] x: expect-output of s:",
            "      unchanged\n",
        ])
        .run();
}

#[test]
fn expect_output_failure_shows_what_was_expected_and_seen() {
    run("  - id: e\n    exec: [helper, out, 'Import failed']\n  - id: x\n    expect-output: { contains: has successfully, not-contains: failed }\n")
        .code(1)
        .stderr_contains([
            "[2/2] x: expect-output of e: contains \"has successfully\", does not contain \"failed\"\n      failed\n",
            "      `e`: expected the output to contain \"has successfully\"; expected the output not to contain \"failed\"\n      last lines of the output:\n        | Import failed\n",
        ])
        .run();
}

#[test]
fn expect_output_on_stderr_only() {
    run("  - id: e\n    exec: [helper, out, out, err, err]\n  - id: x\n    expect-output: { stream: stderr, contains: out }\n")
        .code(1)
        .stderr_contains(["expected the output to contain \"out\"\n      last lines of stderr:\n        | err\n"])
        .run();
}

#[test]
fn mkdir_and_its_unchanged_case() {
    let out = run("  - id: m\n    mkdir: a/b/c\n").creates_dir("a/b/c").stderr_contains(["      done\n"]).run();
    out.then().args(["run", "rb.yaml"]).stderr_contains(["      unchanged\n"]).run();
}

#[test]
fn mkdir_over_a_file_fails() {
    run("  - id: m\n    mkdir: f\n")
        .file("f", "")
        .code(1)
        .stderr_contains(["      [TMP]/f exists and is not a folder\n"])
        .run();
}

#[test]
fn remove_files_and_folders() {
    run("  - id: f\n    remove: a.txt\n  - id: d\n    remove: { path: dir, recursive: true }\n  - id: gone\n    remove: nothing-here\n")
        .file("a.txt", "x")
        .file("dir/sub/b", "y")
        .removes("a.txt")
        .removes("dir/sub/b")
        .stderr_contains(["[1/3] f: remove [TMP]/a.txt\n      done\n", "[2/3] d: remove [TMP]/dir (recursive)\n      done\n", "[3/3] gone: remove [TMP]/nothing-here\n      unchanged\n"])
        .run();
}

#[test]
fn remove_of_a_full_folder_needs_recursive() {
    run("  - id: d\n    remove: dir\n")
        .file("dir/a", "1")
        .code(1)
        .stderr_contains([
            "cannot remove [TMP]/dir: the folder is not empty; set `recursive: true` to remove a folder with content",
        ])
        .run();
}

#[test]
fn write_is_atomic_and_idempotent() {
    let out = run("  - id: w\n    write: { path: out.txt, content: \"line {{ 1 + 1 }}\\n\" }\n")
        .creates("out.txt", "line 2\n")
        .stderr_contains(["      done\n"])
        .run();
    out.then().args(["run", "rb.yaml"]).stderr_contains(["      unchanged\n"]).run();
}

#[test]
fn write_over_different_content_needs_overwrite() {
    run("  - id: w\n    write: { path: out.txt, content: new }\n")
        .file("out.txt", "old")
        .code(1)
        .stderr_contains(["[TMP]/out.txt exists with different content; set `overwrite: true` to replace it"])
        .run();
}

#[test]
fn assert_checks_paths_and_expressions() {
    run("  - id: a\n    assert: { exists: f, file: f, dir: d, missing: nope, that: '1 < 2' }\n")
        .file("f", "")
        .mkdir("d")
        .stderr_contains(["      unchanged\n", "Run succeeded"])
        .run();
    run("  - id: a\n    assert: { exists: nope, message: 'the backup is missing' }\n")
        .code(1)
        .stderr_contains(["      failed\n      the backup is missing\n"])
        .run();
    run("  - id: a\n    assert: { dir: f, that: '2 < 1' }\n")
        .file("f", "")
        .code(1)
        .stderr_contains(["      assertion failed: [TMP]/f is not a folder; `2 < 1` is false\n"])
        .run();
}

#[test]
fn fail_stops_the_run_and_when_skips() {
    run("  - id: stop\n    when: 'false'\n    fail: never\n  - id: stop2\n    when: '1 == 1'\n    fail: 'stopped: {{ 6 * 7 }}'\n  - id: after\n    log: not reached\n")
        .code(1)
        .stderr(&format!(
            "{HEAD}[1/3] stop: fail: never\n      skipped\n[2/3] stop2: fail: stopped: 42\n      failed\n      stopped: 42\nRun failed (1 skipped, 1 failed). Fix the cause, then continue with: runbook resume rb.yaml\n"
        ))
        .run();
}

#[test]
fn continue_on_error_goes_on() {
    run("  - id: bad\n    continue-on-error: true\n    exec: [helper, exit, '1']\n  - id: after\n    log: 'status {{ steps.bad.status }}'\n")
        .stderr_contains(["      failed\n", "continue-on-error: the run goes on\n", "      status failed\n", "Run succeeded (1 unchanged, 1 failed)."])
        .run();
}

#[test]
fn retries_try_again() {
    run("  - id: flaky\n    retries: 2\n    retry-delay: 10ms\n    exec: [helper, count, n, '3']\n")
        .creates("n", "3\n")
        .stderr_contains([
            "      retrying (2/3) in 10 ms\n",
            "      retrying (3/3) in 10 ms\n",
            "      done\n",
            "Run succeeded (1 done).",
        ])
        .run();
}

#[test]
fn manual_without_a_terminal_needs_yes() {
    run("  - id: m\n    manual: 'Click [Import existing certificate]'\n")
        .code(1)
        .stderr_contains([
            "      Manual step:\n        | Click [Import existing certificate]\n",
            "there is no terminal to ask on; run it on a terminal, or pass --yes once it is done",
        ])
        .run();
    Test::new()
        .file("rb.yaml", rb("  - id: m\n    manual: 'Click it'\n"))
        .args(["run", "rb.yaml", "--yes"])
        .stderr_contains(["      done\n", "Run succeeded (1 done)."])
        .run();
}

#[test]
fn a_template_error_at_run_time_fails_the_step() {
    run("  - id: e\n    exec: [helper, exit, '0']\n  - id: l\n    log: '{{ steps.e.stdout.nope }}'\n")
        .code(1)
        .stderr_contains(["[2/2] l: log: {{ steps.e.stdout.nope }}\n      failed\n      undefined value (in `{{ steps.e.stdout.nope }}` at rb.yaml:7:10)\n"])
        .run();
}

#[test]
fn json_events_on_stdout() {
    let out = Test::new()
        .file("rb.yaml", rb("  - id: e\n    exec: [helper, out, hi]\n"))
        .args(["run", "rb.yaml", "--format", "json"])
        .any_stdout()
        .run();
    let events: Vec<serde_json::Value> = out.stdout_raw.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["run_started", "step_started", "output", "step_finished", "run_finished"]);
    assert_eq!(events[2]["line"], "hi");
    assert_eq!(events[3]["outcome"], "done");
    assert_eq!(events[4]["outcome"], "succeeded");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::crate_path("schemas/events.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for e in &events {
        assert!(validator.is_valid(e), "{e}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn rename_across_filesystems_copies_verifies_and_removes() {
    // /dev/shm is a tmpfs on Linux: a different filesystem from the test folder's.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else { return };
    let target = shm.path().join("moved.pfx");
    let t = Test::new().file("a.dat", "certificate");
    let target_text = target.display().to_string();
    t.file("rb.yaml", rb(&format!("  - id: r\n    rename: {{ from: a.dat, to: '{target_text}' }}\n")))
        .args(["run", "rb.yaml"])
        .removes("a.dat")
        .stderr_contains(["      done\n", "Run succeeded (1 done).\n"])
        .run();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "certificate");
}

#[test]
fn a_folder_is_never_copied_into_itself() {
    // Refused before anything is written, in the plan and in the run, as `cp` refuses it.
    let steps = "  - id: c\n    copy: { from: d, to: d/inner }\n";
    let t = Test::new().file("rb.yaml", rb(steps)).file("d/x", "1");
    let out = t
        .args(["plan", "rb.yaml"])
        .code(1)
        .stdout_contains(["=> would fail: cannot copy the folder [TMP]/d into itself ([TMP]/d/inner)\n"])
        .run();
    out.then()
        .args(["run", "rb.yaml"])
        .code(1)
        .stderr_contains(["      failed\n      cannot copy the folder [TMP]/d into itself ([TMP]/d/inner)\n"])
        .run();
    // Into an existing subfolder (the copy would land in d/sub/d) is refused the same way.
    run("  - id: c\n    copy: { from: d, to: d/sub }\n")
        .file("d/sub/x", "1")
        .code(1)
        .stderr_contains(["cannot copy the folder [TMP]/d into itself ([TMP]/d/sub/d)\n"])
        .run();
}

#[test]
fn a_file_is_never_copied_onto_itself() {
    run("  - id: c\n    copy: { from: a.dat, to: ./a.dat, overwrite: true }\n")
        .file("a.dat", "x")
        .code(1)
        .stderr_contains(["      failed\n      [TMP]/a.dat would be copied onto itself\n"])
        .run();
}

#[test]
fn removing_a_folder_emptied_by_earlier_steps_needs_no_recursive() {
    let steps = "  - id: out\n    remove: d/x\n  - id: gone\n    remove: d\n";
    let t = Test::new().file("rb.yaml", rb(steps)).file("d/x", "1");
    let out = t.args(["plan", "rb.yaml"]).stdout_contains(["2. gone: remove [TMP]/d\n   => would change\n"]).run();
    out.then()
        .args(["run", "rb.yaml"])
        .removes("d/x")
        .stderr_contains(["[2/2] gone: remove [TMP]/d\n      done\n", "Run succeeded (2 done)."])
        .run();
}
