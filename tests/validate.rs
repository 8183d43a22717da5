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
    assert_eq!(files.len(), 4, "{files:?}");
    files.sort();
    let n = files.len();
    Test::new().args(["validate"]).args(files).stderr(&format!("ok: {n} runbooks are valid\n")).run();
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
    Test::new().args(["--version"]).stdout(&format!("runbook {}\n", env!("CARGO_PKG_VERSION"))).run();
    Test::new().args(["--help"]).stdout_contains(["Usage: runbook", "validate", "plan", "resume"]).run();
}
