//! The corpus of broken runbooks: each one a distinct mistake, each reported with exit 2, a
//! `file:line:col` location, the source line and a caret — never a panic. Snapshots pin the text.

use crate::support::Test;

#[test]
fn every_broken_runbook_is_reported_precisely() {
    insta::glob!("corpus/invalid/*.yaml", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let out =
            Test::new().file(name, std::fs::read(path).unwrap()).args(["validate", name]).code(2).any_stderr().run();
        let located = regex::Regex::new(&format!(r"(?m)^ *(--> )?{}:\d+:\d+", regex::escape(name))).unwrap();
        assert!(located.is_match(&out.stderr), "{name}: no file:line:col in\n{}", out.stderr);
        assert!(out.stderr.starts_with("error: "), "{name}: {}", out.stderr);
        insta::assert_snapshot!(out.stderr);
    });
}

/// Runbooks that load, with a warning at the line to look at.
#[test]
fn every_warned_runbook_is_reported_precisely() {
    insta::glob!("corpus/warnings/*.yaml", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let out = Test::new().file(name, &text).args(["validate", name]).any_stderr().run();
        assert!(out.stderr.starts_with("warning: "), "{name}: {}", out.stderr);
        let located = regex::Regex::new(&format!(r"(?m)^ *--> {}:\d+:\d+", regex::escape(name))).unwrap();
        assert!(located.is_match(&out.stderr), "{name}: no file:line:col in\n{}", out.stderr);
        // A secret written in the file is not repeated in the warning's quoted line.
        assert!(!out.stderr.contains("Apex-Install-2019!"), "{}", out.stderr);
        insta::assert_snapshot!(out.stderr);
    });
}

#[test]
fn the_corpus_is_large_enough() {
    let n = std::fs::read_dir(crate::support::crate_path("tests/corpus/invalid")).unwrap().count();
    assert!(n >= 40, "only {n} broken runbooks");
}

#[test]
fn all_problems_of_a_file_are_reported_in_one_pass() {
    let text = "runbook: 1\nname: x\nsteps:\n  - id: a\n    cpy: { from: a, to: b }\n  - id: b\n    copy: { form: a, to: b }\n  - id: c\n    log: '{{ nope }}'\n";
    let out = Test::new().file("x.yaml", text).args(["validate", "x.yaml"]).code(2).any_stderr().run();
    for want in [
        "x.yaml:5:5",
        "did you mean `copy`?",
        "x.yaml:7:13",
        "did you mean `from`?",
        "x.yaml:9:14",
        "undefined name `nope`",
    ] {
        assert!(out.stderr.contains(want), "missing {want:?} in\n{}", out.stderr);
    }
}

#[test]
fn a_huge_file_is_refused_without_reading_it() {
    let big = "# padding\n".repeat(600_000);
    Test::new()
        .file("big.yaml", format!("runbook: 1\n{big}"))
        .args(["validate", "big.yaml"])
        .code(2)
        .stderr_contains(["error: big.yaml is ", "files larger than 4 MiB are refused"])
        .run();
}

#[test]
fn an_alias_bomb_is_refused() {
    let mut text = String::from("runbook: 1\nname: x\nsteps: []\nbomb:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    Test::new()
        .file("bomb.yaml", text)
        .args(["validate", "bomb.yaml"])
        .code(2)
        .stderr_contains(["error: invalid YAML", "bomb.yaml:"])
        .run();
}

#[test]
fn a_missing_file_is_an_error() {
    Test::new()
        .args(["validate", "nope.yaml"])
        .code(2)
        .stderr("error: cannot read nope.yaml: no such file or folder\n = hint: check the path; it is taken relative to the current folder\n\n1 error\n")
        .run();
}
