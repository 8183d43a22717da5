//! `runbook test`: test files with fake programs, cases run in sandboxes, and what a failing
//! case shows. The fakes are this binary under another name, on Linux and Windows alike.

use crate::support::{Test, crate_path};

/// A runbook that stops a service with `sc`, checks what it printed, and writes a marker.
const RUNBOOK: &str = r#"runbook: 1
name: service
inputs:
  service:
    default: ApexOneNT
  marker:
    type: path
    default: done.txt
  token:
    secret: true
steps:
  - id: stop
    exec: { program: sc, args: [stop, '{{ service }}', '{{ token }}'], stdin: "yes\n" }
  - id: stopped
    expect-output: { step: stop, contains: STOPPED }
  - id: skipped_when_absent
    when: exists("absent.txt")
    log: never
  - id: mark
    write: { path: '{{ marker }}', content: "stopped {{ service }}\n" }
"#;

fn test_file(cases: &str) -> String {
    format!(
        r#"runbook-test: 1
runbook: service.yaml
fakes:
  sc:
    responses:
      - args: [stop, ApexOneNT, {{ regex: "tok-[0-9]+" }}]
        stdout: "SERVICE_NAME: ApexOneNT\n        STATE              : 3  STOP_PENDING\n        STATE              : 1  STOPPED\n"
      - stderr: "[SC] OpenService FAILED 1060\n"
        exit: 1060
secrets:
  token: tok-4242
cases:
{cases}"#
    )
}

const PASSING: &str = r#"  - name: the service stops and the marker is written
    expect:
      outcome: succeeded
      steps: { stop: done, stopped: unchanged, skipped_when_absent: skipped, mark: done }
      files:
        done.txt: { content: "stopped ApexOneNT\n" }
      calls:
        sc:
          count: 1
          args: [[stop, ApexOneNT, tok-4242]]
          stdin: "yes\n"
          cwd: .
  - name: an unknown service fails at the stop
    inputs: { service: Nope }
    expect:
      outcome: failed
      failed-at: stop
      steps: { stopped: not_run }
"#;

fn suite(cases: &str) -> Test {
    Test::new().file("service.yaml", RUNBOOK).file("service.test.yaml", test_file(cases))
}

/// Durations vary: `(12 ms)` → `(N)`.
fn steady(text: &str) -> String {
    let re = regex::Regex::new(r"\(\d+(\.\d+)? m?s\)").unwrap();
    re.replace_all(text, "(N)").into_owned()
}

#[test]
fn cases_pass_with_a_fake_found_on_path() {
    let out = suite(PASSING).args(["test", "service.test.yaml"]).any_stdout().stderr("2 cases passed\n").run();
    assert!(out.stdout.contains("service.test.yaml (service.yaml): 2 passed, 0 failed"), "{}", out.stdout);
    // Nothing of a case's sandbox is left in the folder the tests ran from.
    assert!(!out.path().join("done.txt").exists());
}

#[test]
fn a_failing_case_shows_expected_against_actual() {
    let cases = r#"  - name: everything expected wrongly
    expect:
      outcome: failed
      steps: { stop: failed, mark: skipped }
      files:
        done.txt: { content: "started\n" }
        other.txt: { exists: true }
      calls:
        sc:
          count: 2
          args: [[start, ApexOneNT, tok-4242]]
"#;
    let out =
        suite(cases).args(["test", "service.test.yaml"]).code(1).any_stdout().stderr("1 of 1 case failed\n").run();
    insta::assert_snapshot!(steady(&out.stdout));
}

#[test]
fn reports_as_junit_and_json_and_runs_only_the_filtered_cases() {
    let out = suite(PASSING)
        .args(["test", ".", "--report", "report.xml", "--format", "json", "--filter", "unknown service"])
        .any_stdout()
        .any_stderr()
        .creates_some("report.xml")
        .run();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["passed"], 1);
    assert_eq!(doc["files"][0]["cases"].as_array().unwrap().len(), 1);
    assert_eq!(doc["files"][0]["cases"][0]["name"], "an unknown service fails at the stop");
    let xml = std::fs::read_to_string(out.path().join("report.xml")).unwrap();
    let parsed = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = parsed.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 1);
    assert!(cases[0].attribute("name").unwrap().starts_with("an unknown service fails at the stop"));
}

