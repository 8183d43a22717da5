//! Windows semantics: program lookup through PATHEXT in the `cd` folder, paths written either way
//! and printed one way, case-insensitive names, long paths, wildcards in FILE arguments, and the
//! shipped restore on a simulated server driven the way an operator at a Windows prompt would.
//! What exists on both systems is tested on both.

use crate::support::{Test, helper};

fn rb(steps: &str) -> String {
    format!("runbook: 1\nname: w\nsteps:\n{steps}")
}

/// A copy of the helper program under another name (`name.exe` on Windows).
fn tool(t: Test, path: &str) -> Test {
    let target = t.path().join(format!("{path}{}", std::env::consts::EXE_SUFFIX));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(helper("helper"), &target).unwrap();
    t
}

#[test]
fn a_bare_tool_name_is_found_in_the_cd_folder() {
    // On Windows `mytool` is found as `mytool.exe` through PATHEXT, as at a command prompt.
    tool(Test::new(), "tool/mytool")
        .file("rb.yaml", rb("  - id: in\n    cd: tool\n  - id: e\n    exec: [mytool, out, found]\n"))
        .args(["run", "rb.yaml"])
        .stderr_contains(["[2/2] e: exec mytool out found\n      | found\n      done\n"])
        .run();
}

#[test]
fn a_bare_tool_name_is_looked_for_before_path_is_searched() {
    // `helper` is on PATH too (the tests put it first there); the copy in the `cd` folder wins,
    // and says which copy it is. From another folder, the one on PATH answers.
    let exe = std::env::consts::EXE_SUFFIX;
    tool(Test::new(), "tool/helper")
        .file(
            "rb.yaml",
            rb("  - id: in\n    cd: tool\n  - id: e\n    exec: [helper, whoami]\n  - id: out\n    cd: ..\n  - id: f\n    exec: [helper, whoami]\n"),
        )
        .args(["run", "rb.yaml"])
        .stderr_contains([
            format!("[2/4] e: exec helper whoami\n      | [TMP]/tool/helper{exe}\n      done\n"),
            format!("[4/4] f: exec helper whoami\n      | [HELPERS]/helper{exe}\n      done\n"),
        ])
        .run();
}

#[cfg(windows)]
#[test]
fn pathext_decides_which_extensions_are_tried() {
    tool(Test::new(), "tool/mytool")
        .file("rb.yaml", rb("  - id: in\n    cd: tool\n  - id: e\n    exec: [mytool, out, found]\n"))
        .args(["run", "rb.yaml"])
        .env("PATHEXT", ".BAT;.CMD")
        .code(1)
        .stderr_contains(["      program `mytool` not found in [TMP]/tool or on PATH\n"])
        .run();
}

#[cfg(windows)]
#[test]
fn a_batch_file_runs_through_cmd_with_its_arguments_quoted() {
    Test::new()
        .file("tool/greet.cmd", "@echo [%1] [%2]\r\n")
        .file("rb.yaml", rb("  - id: in\n    cd: tool\n  - id: e\n    exec: [greet, 'two words', 'x&y']\n"))
        .args(["run", "rb.yaml"])
        .stderr_contains(["      | [\"two words\"] [\"x&y\"]\n      done\n"])
        .run();
}

#[cfg(windows)]
#[test]
fn backslash_paths_from_inputs_work_and_print_with_one_separator() {
    let text = "runbook: 1\nname: w\ninputs:\n  src: { type: path }\n  dir: { type: path }\nsteps:\n  - id: c\n    copy: { from: '{{ src }}', to: '{{ dir }}' }\n  - id: r\n    rename: { from: '{{ path_join(dir, \"a.dat\") }}', to: '{{ dir }}/a.pfx' }\n";
    let out = Test::new()
        .file("rb.yaml", text)
        .file("in/a.dat", "certificate")
        .mkdir("out/stage")
        .args(["run", "rb.yaml", "--var", r"src=in\a.dat", "--var", r"dir=out\stage"])
        .creates("out/stage/a.pfx", "certificate")
        .stderr_contains(["      done\n", "Run succeeded (2 done).\n"])
        .run();
    // The raw output has one separator throughout: no `/` beside a `\`.
    assert!(out.stderr.contains("rename [TMP]/out/stage/a.dat → [TMP]/out/stage/a.pfx"), "{}", out.stderr);
}

#[cfg(windows)]
#[test]
fn a_plan_knows_names_differ_only_in_case_on_windows() {
    let steps = "  - id: w\n    write: { path: sub/Report.TXT, content: x }\n  - id: a\n    assert: { file: 'SUB\\report.txt' }\n";
    Test::new()
        .file("rb.yaml", rb(steps))
        .mkdir("sub")
        .args(["plan", "rb.yaml"])
        .stdout_contains(["2. a: assert file [TMP]/SUB/report.txt\n   => unchanged\n"])
        .run();
}

