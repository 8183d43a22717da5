//! Editors: `runbook lsp` over a real stdio exchange, and yaml-language-server (the engine of VS
//! Code's YAML extension) with the checked-in schema.

use serde_json::{Value, json};

use crate::support::Test;
use crate::support::lsp::{Client, uri};

/// Line numbers (1-based, as `validate` prints them) of the diagnostics.
fn lines(diagnostics: &[Value]) -> Vec<u64> {
    diagnostics.iter().map(|d| d["range"]["start"]["line"].as_u64().unwrap() + 1).collect()
}

const BROKEN: &str = r#"runbook: 1
name: edited
inputs:
  install_dir: { type: path, description: Where Apex One is installed }
  build: { type: int, default: 8378 }
steps:
  - id: stage
    copy: { from: '{{ install_dir }}/OfficeScanAuth.dat', to: 'C:/' }
  - id: report
    log: 'Copied {{ instal_dir }} ({{ steps.later.stdout }})'
  - id: later
    exec: [tool, '{{ build }}']
"#;

#[test]
fn the_language_server_reports_what_validate_reports_and_answers_questions() {
    let t = Test::new().file("rb.yaml", BROKEN);
    let path = t.path().join("rb.yaml");
    let doc = uri(&path);
    let mut lsp = Client::start({
        let mut cmd = crate::support::command(t.path());
        cmd.arg("lsp");
        cmd
    });
    let init = lsp.initialize();
    for capability in ["hoverProvider", "completionProvider", "definitionProvider", "textDocumentSync"] {
        assert!(!init["capabilities"][capability].is_null(), "{capability}: {init}");
    }
    lsp.open(&doc, BROKEN);
    let diagnostics = lsp.diagnostics(&doc);
    // Exactly validate's: an undefined name and a reference to a later step, on line 10.
    let validate = Test::new().file("rb.yaml", BROKEN).args(["validate", "rb.yaml"]).code(2).any_stderr().run();
    assert_eq!(validate.stderr.matches("\nerror: ").count() + 1, diagnostics.len(), "{}", validate.stderr);
    assert_eq!(lines(&diagnostics), [10, 10], "{diagnostics:#?}");
    let messages: Vec<&str> = diagnostics.iter().map(|d| d["message"].as_str().unwrap()).collect();
    assert!(messages[0].starts_with("undefined name `instal_dir`\nhint: did you mean `install_dir`?"), "{messages:?}");
    assert!(messages[1].starts_with("`steps.later` refers to step 3 which runs later"), "{messages:?}");
    assert_eq!(diagnostics[0]["severity"], 1);
    let col = BROKEN.lines().nth(9).unwrap().find("instal_dir").unwrap() as u64;
    assert_eq!(diagnostics[0]["range"]["start"]["character"], col);
    assert_eq!(diagnostics[0]["range"]["end"]["character"], col + "instal_dir".len() as u64);

    // Fixed in the editor: the diagnostics follow the text, not the file on disk.
    let fixed = BROKEN.replace("instal_dir", "install_dir").replace(" ({{ steps.later.stdout }})", "");
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(lsp.diagnostics(&doc), Vec::<Value>::new());

    let at = |line: usize, needle: &str| json!({"textDocument": {"uri": doc}, "position": {"line": line - 1, "character": fixed.lines().nth(line - 1).unwrap().find(needle).unwrap() + 1}});
    // Hover: an action, an input in a template.
    let hover = lsp.request("textDocument/hover", at(8, "copy"));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("Copy a file, or a folder with its content"), "{text}");
    let hover = lsp.request("textDocument/hover", at(8, "install_dir"));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("input `install_dir`") && text.contains("Where Apex One is installed"), "{text}");
    // Completion inside `{{ }}` offers the inputs.
    let typing = fixed.replace("exec: [tool, '{{ build }}']", "exec: [tool, '{{ b }}']");
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 3}, "contentChanges": [{"text": typing}]}),
    );
    let _ = lsp.diagnostics(&doc);
    let line = typing.lines().position(|l| l.contains("{{ b }}")).unwrap();
    let character = typing.lines().nth(line).unwrap().find("{{ b }}").unwrap() + 4;
    let items = lsp.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": doc}, "position": {"line": line, "character": character}}),
    );
    let labels: Vec<&str> = items["items"].as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    for name in ["install_dir", "build", "steps"] {
        assert!(labels.contains(&name), "{labels:?}");
    }
    // Go to definition: from a name to its input.
    let place = lsp.request("textDocument/definition", at(8, "install_dir"));
    assert_eq!(place["uri"], doc.as_str());
    assert_eq!(place["range"]["start"], json!({"line": 3, "character": 2}));
    assert!(lsp.finish().success());
}

