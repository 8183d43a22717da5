//! What automation (the Ansible collection, CI) relies on: secrets on standard input, continuing
//! an unfinished run with the inputs given now, and not running again what already succeeded.

use crate::support::{Output, Test, crate_path};

const RB: &str = r#"runbook: 1
name: site
inputs:
  target: {}
  token: { secret: true }
  source: { default: in.txt }
steps:
  - id: dir
    mkdir: '{{ target }}'
  - id: stage
    copy: { from: '{{ source }}', to: '{{ target }}/staged.txt' }
  - id: use
    exec: [helper, echo, 'using {{ token }}']
"#;

/// A run whose copy fails (its source is missing) after the folder step was done.
fn failed_at_the_copy(t: Test) -> Output {
    t.file("rb.yaml", RB)
        .args(["run", "rb.yaml", "--var", "target=out", "--var", "source=missing.txt"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .code(1)
        .any_files()
        .any_stderr()
        .run()
}

#[test]
fn secrets_come_from_standard_input_and_never_show() {
    let out = Test::new()
        .file("rb.yaml", RB)
        .file("in.txt", "payload")
        .args(["run", "rb.yaml", "--var", "target=out", "--secrets-from", "-", "--format", "json"])
        .stdin(r#"{"token": "St4ndard-1nput-s3cret"}"#)
        .creates("out/staged.txt", "payload")
        .any_files()
        .any_stdout()
        .run();
    assert!(out.stdout.contains("\"line\":\"using ****\""), "{}", out.stdout);
    assert!(!out.stdout.contains("St4ndard-1nput-s3cret"));
    for journal in std::fs::read_dir(out.path().join(".runbook/runs/site")).unwrap() {
        assert!(!std::fs::read_to_string(journal.unwrap().path()).unwrap().contains("St4ndard-1nput-s3cret"));
    }
    // YAML too, and from a file; a value that does not fit is refused without showing it.
    Test::new()
        .file("rb.yaml", RB)
        .file("in.txt", "payload")
        .args(["plan", "rb.yaml", "--var", "target=out", "--secrets-from", "-"])
        .stdin("token: Yaml-s3cret\n")
        .stdout_contains(["3. use: exec helper echo \"using ****\"\n"])
        .run();
    let out = Test::new()
        .file("rb.yaml", RB.replace("token: { secret: true }", "token: { secret: true, pattern: '[a-z]+' }"))
        .file("secrets.yaml", "token: N0t-Lower-Case\n")
        .args(["plan", "rb.yaml", "--var", "target=out", "--secrets-from", "secrets.yaml"])
        .code(2)
        .stderr_contains(["error: invalid value **** for input `token` (from --secrets-from secrets.yaml)"])
        .run();
    assert!(!out.stderr.contains("N0t-Lower-Case"), "{}", out.stderr);
}

#[test]
fn run_continue_resumes_with_fixed_inputs_when_what_ran_renders_the_same() {
    // The site's source is wrong: the copy fails after the folder was made.
    let first = failed_at_the_copy(Test::new().file("good.txt", "good"));
    // Fixed and run again: it continues (the folder step renders the same), nothing repeated.
    first
        .then()
        .args(["run", "rb.yaml", "--continue", "--var", "target=out", "--var", "source=good.txt"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .creates("out/staged.txt", "good")
        .any_files()
        .stderr_contains([
            "note: continuing with other inputs; the 1 step that ran renders the same\n",
            "Resuming site (run [RUN],",
            "[2/3] stage:",
            "Run succeeded (2 done).\n",
        ])
        .run();
    let status = first.then().args(["status", "--format", "json"]).any_files().any_stdout().run();
    let runs: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "one run, continued");
    assert_eq!(runs[0]["inputs"]["source"], "good.txt", "the journal has the inputs it finished with");
}

#[test]
fn run_continue_refuses_inputs_that_change_what_already_ran() {
    let first = failed_at_the_copy(Test::new());
    // The record of the failed run lists what ran, how long it took, and what was never reached.
    let status = first.then().args(["status", "--format", "json"]).any_files().any_stdout().run();
    let runs: serde_json::Value = serde_json::from_str(&status.stdout_raw).unwrap();
    assert_eq!(runs[0]["steps"][0]["state"], "done");
    assert!(runs[0]["steps"][0]["duration_ms"].is_u64());
    assert_eq!(runs[0]["steps"][1]["state"], "failed");
    assert_eq!(runs[0]["not_reached"], serde_json::json!(["use"]));
    first
        .then()
        .args(["run", "rb.yaml", "--continue", "--var", "target=elsewhere"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .code(3)
        .any_files()
        .stderr_contains([
            "error: with the inputs given now, steps that already ran would render differently: dir\n",
            "  - step 1 (dir) renders differently:\n",
            "      then:  mkdir [TMP]/out\n",
            "      now:   mkdir [TMP]/elsewhere\n",
            "hint: continue with the run's inputs, or start over with `runbook run rb.yaml --fresh`",
        ])
        .run();
}

#[test]
fn skip_if_succeeded_does_not_run_again_what_already_succeeded() {
    let first = Test::new()
        .file("rb.yaml", RB)
        .file("in.txt", "payload")
        .args(["run", "rb.yaml", "--var", "target=out", "--skip-if-succeeded"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .creates("out/staged.txt", "payload")
        .any_files()
        .any_stderr()
        .run();
    let again = first
        .then()
        .args(["run", "rb.yaml", "--var", "target=out", "--skip-if-succeeded", "--format", "json"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .any_files()
        .any_stdout()
        .run();
    let event: serde_json::Value = serde_json::from_str(again.stdout.trim()).unwrap();
    assert_eq!(event["event"], "already_done");
    assert_eq!(event["steps"].as_array().unwrap().len(), 3);
    assert_eq!(event["steps"][2]["stdout_tail"], "using ****");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate_path("schemas/events.schema.json")).unwrap()).unwrap();
    assert!(jsonschema::validator_for(&schema).unwrap().is_valid(&event), "{event}");
    // Nothing to predict either, for a check before running.
    let check = first
        .then()
        .args(["run", "rb.yaml", "--var", "target=out", "--dry-run", "--skip-if-succeeded", "--format", "json"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .any_files()
        .any_stdout()
        .run();
    assert_eq!(serde_json::from_str::<serde_json::Value>(check.stdout_raw.trim()).unwrap()["event"], "already_done");
    // Other inputs: a new run.
    first
        .then()
        .args(["run", "rb.yaml", "--var", "target=other", "--skip-if-succeeded"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .creates("other/staged.txt", "payload")
        .any_files()
        .stderr_contains(["Running site"])
        .run();
}

#[test]
fn run_continue_refuses_a_runbook_changed_since_the_run() {
    let first = failed_at_the_copy(Test::new());
    first
        .then()
        .file("rb.yaml", RB.replace("mkdir: '{{ target }}'", "mkdir: '{{ target }}/sub'"))
        .args(["run", "rb.yaml", "--continue", "--var", "target=out", "--var", "source=missing.txt"])
        .env("RUNBOOK_INPUT_TOKEN", "Tok3n-value")
        .code(3)
        .any_files()
        .stderr_contains([
            "error: the runbook rb.yaml changed since run [RUN] started (rb.yaml changed); steps that differ: dir\n",
            "      then:  mkdir [TMP]/out\n",
            "      now:   mkdir [TMP]/out/sub\n",
            "Start over with `runbook run rb.yaml --fresh`",
        ])
        .run();
}