#[test]
fn paths_longer_than_260_characters_work() {
    let deep: String = (0..12).map(|i| format!("folder-{i:02}-with-a-long-name-")).collect::<Vec<_>>().join("/");
    assert!(deep.len() > 300);
    let steps = format!(
        "  - id: m\n    mkdir: '{deep}'\n  - id: w\n    write: {{ path: '{deep}/a.dat', content: x }}\n  - id: c\n    copy: {{ from: '{deep}/a.dat', to: '{deep}/b.dat' }}\n  - id: r\n    rename: {{ from: '{deep}/b.dat', to: '{deep}/c.dat' }}\n"
    );
    let out = Test::new()
        .file("rb.yaml", rb(&steps))
        .args(["run", "rb.yaml"])
        .any_files()
        .stderr_contains(["Run succeeded (4 done).\n"])
        .run();
    let base = out.path().join(&deep);
    assert_eq!(std::fs::read_to_string(base.join("a.dat")).unwrap(), "x");
    assert_eq!(std::fs::read_to_string(base.join("c.dat")).unwrap(), "x");
    assert!(!base.join("b.dat").exists());
}

/// The README's first Windows command, typed at cmd: cmd hands `*` over as typed, and runbook
/// expands it itself.
#[cfg(windows)]
#[test]
fn the_readmes_wildcard_validate_works_at_a_command_prompt() {
    let out = crate::support::output(
        &mut std::process::Command::new("cmd")
            .args(["/D", "/C", r"runbook validate runbooks\apex-one\*.yaml"])
            .current_dir(crate::support::crate_path(""))
            .env("PATH", bin_dir_on_path()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The four runbooks and their test files.
    assert_eq!(stderr, "ok: 8 files are valid\n");
}

#[cfg(windows)]
fn bin_dir_on_path() -> std::ffi::OsString {
    let mut dirs = vec![crate::support::bin().parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

#[cfg(windows)]
#[test]
fn a_wildcard_that_matches_nothing_is_an_error_naming_it() {
    Test::new()
        .args(["validate", r"runbooks\*.yml"])
        .code(2)
        .stderr_contains(["error: no file matches `runbooks\\*.yml`\n"])
        .run();
    Test::new()
        .file("a.yaml", rb("  - id: l\n    log: hi\n"))
        .file("b.yaml", rb("  - id: l\n    log: hi\n"))
        .args(["plan", "*.yaml"])
        .code(2)
        .stderr_contains(["error: `*.yaml` matches 2 files: a.yaml, b.yaml\n"])
        .run();
}

/// The restore as an operator runs it on the server: inputs with backslashes, the tool named
/// without `.exe` (found through PATHEXT in its folder), a cmd step whose quotes and `&&` are
/// checked by expect-output, then copy, rename, exec and expect-output.
#[cfg(windows)]
#[test]
fn the_restore_as_typed_at_a_windows_prompt() {
    let t = Test::new().file(r"backup\OfficeScanAuth.dat", "SIMULATED-APEX-ONE-AUTH-CERT fresh\n");
    let out = crate::support::output(&mut std::process::Command::new(helper("simulated-server")).args([
        "make",
        t.path().join("srv").to_str().unwrap(),
        "fresh",
        "pw-1",
        "8378",
    ]));
    let install = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let steps = r#"  - id: prompt
    shell: 'echo "Apex One" && echo ready'
  - id: prompt_ok
    expect-output: { contains: "\"Apex One\" \nready" }
"#;
    let book = std::fs::read_to_string(crate::support::crate_path("runbooks/apex-one/restore-auth-cert.yaml")).unwrap();
    let book = book.replace("steps:\n", &format!("steps:\n{steps}"));
    let staging = t.path().join(r"srv\C").display().to_string();
    t.file("restore.yaml", book)
        .args(["run", "restore.yaml", "--var", r"backup_file=backup\OfficeScanAuth.dat"])
        .args(["--var", &format!("install_dir={install}"), "--var", &format!("staging_dir={staging}")])
        .args(["--var", "cert_manager=CertificateManager"])
        .env("RUNBOOK_INPUT_PASSWORD", "pw-1")
        .creates("srv/C/OfficeScanAuth.pfx", "SIMULATED-APEX-ONE-AUTH-CERT fresh\n")
        .ignore("srv/Program Files (x86)")
        .stderr_contains([
            "[1/8] prompt: shell (cmd) echo \"Apex One\" && echo ready\n      | \"Apex One\" \n      | ready\n      done\n",
            "[2/8] prompt_ok:",
            "      unchanged\n",
            "[7/8] import: Import the certificate\n      | Certificate Authentication Manager has successfully imported the certificate.\n      done\n",
            "Run succeeded (4 done, 3 unchanged, 1 skipped).\n",
        ])
        .run();
}

/// Paths in the `\\?\` form (the long-path form Windows tools print) and UNC-style `\\` roots are
/// absolute: written as given, never joined to the `cd` folder.
#[cfg(windows)]
#[test]
fn verbatim_paths_are_absolute() {
    let t = Test::new().file("a.dat", "x");
    let verbatim = format!(r"\\?\{}", std::path::absolute(t.path()).unwrap().display());
    let steps = format!(
        "  - id: c\n    copy: {{ from: a.dat, to: '{verbatim}\\b.dat' }}\n  - id: a\n    assert: {{ file: '{verbatim}\\b.dat' }}\n"
    );
    t.file("rb.yaml", rb(&steps))
        .args(["run", "rb.yaml"])
        .creates("b.dat", "x")
        .stderr_contains(["Run succeeded (1 done, 1 unchanged).\n"])
        .run();
}