#[test]
fn the_language_server_sees_the_deeper_checks_and_warnings() {
    let text = "runbook: 1\nname: deeper\ninputs:\n  pw: { secret: true, default: Sh0wn-in-clear }\nsteps:\n  - id: a\n    log: '{{ pw | upcase }}'\n";
    let t = Test::new().file("rb.yaml", text);
    let doc = uri(&t.path().join("rb.yaml"));
    let mut lsp = Client::start({
        let mut cmd = crate::support::command(t.path());
        cmd.arg("lsp");
        cmd
    });
    lsp.initialize();
    lsp.open(&doc, text);
    let diagnostics = lsp.diagnostics(&doc);
    assert_eq!(lines(&diagnostics), [4, 7], "{diagnostics:#?}");
    assert_eq!(diagnostics[0]["severity"], 2, "the secret default is a warning");
    assert!(diagnostics[1]["message"].as_str().unwrap().starts_with("unknown filter `upcase`"));
    assert!(!serde_json::to_string(&diagnostics).unwrap().contains("Sh0wn-in-clear"));
    assert!(lsp.finish().success());
}

/// yaml-language-server 1.x with `schemas/runbook.schema.json`: the common mistakes are flagged at
/// their lines, the shipped runbooks are clean. It comes from npm: `.ci/run` installs it, sets
/// RUNBOOK_TEST_YAML_LS to its entry point (a `node` script) and requires it
/// (RUNBOOK_TEST_REQUIRE_PEERS).
#[cfg(unix)]
#[test]
fn yaml_language_server_flags_the_common_mistakes_with_the_schema() {
    let Some(server) = std::env::var_os("RUNBOOK_TEST_YAML_LS") else {
        assert!(std::env::var_os("RUNBOOK_TEST_REQUIRE_PEERS").is_none(), "set RUNBOOK_TEST_YAML_LS");
        eprintln!("skipped: RUNBOOK_TEST_YAML_LS is not set (`.ci/run` sets it)");
        return;
    };
    let schema = crate::support::crate_path("schemas/runbook.schema.json");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(server).arg("--stdio");
    let mut lsp = Client::start(cmd);
    lsp.settings = json!({"validate": true, "hover": true, "completion": true, "schemas": {uri(&schema): "*.yaml"}});
    lsp.initialize();
    lsp.notify("workspace/didChangeConfiguration", json!({"settings": {"yaml": lsp.settings.clone()}}));
    // The schema applies once the server has read its configuration and loaded the schema: until
    // a broken file shows a problem, what it publishes may be from before.
    lsp.wait_for_request("workspace/configuration");
    let warm = uri(&std::env::temp_dir().join("runbook-warm-up.yaml"));
    lsp.open(&warm, "runbook: 1\nname: x\nsteps:\n  - id: a\n    cpy: b\n");
    while lsp.diagnostics(&warm).is_empty() {}
    let step = |body: &str| format!("runbook: 1\nname: x\nsteps:\n  - id: a\n{body}");
    let cases: Vec<(&str, String, u64, &str)> = vec![
        (
            "missing-id",
            "runbook: 1\nname: x\nsteps:\n  - name: no id\n    log: hi\n".into(),
            4,
            "Missing property \"id\"",
        ),
        ("null-id", "runbook: 1\nname: x\nsteps:\n  - id: ~\n    log: hi\n".into(), 4, "Incorrect type"),
        ("two-actions", step("    log: hi\n    mkdir: d\n"), 5, "a step does exactly one thing"),
        ("no-action", step("    name: nothing\n"), 4, "a step needs exactly one action"),
        ("bad-duration", step("    timeout: 5 minutes please\n    log: hi\n"), 5, "a duration such as"),
        (
            "choice-without-choices",
            "runbook: 1\nname: x\ninputs:\n  kind: { type: choice }\nsteps:\n  - id: a\n    log: hi\n".into(),
            4,
            "needs `choices`",
        ),
        ("typo", step("    cpy: { from: a, to: b }\n"), 5, "Property cpy is not allowed"),
        ("format-two", "runbook: 2\nname: x\nsteps:\n  - id: a\n    log: hi\n".into(), 1, "maximum of 1"),
        ("args-string", step("    exec: { program: x, args: '-v' }\n"), 5, "Incorrect type. Expected \"array\""),
    ];
    // Not in a folder whose name starts with a dot: the server's globs skip those.
    let dir = tempfile::Builder::new().prefix("runbook-editor-").tempdir().unwrap();
    for (name, text, line, message) in &cases {
        let doc = uri(&dir.path().join(format!("{name}.yaml")));
        lsp.open(&doc, text);
        let found = lsp.diagnostics(&doc);
        assert!(
            found.iter().any(|d| d["range"]["start"]["line"].as_u64() == Some(line - 1)
                && d["message"].as_str().unwrap().contains(message)),
            "{name}: want {message:?} at line {line}: {found:#?}"
        );
    }
    for book in std::fs::read_dir(crate::support::crate_path("runbooks/apex-one")).unwrap() {
        let path = book.unwrap().path();
        let doc = uri(&path);
        lsp.open(&doc, &std::fs::read_to_string(&path).unwrap());
        assert_eq!(lsp.diagnostics(&doc), Vec::<Value>::new(), "{}", path.display());
    }
    // Every action is described in hover.
    let text = step("    copy: { from: a, to: b }\n");
    let doc = uri(&dir.path().join("hover.yaml"));
    lsp.open(&doc, &text);
    let _ = lsp.diagnostics(&doc);
    let hover = lsp
        .request("textDocument/hover", json!({"textDocument": {"uri": doc}, "position": {"line": 4, "character": 6}}));
    assert!(hover.to_string().contains("Copy a file"), "{hover}");
    let _ = lsp.finish();
}

