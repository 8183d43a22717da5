//! A distinctive secret goes through every command and every kind of output; no byte the tool
//! writes (terminal, JSON events, JUnit, saved plan, journal, status, error messages) may
//! contain it or any line of it.

use crate::support::{Output, Test, tree};

const LINE1: &str = "Zq9-first-secret-line";
const LINE2: &str = "Zq9-second-secret-line";

fn secret() -> String {
    format!("{LINE1}\n{LINE2}")
}

const RB: &str = r#"runbook: 1
name: secretive
inputs:
  pw: { secret: true, description: a two-line secret }
  user: { default: admin }
vars:
  url: 'https://{{ user }}:{{ pw }}@example.invalid/'
steps:
  - id: echo
    name: 'Use {{ url }}'
    exec: { program: helper, args: [env, PW, echo, 'arg={{ pw }}'], env: { PW: '{{ pw }}' }, idempotent: true }
  - id: check
    expect-output: { contains: '{{ pw }}' }
  - id: shellout
    shell: 'echo "from the shell: $0"'
  - id: note
    log: 'the url is {{ url }}'
  - id: fails
    exec: [helper, err, 'denied for {{ pw }}', exit, '9']
"#;

fn assert_clean(what: &str, text: &str) {
    for needle in [LINE1, LINE2] {
        assert!(!text.contains(needle), "{what} contains a secret line:\n{text}");
    }
}

fn check(out: &Output, what: &str) {
    assert_clean(&format!("{what} stdout"), &out.stdout);
    assert_clean(&format!("{what} stderr"), &out.stderr);
}

#[test]
fn no_secret_in_anything_written() {
    let s = secret();
    let t = Test::new().file("rb.yaml", RB).env("RUNBOOK_INPUT_PW", &s);
    let out = t.args(["validate", "rb.yaml"]).any_stderr().run();
    check(&out, "validate");
    // Each command, the exit code it must end with (the runbook's last step fails), and the
    // files it writes besides the state folder.
    let commands: &[(&[&str], i32, &[&str])] = &[
        (&["show", "rb.yaml", "--explain-inputs"], 0, &[]),
        (&["plan", "rb.yaml"], 0, &[]),
        (
            &["plan", "rb.yaml", "--format", "json", "--out", "saved.plan.json", "--report", "plan.xml"],
            0,
            &["saved.plan.json", "plan.xml"],
        ),
        (&["show-plan", "saved.plan.json"], 0, &[]),
        (&["run", "rb.yaml", "--report", "run.xml"], 1, &["run.xml"]),
        (&["status"], 0, &[]),
        (&["status", "--format", "json"], 0, &[]),
        (&["resume", "rb.yaml", "--format", "json"], 1, &[]),
        (&["run", "rb.yaml", "--fresh", "--format", "json", "--report", "run2.xml"], 1, &["run2.xml"]),
        (&["run", "--plan", "saved.plan.json", "--fresh"], 1, &[]),
    ];
    let mut last = out;
    for (args, code, files) in commands {
        let mut t =
            last.then().args(args.iter().copied()).env("RUNBOOK_INPUT_PW", &s).any_stdout().any_stderr().code(*code);
        for f in *files {
            t = t.creates_some(f);
        }
        let out = t.run();
        check(&out, &args.join(" "));
        last = out;
    }
    // The masked output is still there, so the secret was used and masked, not dropped.
    let all_files = tree(last.path());
    let journal_text: String = all_files
        .iter()
        .filter(|(p, _)| p.ends_with(".jsonl"))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(journal_text.contains("arg=****"), "{journal_text}");
    assert!(journal_text.contains("denied for ****"), "{journal_text}");
    for (path, bytes) in &all_files {
        if path == "rb.yaml" {
            continue;
        }
        assert_clean(path, &String::from_utf8_lossy(bytes));
    }
    assert!(all_files.keys().any(|p| p == "run.xml") && all_files.keys().any(|p| p == "saved.plan.json"));
}

#[test]
fn a_bad_secret_value_is_never_echoed_in_an_error() {
    let rb = "runbook: 1\nname: s\ninputs:\n  pin: { type: int, secret: true }\nsteps:\n  - id: a\n    log: hi\n";
    let out = Test::new()
        .file("rb.yaml", rb)
        .args(["plan", "rb.yaml", "--var", &format!("pin={LINE1}")])
        .code(2)
        .stderr_contains(["error: invalid value **** for input `pin` (from --var): not a whole number"])
        .run();
    check(&out, "plan");
}
