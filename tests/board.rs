//! The change board's needs: plans made without the secrets, drift shown step by step, plans and
//! run records for tickets (Markdown, HTML), JUnit listing every step, events in order, and a
//! run that asks first on a terminal.

use crate::support::{Test, crate_path};

/// A change whose password the change manager does not hold.
const CHANGE: &str = r#"runbook: 1
name: change
title: Rotate the service certificate
inputs:
  target: { default: out }
  password: { secret: true, description: Certificate password }
vars:
  login: 'admin:{{ password }}'
steps:
  - id: known
    name: Stop when the password is empty
    when: not password
    fail: no password given
  - id: probe
    exec: { program: helper, args: [echo, 'checking {{ password }}'], read-only: true }
  - id: dir
    mkdir: '{{ target }}'
  - id: note
    write: { path: '{{ target }}/login.txt', content: "{{ login }}\n" }
  - id: tool
    exec: [helper, echo, '-p', '{{ password }}']
"#;

fn change() -> Test {
    Test::new().file("rb.yaml", CHANGE)
}

#[test]
fn a_plan_needs_no_secret_and_says_which_the_run_asks_for() {
    let out = change()
        .args(["plan", "rb.yaml", "--out", "plan.json"])
        .creates_some("plan.json")
        .stdout(concat!(
            "Plan for change (5 steps)\n",
            "\n",
            "1. known: Stop when the password is empty\n",
            "   fail: no password given\n",
            "   => decided at run time: `when` needs the secret `password`, asked at run time\n",
            "2. probe: exec helper echo \"checking <secret password: asked at run time>\"\n",
            "   => decided at run time: this read-only probe needs the secret `password`, asked at run time\n",
            "3. dir: mkdir [TMP]/out\n",
            "   => would change\n",
            "4. note: write [TMP]/out/login.txt (with a secret)\n",
            "   => would change\n",
            "5. tool: exec helper echo -p \"<secret password: asked at run time>\"\n",
            "   => would change\n",
            "\n",
            "Summary: 3 would change, 2 decided at run time.\n",
            "\n",
            "Backout (if the last step fails, `runbook rollback` undoes, newest first):\n",
            "  4. note: remove [TMP]/out/login.txt (created)\n",
            "  3. dir: remove the folder [TMP]/out (created)\n",
            "Cannot be undone:\n",
            "  5. tool: `exec` has no automatic inverse and the step declares no `undo:`\n",
        ))
        .stderr("plan saved to plan.json\n")
        .run();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["secret_inputs"], serde_json::json!(["password"]));
    assert_eq!(plan["inputs"], serde_json::json!({"target": "out"}));
    // The run asks for the secret: without a terminal, from the environment only.
    out.then()
        .args(["run", "--plan", "plan.json"])
        .code(2)
        .stderr_contains(["error: missing required input `password`", "set RUNBOOK_INPUT_PASSWORD"])
        .run();
    let done = out
        .then()
        .args(["run", "--plan", "plan.json"])
        .env("RUNBOOK_INPUT_PASSWORD", "Pl4n-w1thout-s3cret")
        .creates("out/login.txt", "admin:Pl4n-w1thout-s3cret\n")
        .any_files()
        .stderr_contains(["the runbook renders to the reviewed plan plan.json (5 steps)\n", "Run succeeded"])
        .any_stdout()
        .run();
    assert!(!done.stderr.contains("Pl4n-w1thout-s3cret") && !done.stdout.contains("Pl4n-w1thout-s3cret"));
}

#[test]
fn a_plan_with_the_secret_given_masks_it_and_still_matches_one_made_without() {
    let out = change()
        .args(["plan", "rb.yaml", "--out", "plan.json"])
        .env("RUNBOOK_INPUT_PASSWORD", "Giv3n-s3cret")
        .creates_some("plan.json")
        .stdout_contains([
            "2. probe: exec helper echo \"checking ****\"\n   => unchanged\n",
            "4. note: write [TMP]/out/login.txt (with a secret)\n",
            "5. tool: exec helper echo -p ****\n",
        ])
        .any_stderr()
        .run();
    assert!(!std::fs::read_to_string(out.path().join("plan.json")).unwrap().contains("Giv3n-s3cret"));
}