/// Test files (`*.test.yaml`) get the diagnostics `validate` gives them: their own mistakes, and
/// step ids or inputs their runbook does not have.
#[test]
fn the_language_server_checks_test_files_against_their_runbook() {
    let runbook = "runbook: 1\nname: svc\ninputs:\n  service: { default: x }\nsteps:\n  - id: stop\n    log: 'stop {{ service }}'\n";
    let tests = "runbook-test: 1\nrunbook: svc.yaml\ncases:\n  - name: a\n    inputs: { service: y }\n    expect:\n      failed-at: stpo\n";
    let t = Test::new().file("svc.yaml", runbook).file("svc.test.yaml", tests);
    let doc = uri(&t.path().join("svc.test.yaml"));
    let mut lsp = Client::start({
        let mut cmd = crate::support::command(t.path());
        cmd.arg("lsp");
        cmd
    });
    lsp.initialize();
    lsp.open(&doc, tests);
    let diagnostics = lsp.diagnostics(&doc);
    assert_eq!(lines(&diagnostics), [7], "{diagnostics:#?}");
    let message = diagnostics[0]["message"].as_str().unwrap();
    assert!(message.starts_with("test file: `stpo` is not a step of svc\nhint: did you mean `stop`?"), "{message}");
    let fixed = tests.replace("stpo", "stop");
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(lsp.diagnostics(&doc), Vec::<Value>::new());
    assert!(lsp.finish().success());
}
