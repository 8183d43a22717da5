//! Change management: reviewed plans (`plan --out`, `show-plan`, `run --plan`), JUnit reports,
//! `include`, and the CI examples.

use crate::support::{Test, crate_path};

const MAIN: &str = r#"runbook: 1
name: main
inputs:
  target: { default: out }
  token: { secret: true }
steps:
  - id: dir
    mkdir: '{{ target }}'
  - id: sub
    include:
      runbook: lib/write-note.yaml
      with: { path: '{{ target }}/note.txt', text: 'hello' }
  - id: show
    exec: [helper, cat, '{{ target }}/note.txt']
  - id: after
    log: 'included said {{ steps.sub.write.status }} and {{ steps.show.stdout | trim }}'
"#;

const LIB: &str = r#"runbook: 1
name: write-note
inputs:
  path: {}
  text: { default: nothing }
steps:
  - id: write
    write: { path: '{{ path }}', content: '{{ text }}' }
  - id: check
    assert: { file: '{{ path }}' }
"#;

fn project() -> Test {
    Test::new().file("main.yaml", MAIN).file("lib/write-note.yaml", LIB).env("RUNBOOK_INPUT_TOKEN", "t0k3n-s3cret")
}

#[test]
fn include_runs_the_other_runbooks_steps_inline() {
    let out = project()
        .args(["run", "main.yaml"])
        .creates("out/note.txt", "hello")
        .stderr_contains([
            "[1/6] dir: mkdir [TMP]/out\n      done\n",
            "[2/6] sub: include write-note\n      unchanged\n",
            "[3/6] sub.write: write [TMP]/out/note.txt (5 bytes)\n      done\n",
            "[4/6] sub.check: assert file [TMP]/out/note.txt\n      unchanged\n",
            "      included said done and hello\n",
        ])
        .run();
    let journal = std::fs::read_dir(out.path().join(".runbook/runs/main")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(text.contains("\"type\":\"step_finished\",\"step\":\"sub.write\""), "{text}");
    assert!(text.contains("lib/write-note.yaml"), "the run records every file it loads");
}

#[test]
fn include_with_is_checked_against_the_included_inputs() {
    Test::new()
        .file(
            "main.yaml",
            "runbook: 1\nname: m\nsteps:\n  - id: s\n    include: { runbook: lib.yaml, with: { pth: x } }\n",
        )
        .file("lib.yaml", LIB.replace("write-note", "lib"))
        .args(["validate", "main.yaml"])
        .code(2)
        .stderr_contains([
            "error: `lib` has no input `pth`",
            "did you mean `path`?",
            "error: the included runbook `lib` needs input `path`",
        ])
        .run();
}

#[test]
fn include_cycles_are_caught_with_the_chain() {
    Test::new()
        .file("a.yaml", "runbook: 1\nname: a\nsteps:\n  - id: b\n    include: { runbook: b.yaml }\n")
        .file("b.yaml", "runbook: 1\nname: b\nsteps:\n  - id: a\n    include: { runbook: a.yaml }\n")
        .args(["validate", "a.yaml"])
        .code(2)
        .stderr_contains(["error: include cycle: a.yaml → b.yaml → a.yaml\n", "--> b.yaml:5:25"])
        .run();
}

#[test]
fn a_reviewed_plan_runs_when_nothing_changed() {
    let out = project()
        .args(["plan", "main.yaml", "--out", "change.plan.json"])
        .creates_some("change.plan.json")
        .any_stdout()
        .stderr("plan saved to change.plan.json\n")
        .run();
    let plan = std::fs::read_to_string(out.path().join("change.plan.json")).unwrap();
    assert!(!plan.contains("t0k3n-s3cret"));
    let doc: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(doc["secret_inputs"], serde_json::json!(["token"]));
    assert_eq!(doc["files"].as_array().unwrap().len(), 2, "the plan covers the included file");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate_path("schemas/plan.schema.json")).unwrap()).unwrap();
    assert!(jsonschema::validator_for(&schema).unwrap().is_valid(&doc));
    out.then()
        .args(["show-plan", "change.plan.json"])
        .stdout_contains([
            "Plan for main (6 steps)\n",
            "3. sub.write: write [TMP]/out/note.txt (5 bytes)\n",
            "  token = **** (secret: asked for again when run)\n",
        ])
        .run();
    out.then()
        .args(["run", "--plan", "change.plan.json"])
        .env("RUNBOOK_INPUT_TOKEN", "t0k3n-s3cret")
        .creates("out/note.txt", "hello")
        .stderr_contains(["the runbook renders to the reviewed plan change.plan.json (6 steps)\n", "Run succeeded"])
        .run();
}