#[test]
fn a_shipped_runbook_plans_without_its_password() {
    let book = crate_path("runbooks/apex-one/restore-auth-cert.yaml");
    let site = crate_path("examples/sites/upgraded.yaml");
    let out = Test::new()
        .args(["plan", book.to_str().unwrap(), "--vars", site.to_str().unwrap()])
        .code_any()
        .any_stdout()
        .run();
    assert!(out.code == 0 || out.code == 1, "a plan without the password is not an error: {}", out.code);
    assert!(out.stdout.contains("<secret password: asked at run time>"), "{}", out.stdout);
    assert!(!out.stdout.contains("missing required input"));
}

#[test]
fn a_one_byte_write_says_byte() {
    Test::new()
        .file("rb.yaml", "runbook: 1\nname: b\nsteps:\n  - id: w\n    write: { path: one.txt, content: 'x' }\n")
        .args(["plan", "rb.yaml"])
        .stdout_contains(["1. w: write [TMP]/one.txt (1 byte)\n"])
        .run();
}

/// The rows of the Markdown table under `## Steps`.
fn markdown_steps(text: &str) -> Vec<Vec<String>> {
    let table = text.split("## Steps\n\n").nth(1).expect("a steps table");
    table
        .lines()
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

#[test]
fn a_markdown_plan_is_a_table_of_every_step_for_a_ticket() {
    let out = change()
        .args(["plan", "rb.yaml", "--format", "markdown", "--out", "plan.json"])
        .creates_some("plan.json")
        .any_stdout()
        .any_stderr()
        .run();
    let rows = markdown_steps(&out.stdout);
    let ids: Vec<&str> = rows.iter().map(|r| r[1].split("<br>").next().unwrap()).collect();
    assert_eq!(ids, ["`known`", "`probe`", "`dir`", "`note`", "`tool`"]);
    assert!(rows.iter().all(|r| r.len() == 5), "#, step, action, verdict, reason: {rows:?}");
    assert_eq!(rows[2][3], "would change");
    assert_eq!(rows[1][3], "decided at run time");
    // A secret by name only; the placeholder is not taken for an HTML tag.
    assert!(out.stdout.contains("| `password` | secret: asked at run time |"), "{}", out.stdout);
    assert!(out.stdout.contains("`exec helper echo \"checking <secret password: asked at run time>\"`"));
    // The plan's digest covers the rendered paths, which hold the test's folder.
    let stable =
        regex::Regex::new(r"Plan: `sha256 [0-9a-f]{64}`").unwrap().replace(&out.stdout, "Plan: `sha256 [PLAN]`");
    insta::assert_snapshot!("markdown-plan", stable);
    // `show-plan` gives the same page for the saved plan, digest included.
    let shown = out.then().args(["show-plan", "plan.json", "--format", "markdown"]).any_stdout().run();
    assert_eq!(shown.stdout, out.stdout);
    let digest = crate::support::sha256_hex(&std::fs::read(out.path().join("plan.json")).unwrap());
    assert!(out.stdout.contains(&format!("- Plan: `sha256 {digest}`")), "{}", out.stdout);
}

#[test]
fn an_html_plan_is_one_page_that_parses_and_colours_each_verdict() {
    let out = change()
        .file(
            "fails.yaml",
            "runbook: 1\nname: f\nsteps:\n  - id: missing\n    copy: { from: nowhere.txt, to: x.txt }\n",
        )
        .args(["plan", "rb.yaml", "--format", "html"])
        .any_stdout()
        .run();
    let doc = roxmltree::Document::parse_with_options(
        &out.stdout,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .expect("the page is well-formed");
    let steps = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("table") && n.descendants().any(|c| c.has_tag_name("th") && c.text() == Some("Verdict"))
        })
        .expect("the steps table");
    let rows: Vec<_> = steps.descendants().filter(|n| n.has_tag_name("tr") && n.attribute("class").is_some()).collect();
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.descendants().find(|n| n.has_tag_name("code")).and_then(|c| c.text()).unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, ["known", "probe", "dir", "note", "tool"]);
    let classes: Vec<&str> = rows.iter().map(|r| r.attribute("class").unwrap()).collect();
    assert_eq!(classes, ["later", "later", "change", "change", "change"]);
    // Self-contained: its style inline, nothing fetched.
    assert!(doc.descendants().any(|n| n.has_tag_name("style")));
    for n in doc.descendants().filter(|n| n.is_element()) {
        for attr in ["src", "href"] {
            assert!(n.attribute(attr).is_none(), "<{}> refers to {:?}", n.tag_name().name(), n.attribute(attr));
        }
    }
    let failing = out.then().args(["plan", "fails.yaml", "--format", "html"]).code(1).any_stdout().run();
    assert!(failing.stdout.contains("<tr class=\"bad\">"), "{}", failing.stdout);
    assert!(failing.stdout.contains("<p class=\"alert bad\">The run would stop at step 1 (missing)"));
}