#[test]
fn coverage_lists_what_the_cases_exercised_and_a_minimum_is_enforced() {
    let out = suite(PASSING).args(["test", "--coverage"]).any_stdout().any_stderr().run();
    for want in [
        "Coverage\n  service: ",
        "[x] step stop run",
        "[x] step stop failed",
        "[x] when of skipped_when_absent false",
        "[ ] when of skipped_when_absent true",
        "[x] expect stopped passing",
        "[ ] expect stopped failing",
        "[ ] undo of mark",
    ] {
        assert!(out.stdout.contains(want), "{want}:\n{}", out.stdout);
    }
    let out = suite(PASSING).args(["test", "--min-coverage", "95"]).code(1).any_stdout().any_stderr().run();
    assert!(out.stderr.contains("coverage is below 95%"), "{}", out.stderr);
}

#[test]
fn a_fake_in_the_cd_folder_answers_and_is_called_there() {
    let runbook = "runbook: 1\nname: tool\nsteps:\n  - id: into\n    cd: vendor/bin\n  - id: run\n    exec: { program: vendor-tool, args: [--version] }\n";
    let tests = r#"runbook-test: 1
runbook: tool.yaml
files:
  vendor/bin/: {}
fakes:
  vendor-tool:
    in: vendor/bin
    responses:
      - args: [--version]
        once: true
        stdout: "first\n"
      - stdout: "again\n"
cases:
  - name: the tool in its own folder
    expect:
      outcome: succeeded
      output: { run: [first] }
      calls:
        vendor-tool: { count: 1, cwd: vendor/bin }
"#;
    Test::new()
        .file("tool.yaml", runbook)
        .file("tool.test.yaml", tests)
        .args(["test", "tool.test.yaml"])
        .any_stdout()
        .stderr("1 case passed\n")
        .run();
}