fn reviewed() -> crate::support::Output {
    project()
        .args(["plan", "main.yaml", "--out", "change.plan.json"])
        .creates_some("change.plan.json")
        .any_stdout()
        .any_stderr()
        .run()
}

#[test]
fn an_edited_runbook_refuses_the_reviewed_plan() {
    let out = reviewed();
    std::fs::write(out.path().join("main.yaml"), MAIN.replace("text: 'hello'", "text: 'bye'")).unwrap();
    out.then()
        .args(["run", "--plan", "change.plan.json"])
        .env("RUNBOOK_INPUT_TOKEN", "t0k3n-s3cret")
        .code(3)
        .stderr(concat!(
            "error: the runbook no longer renders to the reviewed plan change.plan.json:\n",
            "  - main.yaml changed since the review\n",
            "  - step 2 (sub) renders differently:\n",
            "      reviewed:  with: text=hello\n",
            "      now:       with: text=bye\n",
            "  - step 3 (sub.write) renders differently:\n",
            "      reviewed:  write [TMP]/out/note.txt (5 bytes)\n",
            "                 content:\n",
            "                 | hello\n",
            "      now:       write [TMP]/out/note.txt (3 bytes)\n",
            "                 content:\n",
            "                 | bye\n",
            " = hint: review a new plan before running: `runbook plan main.yaml --var target=out --out change.plan.json`\n",
            "\n",
            "1 error\n",
        ))
        .run();
}

#[test]
fn a_change_that_renders_every_step_the_same_still_refuses_the_reviewed_plan() {
    let out = reviewed();
    std::fs::write(out.path().join("main.yaml"), format!("# reviewed by the change board\n{MAIN}")).unwrap();
    out.then()
        .args(["run", "--plan", "change.plan.json"])
        .env("RUNBOOK_INPUT_TOKEN", "t0k3n-s3cret")
        .code(3)
        .stderr(concat!(
            "error: the runbook no longer renders to the reviewed plan change.plan.json:\n",
            "  - main.yaml changed since the review\n",
            "  text changed; every step renders as reviewed\n",
            " = hint: review a new plan before running: `runbook plan main.yaml --var target=out --out change.plan.json`\n",
            "\n",
            "1 error\n",
        ))
        .run();
}

#[test]
fn an_edited_included_file_refuses_the_reviewed_plan() {
    let out = reviewed();
    std::fs::write(
        out.path().join("lib/write-note.yaml"),
        LIB.replace("assert: { file: '{{ path }}' }", "assert: { exists: '{{ path }}' }"),
    )
    .unwrap();
    out.then()
        .args(["run", "--plan", "change.plan.json"])
        .env("RUNBOOK_INPUT_TOKEN", "t0k3n-s3cret")
        .code(3)
        .stderr_contains([
            "  - lib/write-note.yaml changed since the review\n",
            "  - step 4 (sub.check) renders differently:\n",
            "      reviewed:  assert file [TMP]/out/note.txt\n",
            "      now:       assert exists [TMP]/out/note.txt\n",
        ])
        .run();
}