/// A run that fails at its second of three steps.
const STOPS: &str = r#"runbook: 1
name: stops
inputs:
  token: { secret: true }
steps:
  - id: one
    exec: [helper, echo, 'first {{ token }}']
  - id: two
    exec: [helper, err, 'broken', exit, '3']
  - id: three
    write: { path: never.txt, content: x }
"#;

#[test]
fn junit_lists_every_step_including_those_not_run() {
    let out = Test::new()
        .file("rb.yaml", STOPS)
        .file(
            "skips.yaml",
            "runbook: 1\nname: s\nsteps:\n  - id: a\n    log: hi\n  - id: b\n    when: 1 > 2\n    log: never\n",
        )
        .args(["run", "rb.yaml", "--report", "run.xml"])
        .env("RUNBOOK_INPUT_TOKEN", "Junit-t0ken")
        .code(1)
        .creates_some("run.xml")
        .any_stderr()
        .any_stdout()
        .run();
    let text = std::fs::read_to_string(out.path().join("run.xml")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    let names: Vec<String> =
        cases.iter().map(|c| crate::support::normalize(c.attribute("name").unwrap(), out.path())).collect();
    assert_eq!(
        names,
        [
            "one: exec helper echo \"first ****\"",
            "two: exec helper err broken exit 3",
            "three: write [TMP]/never.txt (1 byte)"
        ]
    );
    let skipped = cases[2].children().find(|n| n.has_tag_name("skipped")).expect("step three is skipped");
    assert_eq!(skipped.attribute("message"), Some("not run: the run stopped at two"));
    assert!(cases[1].children().any(|n| n.has_tag_name("failure")));
    assert!(!text.contains("Junit-t0ken"));
    // What made the report, as `--version` says it.
    let made_by =
        doc.descendants().find(|n| n.attribute("name") == Some("runbook.version")).expect("a version property");
    let version = Test::new().args(["--version"]).any_stdout().run().stdout_raw;
    assert_eq!(Some(version.trim_end().trim_start_matches("runbook ")), made_by.attribute("value"));
    // A step skipped by `when` says its condition.
    let out = out
        .then()
        .args(["run", "skips.yaml", "--report", "skips.xml"])
        .creates_some("skips.xml")
        .any_files()
        .any_stderr()
        .run();
    let text = std::fs::read_to_string(out.path().join("skips.xml")).unwrap();
    assert!(text.contains("<skipped message=\"`when` was false: 1 &gt; 2\"/>"), "{text}");
}

#[test]
fn the_record_of_a_run_for_the_ticket() {
    let out = Test::new()
        .file("rb.yaml", STOPS)
        .args(["run", "rb.yaml"])
        .env("RUNBOOK_INPUT_TOKEN", "Rec0rd-t0ken")
        .code(1)
        .any_files()
        .any_stderr()
        .run();
    let md = out.then().args(["status", "--format", "markdown"]).any_files().any_stdout().run();
    let text = &md.stdout;
    assert!(text.starts_with("# Run "), "{text}");
    assert!(text.contains("Run failed: 1 done, 1 failed, 1 not run."), "{text}");
    assert!(text.contains("> **The run stopped at step two.**"), "{text}");
    assert!(text.contains("- **Started:** ") && text.contains(" by "), "who and when: {text}");
    assert!(text.contains("| `token` | \\*\\*\\*\\* (secret) |"), "inputs masked: {text}");
    let rows = markdown_steps(text);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0][3], "done");
    assert_eq!(rows[1][3], "failed");
    assert_eq!(rows[2][3], "not run: the run stopped at two");
    assert!(rows[0][5].contains("`first ****`"), "output tail, masked: {:?}", rows[0]);
    assert!(rows[1][5].contains("`broken`"), "{:?}", rows[1]);
    assert!(!text.contains("Rec0rd-t0ken"));
    // The same record as a page; a run named by its id.
    let journal = std::fs::read_dir(out.path().join(".runbook/runs/stops")).unwrap().next().unwrap().unwrap().path();
    let id = journal.file_stem().unwrap().to_string_lossy().into_owned();
    let html = out.then().args(["status", "--format", "html", &id]).any_files().any_stdout().run();
    roxmltree::Document::parse_with_options(
        &html.stdout,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .expect("well-formed");
    assert!(html.stdout.contains("not run: the run stopped at two"));
    out.then()
        .args(["status", "--format", "markdown", "20000101-000000"])
        .any_files()
        .code(2)
        .stderr_contains(["error: there is no run `20000101-000000` in .runbook"])
        .run();
}