#[test]
fn rollback_must_bring_back_the_starting_tree() {
    let runbook = "runbook: 1\nname: rb\nsteps:\n  - id: copy\n    copy: { from: a.txt, to: b.txt }\n  - id: note\n    exec: { program: note-tool }\n  - id: boom\n    fail: stop here\n";
    let tests = r#"runbook-test: 1
runbook: rb.yaml
files:
  a.txt: original
fakes:
  note-tool:
    responses:
      - writes: { left-behind.txt: "a command's file that no undo removes" }
cases:
  - name: the rollback leaves a file behind
    rollback: true
    expect:
      outcome: failed
      failed-at: boom
"#;
    let out = Test::new()
        .file("rb.yaml", runbook)
        .file("rb.test.yaml", tests)
        .args(["test"])
        .code(1)
        .any_stdout()
        .any_stderr()
        .run();
    assert!(
        out.stdout.contains("after rollback the tree is not the start (- start, + now):\n")
            && out.stdout.contains("+ left-behind.txt"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("b.txt"), "the copy was undone:\n{}", out.stdout);
}

#[test]
fn an_input_that_reaches_outside_the_sandbox_fails_the_case_clearly() {
    let runbook = "runbook: 1\nname: rb\ninputs:\n  target:\n    type: path\n    default: /srv/apex\nsteps:\n  - id: make\n    mkdir: '{{ target }}'\n";
    let tests = "runbook-test: 1\nrunbook: rb.yaml\ncases:\n  - name: default target\n    expect: { outcome: succeeded }\n  - name: given a path above the sandbox\n    inputs: { target: ../../escape }\n    expect: { outcome: succeeded }\n";
    let out = Test::new()
        .file("rb.yaml", runbook)
        .file("rb.test.yaml", tests)
        .args(["test"])
        .code(1)
        .any_stdout()
        .any_stderr()
        .run();
    assert!(
        out.stdout.contains("input `target` is `/srv/apex`, outside the sandbox: give it in the test"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("input `target` is `../../escape`, outside the sandbox"), "{}", out.stdout);
}

#[test]
fn a_test_file_with_mistakes_is_reported_at_each_place() {
    let tests = r#"runbook-test: 1
runbook: service.yaml
cases:
  - name: typos
    inputs: { servise: x }
    expct: {}
  - name: wrong step
    expect:
      steps: { stpo: done }
"#;
    let t = Test::new().file("service.yaml", RUNBOOK).file("bad.test.yaml", tests);
    let out = t.again().args(["validate", "bad.test.yaml"]).code(2).any_stderr().run();
    insta::assert_snapshot!(out.stderr);
    // `runbook test` refuses it the same way, before running anything.
    let out = t.again().args(["test", "bad.test.yaml"]).code(2).any_stderr().run();
    assert!(out.stderr.contains("unknown key `expct`"), "{}", out.stderr);
}

#[test]
fn the_test_file_schema_is_generated_and_checked_in() {
    let checked_in = std::fs::read_to_string(crate_path("schemas/runbook-test.schema.json")).unwrap();
    let out = Test::new().args(["schema", "test"]).any_stdout().run();
    assert!(
        out.stdout_raw == checked_in,
        "`runbook schema test` differs from schemas/runbook-test.schema.json: regenerate it"
    );
    // And every shipped test file satisfies it.
    let schema: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for entry in std::fs::read_dir(crate_path("runbooks/apex-one")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".test.yaml") {
            let doc: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
}

/// The shipped runbooks' tests pass, and each catches realistic one-line mistakes.
#[test]
fn the_shipped_tests_pass_and_catch_realistic_mistakes() {
    let mut t = Test::new();
    for entry in std::fs::read_dir(crate_path("runbooks/apex-one")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        t = t.file(&format!("apex-one/{name}"), std::fs::read(&path).unwrap());
    }
    t.again().args(["test", "apex-one"]).any_stdout().stderr_contains(["19 cases passed"]).run();
    // (file, what the author wrote, the mistake)
    let all = [
        ("restore-auth-cert.yaml", "args: [-ine,", "args: [-in,"),
        (
            "restore-auth-cert.yaml",
            r#"pfx: '{{ path_join(staging_dir, "OfficeScanAuth.pfx") }}'"#,
            r#"pfx: '{{ path_join(staging_dir, "OfficeScanAuth.pxf") }}'"#,
        ),
        ("restore-auth-cert.yaml", r#""Utility", "CertificateManager") }}'"#, r#""Utility") }}'"#),
        (
            "restore-auth-cert.yaml",
            "^Certificate Authentication Manager has successfully'",
            "^Certificate Authentication Manager has succeeded'",
        ),
        ("restore-auth-cert.yaml", "when: password_unknown or not password", "when: password_unknown"),
        (
            "backup-auth-cert.yaml",
            r#"elif is_file(path_join(fresh_install_dir"#,
            r#"elif is_file(path_join(upgraded_install_dir"#,
        ),
        (
            "backup-auth-cert.yaml",
            r#"elif is_file(path_join(upgraded_install_dir, "AuthCertBackup""#,
            r#"elif is_file(path_join(upgraded_install_dir, "AuthCertBackups""#,
        ),
        (
            "backup-auth-cert.yaml",
            r#"content: "{{ steps.copy_backup.captures.sha256 }}  OfficeScanAuth.dat\n""#,
            r#"content: "{{ steps.copy_backup.captures.sha256 }} OfficeScanAuth.dat\n""#,
        ),
        ("backup-auth-cert.yaml", "    when: not detected_dir", "    when: detected_dir == 'none'"),
        ("export-auth-cert-legacy.yaml", "when: build >= 8378", "when: build > 8378"),
        ("export-auth-cert-legacy.yaml", "args: [-b,", "args: [-e,"),
        ("prepare-install-import.yaml", r#"with_extension("pfx")"#, r#"with_extension("pfs")"#),
        ("restore-auth-cert.yaml", "    default: 'C:/'\n", "    default: 'D:/'\n"),
        (
            "backup-auth-cert.yaml",
            "default: 'C:/Program Files (x86)/Trend Micro/Apex One'",
            "default: 'C:/Program Files/Trend Micro/Apex One'",
        ),
        ("export-auth-cert-legacy.yaml", "default: CertificateManager.exe", "default: CertificateManger.exe"),
    ];
    // Under Wine every process start is slow: a few of them there, all of them on Linux.
    let mutants: Vec<_> = if cfg!(windows) { all.iter().step_by(6).collect() } else { all.iter().collect() };
    for (file, from, to) in mutants {
        let path = t.path().join("apex-one").join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        assert_eq!(original.matches(from).count(), 1, "{file}: `{from}` must be there once");
        std::fs::write(&path, original.replacen(from, to, 1)).unwrap();
        let out = t.again().args(["test", "apex-one"]).code_any().any_stdout().any_stderr().run();
        assert_eq!(out.code, 1, "the tests did not catch `{to}` in {file}:\n{}\n{}", out.stdout, out.stderr);
        std::fs::write(&path, original).unwrap();
    }
}
