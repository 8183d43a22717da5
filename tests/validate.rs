use crate::support::{Test, crate_path};

const OK: &str = "runbook: 1\nname: ok\nsteps:\n  - id: hello\n    log: hi\n";

#[test]
fn a_valid_runbook_passes() {
    Test::new().file("ok.yaml", OK).args(["validate", "ok.yaml"]).stderr("ok: ok.yaml is valid\n").run();
}

#[test]
fn several_files_are_checked_together() {
    Test::new()
        .file("a.yaml", OK)
        .file("b.yaml", "runbook: 1\nname: b\nsteps:\n  - id: x\n    lg: hi\n")
        .args(["validate", "a.yaml", "b.yaml"])
        .code(2)
        .stderr_contains(["error: step `x`: unknown key `lg`", "--> b.yaml:5:5", "did you mean `log`?"])
        .run();
}

#[test]
fn quiet_validation_prints_nothing() {
    Test::new().file("ok.yaml", OK).args(["-q", "validate", "ok.yaml"]).run();
}

#[test]
fn a_secret_in_a_shell_script_is_a_warning() {
    let text = "runbook: 1\nname: w\ninputs:\n  pw: { secret: true }\nsteps:\n  - id: s\n    shell: 'echo {{ pw }}'\n";
    Test::new()
        .file("w.yaml", text)
        .args(["validate", "w.yaml"])
        .stderr_contains([
            "warning: the secret input `pw` is rendered into a shell script",
            "w.yaml:7:12",
            "ok: w.yaml is valid",
        ])
        .run();
}

#[test]
fn every_shipped_runbook_and_example_validates() {
    let mut files = Vec::new();
    for e in std::fs::read_dir(crate_path("runbooks/apex-one")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "yaml") {
            files.push(e.path().display().to_string());
        }
    }
    assert_eq!(files.len(), 8, "{files:?}");
    files.sort();
    let n = files.len();
    // The runbooks and their test files (checked as such, against their runbooks).
    Test::new().args(["validate"]).args(files).stderr(&format!("ok: {n} files are valid\n")).run();
}

#[test]
fn usage_errors_exit_2() {
    Test::new().args(["frobnicate"]).code(2).stderr_contains(["error: unrecognized subcommand 'frobnicate'"]).run();
    Test::new()
        .args(["validate"])
        .code(2)
        .stderr_contains(["error: the following required arguments were not provided"])
        .run();
}

#[test]
fn help_and_version_exit_0() {
    let out = Test::new().args(["--version"]).stdout("runbook [VERSION]\n").run();
    let json = Test::new().args(["version", "--format", "json"]).any_stdout().run();
    let build: serde_json::Value = serde_json::from_str(&json.stdout_raw).unwrap();
    assert_eq!(build["version"], env!("CARGO_PKG_VERSION"));
    let (commit, target, date) =
        (build["commit"].as_str().unwrap(), build["target"].as_str().unwrap(), build["build_date"].as_str().unwrap());
    assert_eq!(target, if cfg!(windows) { "x86_64-pc-windows-gnu" } else { "x86_64-unknown-linux-gnu" });
    assert!(regex::Regex::new(r"^\d{4}-\d{2}-\d{2}$").unwrap().is_match(date), "{date}");
    assert_eq!(
        out.stdout_raw,
        format!("runbook {} (commit {commit}, {target}, built {date})\n", env!("CARGO_PKG_VERSION"))
    );
    // The commit is the one this checkout is at (where git can tell).
    if let Ok(head) =
        std::process::Command::new("git").args(["rev-parse", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")).output()
        && head.status.success()
    {
        assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim());
    }
    Test::new().args(["--help"]).stdout_contains(["Usage: runbook", "validate", "plan", "resume"]).run();
}

/// The same runbook as Notepad ("Unicode") and PowerShell 5.1's `>` save it: UTF-16 with a byte
/// order mark; UTF-32 too. Problems are still reported at their line and column.
#[test]
fn utf16_and_utf32_runbooks_with_a_bom_are_read() {
    let text = "runbook: 1\r\nname: wide\r\nsteps:\r\n  - id: note\r\n    log: 証明書をバックアップしました\r\n";
    let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
    let utf32: Vec<u8> =
        [0xFF, 0xFE, 0, 0].into_iter().chain(text.chars().flat_map(|c| (c as u32).to_le_bytes())).collect();
    for (name, bytes) in [("le.yaml", le), ("be.yaml", be), ("utf32.yaml", utf32)] {
        Test::new().file(name, bytes).args(["validate", name]).stderr(&format!("ok: {name} is valid\n")).run();
    }
    let broken = text.replace("log:", "lgo:");
    let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(broken.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    Test::new()
        .file("le.yaml", le)
        .args(["validate", "le.yaml"])
        .code(2)
        .stderr_contains(["error: step `note`: unknown key `lgo`\n --> le.yaml:5:5\n"])
        .run();
    // An input file saved the same way.
    let site = "install_dir: 'D:/Apex One'\r\n";
    let vars: Vec<u8> = [0xFF, 0xFE].into_iter().chain(site.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    Test::new()
        .file(
            "rb.yaml",
            "runbook: 1\nname: s\ninputs:\n  install_dir: {}\nsteps:\n  - id: a\n    log: '{{ install_dir }}'\n",
        )
        .file("site.yaml", vars)
        .args(["show", "rb.yaml", "--vars", "site.yaml", "--explain-inputs"])
        .stdout_contains(["D:/Apex One"])
        .run();
}

#[test]
fn top_level_x_keys_hold_anchors_and_are_ignored() {
    let text = "runbook: 1\nname: anchors\nx-defaults: &slow\n  timeout: 10m\n  retries: 2\nx-note: anything at all\nsteps:\n  - id: a\n    <<: *slow\n    log: one\n  - id: b\n    <<: *slow\n    log: two\n";
    Test::new().file("rb.yaml", text).args(["validate", "rb.yaml"]).stderr("ok: rb.yaml is valid\n").run();
    Test::new()
        .file("rb.yaml", text)
        .args(["plan", "rb.yaml", "-v"])
        .stdout_contains(["1. a: log\n   log: one\n   · timeout: 10m\n   · retries: 2 (1s apart)\n"])
        .run();
    // Elsewhere an unknown key is still an error.
    Test::new()
        .file("rb.yaml", "runbook: 1\nname: x\nsteps:\n  - id: a\n    x-note: no\n    log: one\n")
        .args(["validate", "rb.yaml"])
        .code(2)
        .stderr_contains(["error: step `a`: unknown key `x-note`"])
        .run();
}