/// Every event line of a JSON run, as (type, step).
fn events(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["event"].as_str().unwrap_or("").to_string(), v["step"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn events_come_in_step_order_for_every_kind_of_step() {
    let rb = r#"runbook: 1
name: order
steps:
  - id: cmd
    exec: [helper, echo, hi]
  - id: skipped
    when: steps.cmd.exit_code != 0
    log: never
  - id: sh
    shell: { script: 'helper echo from-shell' }
  - id: look
    expect-output: { step: sh, contains: from-shell }
  - id: w
    write: { path: f.txt, content: x }
  - id: check
    assert: { file: f.txt }
  - id: say
    log: 'said {{ steps.cmd.stdout | trim }}'
  - id: ok
    manual: { instructions: nothing to do, confirm: true }
  - id: broken
    continue-on-error: true
    log: '{{ steps.cmd.stdout.nothing }}'
  - id: after
    exec: [helper, echo, done]
  - id: skipped_last
    when: false
    log: never
"#;
    let out = Test::new()
        .file("rb.yaml", rb)
        .args(["run", "rb.yaml", "--format", "json", "--yes"])
        .creates("f.txt", "x")
        .any_files()
        .any_stdout()
        .any_stderr()
        .run();
    let ev = events(&out.stdout);
    let ids = ["cmd", "skipped", "sh", "look", "w", "check", "say", "ok", "broken", "after", "skipped_last"];
    let mut position = 0;
    for id in ids {
        let started = ev
            .iter()
            .position(|(e, s)| e == "step_started" && s == id)
            .unwrap_or_else(|| panic!("{id} started: {ev:?}"));
        let finished =
            ev.iter().position(|(e, s)| e == "step_finished" && s == id).unwrap_or_else(|| panic!("{id} finished"));
        assert!(position <= started && started < finished, "{id}: {ev:?}");
        // Nothing of another step between its start and its end.
        assert!(ev[started..=finished].iter().all(|(_, s)| s == id || s.is_empty()), "{id}: {ev:?}");
        position = finished + 1;
    }
    assert_eq!(ev.last().unwrap().0, "run_finished");
}

#[test]
fn resuming_a_changed_runbook_shows_each_step_as_it_rendered_then_and_now() {
    let rb = "runbook: 1\nname: r\nsteps:\n  - id: one\n    write: { path: one.txt, content: '1' }\n  - id: gate\n    assert: { file: needed.txt }\n  - id: three\n    write: { path: three.txt, content: 'three' }\n";
    let out = Test::new().file("rb.yaml", rb).args(["run", "rb.yaml"]).code(1).any_files().any_stderr().run();
    std::fs::write(out.path().join("rb.yaml"), rb.replace("three.txt", "third.txt")).unwrap();
    out.then()
        .args(["resume", "rb.yaml"])
        .code(3)
        .any_files()
        .stderr_contains([
            "steps that differ: three\n",
            "  - step 3 (three) renders differently:\n",
            "      then:  write [TMP]/three.txt (5 bytes)\n",
            "      now:   write [TMP]/third.txt (5 bytes)\n",
            "hint: if the change is intended, resume with --force",
        ])
        .run();
}

/// `run` on a terminal shows the plan and asks; only `y` goes on.
#[cfg(unix)]
mod terminal {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::support::Test;

    /// Runs `runbook ARGS` in `dir` on a pseudo-terminal; answers `answer` once the question
    /// shows. Returns the exit code and what the terminal showed.
    fn on_terminal(dir: &std::path::Path, args: &[&str], answer: Option<&str>) -> (i32, String) {
        let (mut master, mut slave) = (0, 0);
        let made =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(made, 0, "openpty");
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = crate::support::command(dir);
        cmd.args(args).env_remove("CI").env_remove("RUNBOOK_STATE_DIR").env("NO_COLOR", "1");
        cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave);
        // Its own session, with the terminal as its controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY as _, 0);
                Ok(())
            });
        }
        let mut child = crate::support::spawn(&mut cmd);
        drop(cmd);
        let mut reader = std::fs::File::from(master.try_clone().unwrap());
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the other side is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let mut answered = answer.is_none();
        let mut writer = std::fs::File::from(master);
        while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(120)) {
            seen.extend(chunk);
            if !answered && String::from_utf8_lossy(&seen).contains("[y/N] ") {
                writer.write_all(answer.unwrap().as_bytes()).unwrap();
                answered = true;
            }
        }
        let status = child.wait().unwrap();
        (status.code().unwrap_or(-1), String::from_utf8_lossy(&seen).replace("\r\n", "\n"))
    }

    const RB: &str = "runbook: 1\nname: asks\nsteps:\n  - id: a\n    write: { path: a.txt, content: a }\n  - id: b\n    copy: { from: missing.txt, to: out/b.txt }\n";

    #[test]
    fn answering_no_touches_nothing() {
        let t = Test::new().file("rb.yaml", RB);
        let (code, shown) = on_terminal(t.path(), &["run", "rb.yaml"], Some("n\n"));
        assert_eq!(code, 3, "{shown}");
        assert!(shown.contains("Plan for asks (2 steps): 1 would change, 1 would fail."), "{shown}");
        assert!(shown.contains("step 2 (b) would fail: the source"), "{shown}");
        assert!(shown.contains("Run 2 steps? [y/N] "), "{shown}");
        assert!(shown.contains("not run: the operator did not say yes; nothing was changed"), "{shown}");
        let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["rb.yaml"], "the folder stays as it was");
    }

    #[test]
    fn answering_yes_runs_and_yes_flag_does_not_ask() {
        let rb = "runbook: 1\nname: asks\nsteps:\n  - id: a\n    write: { path: a.txt, content: a }\n";
        let t = Test::new().file("rb.yaml", rb);
        let (code, shown) = on_terminal(t.path(), &["run", "rb.yaml"], Some("yes\n"));
        assert_eq!(code, 0, "{shown}");
        assert_eq!(std::fs::read_to_string(t.path().join("a.txt")).unwrap(), "a");
        std::fs::remove_file(t.path().join("a.txt")).unwrap();
        let (code, shown) = on_terminal(t.path(), &["run", "rb.yaml", "--yes"], None);
        assert_eq!(code, 0, "{shown}");
        assert!(!shown.contains("[y/N]"), "{shown}");
        assert!(t.path().join("a.txt").exists());
    }
}