#[test]
fn a_changed_input_refuses_the_reviewed_plan() {
    let out = reviewed();
    out.then()
        .args(["run", "--plan", "change.plan.json"])
        .env("RUNBOOK_INPUT_TOKEN", "t0k3n-s3cret")
        .env("RUNBOOK_INPUT_TARGET", "elsewhere")
        .code(3)
        .stderr_contains([
            "  - input `target`: reviewed \"out\", now \"elsewhere\"\n",
            "  - step 1 (dir) renders differently:\n",
            "      reviewed:  mkdir [TMP]/out\n",
            "      now:       mkdir [TMP]/elsewhere\n",
        ])
        .run();
}

#[test]
fn inputs_cannot_be_given_with_a_reviewed_plan() {
    reviewed()
        .then()
        .args(["run", "--plan", "change.plan.json", "--var", "target=x"])
        .code(2)
        .stderr_contains(["error: the argument '--plan <PLAN>' cannot be used with"])
        .run();
}

fn junit(path: &std::path::Path) -> (usize, usize, usize, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root.children().find(|n| n.has_tag_name("testsuite")).unwrap();
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    let failures = cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("failure"))).count();
    let skipped = cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("skipped"))).count();
    for c in &cases {
        assert!(c.attribute("classname").is_some() && c.attribute("name").is_some() && c.attribute("time").is_some());
    }
    assert_eq!(suite.attribute("tests").unwrap().parse::<usize>().unwrap(), cases.len());
    assert_eq!(suite.attribute("failures").unwrap().parse::<usize>().unwrap(), failures);
    assert_eq!(suite.attribute("skipped").unwrap().parse::<usize>().unwrap(), skipped);
    (cases.len(), failures, skipped, text)
}

#[test]
fn junit_reports_for_runs_and_plans() {
    let rb = "runbook: 1\nname: j\ninputs:\n  pw: { secret: true }\nsteps:\n  - id: ok\n    exec: [helper, out, 'using {{ pw }}']\n  - id: skip\n    when: 'false'\n    log: never\n  - id: bad\n    exec: [helper, err, '<bad> & {{ pw }}', exit, '4']\n";
    let out = Test::new()
        .file("rb.yaml", rb)
        .args(["run", "rb.yaml", "--report", "run.xml", "--var", "pw=Hunter-2-pw"])
        .code(1)
        .creates_some("run.xml")
        .any_stderr()
        .run();
    let (tests, failures, skipped, text) = junit(&out.path().join("run.xml"));
    assert_eq!((tests, failures, skipped), (3, 1, 1));
    assert!(text.contains("<failure message=\"`helper` exited with code 4\""), "{text}");
    assert!(text.contains("&lt;bad&gt; &amp; ****"), "{text}");
    assert!(!text.contains("Hunter-2-pw"));
    let out = out
        .then()
        .args(["plan", "rb.yaml", "--report", "plan.xml", "--var", "pw=Hunter-2-pw"])
        .creates_some("plan.xml")
        .any_stdout()
        .run();
    let (tests, failures, skipped, text) = junit(&out.path().join("plan.xml"));
    assert_eq!((tests, failures, skipped), (3, 0, 1));
    assert!(!text.contains("Hunter-2-pw"));
}

#[test]
fn ci_examples_use_commands_that_exist() {
    let help = Test::new().args(["--help"]).any_stdout().run().stdout;
    let mut checked = 0;
    for file in ["examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml"] {
        let text = std::fs::read_to_string(crate_path(file)).unwrap();
        for line in text.lines() {
            let Some(rest) = line.split("runbook ").nth(1) else { continue };
            let sub = rest.split_whitespace().next().unwrap_or("");
            if sub.starts_with('-') || sub.is_empty() || sub.contains('/') {
                continue;
            }
            assert!(help.contains(&format!("  {sub} ")), "{file}: `runbook {sub}` is not a command");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} commands found in the CI examples");
}

#[test]
fn completions_and_man_page() {
    Test::new().args(["completions", "bash"]).stdout_contains(["_runbook()", "validate", "resume"]).run();
    Test::new().args(["man"]).stdout_contains([".TH runbook", "validate"]).run();
}