/// The record of a run names the account that ran it as people know it (`root (uid 0)` on Unix,
/// the account name on Windows), and a step that took under a second shows its milliseconds.
#[test]
fn the_record_names_the_user_and_shows_milliseconds() {
    let out = Test::new()
        .file("rb.yaml", "runbook: 1\nname: rec\nsteps:\n  - { id: hello, log: hi }\n")
        .args(["run", "rb.yaml"])
        .any_stderr()
        .any_files()
        .run();
    let record = out.then().args(["status", "--format", "markdown"]).any_stdout().run();
    let ms = regex::Regex::new(r"\| `hello`<br>log \| `log: hi` \| unchanged \| \d+ ms \|").unwrap();
    assert!(ms.is_match(&record.stdout), "{}", record.stdout);
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let by = regex::Regex::new(&format!(r"\*\*Started:\*\* \S+ by [a-z_][a-z0-9_-]* \(uid {uid}\) on ")).unwrap();
        assert!(by.is_match(&record.stdout), "{}", record.stdout);
    }
    #[cfg(windows)]
    {
        let name = std::env::var("USERNAME").unwrap();
        assert!(
            record.stdout.contains(&format!(" by {name} on ")) || record.stdout.contains(&format!("\\{name} on ")),
            "{}",
            record.stdout
        );
    }
}
