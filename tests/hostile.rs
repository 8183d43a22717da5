//! Hostile input: malformed, huge, deeply nested, non-UTF-8, alias-bomb and template-abuse
//! runbooks and input files. Each gets a clear, located error and exit 2, in bounded time and
//! memory, and never a panic. A property test mutates valid runbooks the same way.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::support::{bin, command_for, crate_path, helper};

const TIME_LIMIT: Duration = Duration::from_secs(10);
const MEMORY_LIMIT_KB: i64 = 256 * 1024;

struct Run {
    code: i32,
    stderr: String,
    elapsed: Duration,
    max_rss_kb: i64,
}

/// Runs the binary with a watchdog, through the helper program's `measure`, which reads its peak
/// memory from the kernel (Unix; 0 elsewhere) and exits with its code (128 + signal if killed).
fn run(dir: &Path, args: &[&str]) -> Run {
    let start = Instant::now();
    let mut child = crate::support::spawn(
        command_for(&helper("helper"), dir)
            .arg("measure")
            .arg(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            panic!("runbook {args:?} ran longer than {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let max_rss_kb = stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("the helper prints the peak memory ({e}); its stderr:\n{stderr}"));
    Run { code: status.code().unwrap_or(-1), stderr, elapsed: start.elapsed(), max_rss_kb }
}

fn check_bounded(name: &str, r: &Run) {
    assert!(!r.stderr.contains("panicked"), "{name}: panic\n{}", r.stderr);
    assert!((0..128).contains(&r.code), "{name}: killed by a signal\n{}", r.stderr);
    assert!(r.elapsed < TIME_LIMIT, "{name}: took {:?}", r.elapsed);
    assert!(r.max_rss_kb < MEMORY_LIMIT_KB, "{name}: used {} KiB", r.max_rss_kb);
}

fn located(file: &str, stderr: &str) -> bool {
    let re = regex::Regex::new(&format!(r"{}:\d+:\d+", regex::escape(file))).unwrap();
    re.is_match(stderr)
}

#[test]
fn every_hostile_runbook_gets_a_located_error() {
    let corpus = crate_path("tests/corpus/hostile");
    let mut files: Vec<_> = std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 60, "only {} hostile files", files.len());
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let validate = run(&corpus, &["validate", name]);
        check_bounded(name, &validate);
        let r = if validate.code == 0 {
            // Some abuse only shows when templates render: the plan must then refuse with exit 2
            // (vars) or predict the failure (steps), never loop or blow up.
            let plan = run(&corpus, &["plan", name]);
            check_bounded(name, &plan);
            assert!(plan.code == 2 || plan.code == 1, "{name}: plan exit {}\n{}", plan.code, plan.stderr);
            if plan.code == 1 {
                continue;
            }
            plan
        } else {
            validate
        };
        assert_eq!(r.code, 2, "{name}\n{}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{name}\n{}", r.stderr);
        assert!(located(name, &r.stderr), "{name}: no {name}:line:col in\n{}", r.stderr);
    }
}

#[test]
fn huge_files_and_lines_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // 10 MB of valid-looking YAML.
    let mut big = String::from("runbook: 1\nname: big\nsteps:\n");
    while big.len() < 10 * 1024 * 1024 {
        big.push_str("  - id: s\n    log: hello\n");
    }
    std::fs::write(dir.path().join("big.yaml"), &big).unwrap();
    let r = run(dir.path(), &["validate", "big.yaml"]);
    check_bounded("big.yaml", &r);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("files larger than 4 MiB are refused"), "{}", r.stderr);
    // A 3 MiB single line.
    let line = format!("runbook: 1\nname: wide\nsteps:\n  - id: a\n    log: '{}'\n  - bad\n", "x".repeat(3 << 20));
    std::fs::write(dir.path().join("wide.yaml"), line).unwrap();
    let r = run(dir.path(), &["validate", "wide.yaml"]);
    check_bounded("wide.yaml", &r);
    assert_eq!(r.code, 2);
    assert!(located("wide.yaml", &r.stderr), "{}", &r.stderr[..r.stderr.len().min(500)]);
    // A million-entry input file.
    let many: String = (0..200_000).map(|i| format!("k{i}: {i}\n")).collect();
    std::fs::write(dir.path().join("rb.yaml"), "runbook: 1\nname: r\nsteps:\n  - id: a\n    log: hi\n").unwrap();
    std::fs::write(dir.path().join("many.yaml"), many).unwrap();
    let r = run(dir.path(), &["plan", "rb.yaml", "--vars", "many.yaml"]);
    check_bounded("many.yaml", &r);
}

#[test]
fn hostile_input_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rb.yaml"),
        "runbook: 1\nname: r\ninputs:\n  a: { default: x }\nsteps:\n  - id: s\n    log: '{{ a }}'\n",
    )
    .unwrap();
    let bomb = {
        let mut t = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            t.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 10].join(", ")));
        }
        t
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bomb.yaml", bomb.into_bytes()),
        ("latin1.yaml", b"a: caf\xe9\n".to_vec()),
        ("list.yaml", b"- a\n- b\n".to_vec()),
        ("nested.yaml", format!("a: {}{}\n", "[".repeat(500), "]".repeat(500)).into_bytes()),
        ("dup.yaml", b"a: 1\na: 2\n".to_vec()),
        ("binary.yaml", b"\x00\x01\x02".to_vec()),
    ];
    for (name, bytes) in cases {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let r = run(dir.path(), &["plan", "rb.yaml", "--vars", name]);
        check_bounded(name, &r);
        assert_eq!(r.code, 2, "{name}\n{}", r.stderr);
        assert!(located(name, &r.stderr), "{name}\n{}", r.stderr);
    }
}

// --- property tests: load + validate (+ plan) never panic, and every error is located --------

const BASE: &str = r#"runbook: 1
name: prop
inputs:
  dir: { type: path, default: /tmp/prop }
  n: { type: int, default: 3 }
vars:
  target: '{{ path_join(dir, "out.txt") }}'
steps:
  - id: make
    mkdir: '{{ dir }}'
  - id: write
    write: { path: '{{ target }}', content: 'n={{ n }}' }
  - id: show
    exec: [helper, cat, '{{ target }}']
  - id: check
    expect-output: { contains: 'n=', matches: 'n=(?P<n>\d+)' }
  - id: when
    when: steps.check.captures.n == "3"
    log: three
"#;

fn check_library(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, text).unwrap();
    let loaded = runbook::load(&path);
    let position = regex::Regex::new(r"p\.yaml:\d+:\d+").unwrap();
    for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
        // At a place in the file, or naming one (`file:line:col`) in its message.
        let located = d.location.is_some() || position.is_match(&d.message);
        prop_assert!(located, "unlocated error: {} for\n{}", d.message, text);
        let _ = d.to_string();
    }
    if let Some(rb) = loaded.runbook {
        let inputs = runbook::resolve_inputs(&rb, &runbook::InputArgs::default());
        if let Ok((inputs, _)) = inputs {
            let masker = runbook::Masker::default();
            let _ = runbook::plan(&rb, &inputs, &masker, dir.path().to_path_buf());
        }
    }
    Ok(())
}

fn mutation() -> impl Strategy<Value = (usize, usize, String)> {
    let fragments = prop::sample::select(vec![
        "", ":", "- ", "{", "}", "[", "]", "'", "\"", "{{", "}}", "{%", "&a", "*a", "!!str ", "\t", "\n", "  ", "#",
        "id", "steps", "copy", "exec", "when", "---", "\u{0}", "é", "証", "<<: *a", "~", "|", ">", "%", "@", "`",
    ]);
    (any::<usize>(), 0usize..8, prop::collection::vec(fragments, 1..4).prop_map(|v| v.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_runbooks_never_panic_and_errors_are_located((at, cut, insert) in mutation()) {
        let mut text = BASE.to_string();
        let mut pos = at % text.len();
        while !text.is_char_boundary(pos) { pos -= 1; }
        let mut end = (pos + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        text.replace_range(pos..end, &insert);
        check_library(&text)?;
    }

    #[test]
    fn generated_runbooks_never_panic(
        ids in prop::collection::vec("[a-z][a-z0-9_]{0,6}|[A-Z-]{1,4}", 1..6),
        actions in prop::collection::vec(prop::sample::select(vec![
            "log: hi", "mkdir: x", "cd: .", "exec: [echo, '{{ steps }}']", "copy: { from: a, to: b }",
            "expect-output: { contains: x }", "fail: no", "when: 'true'", "remove: x", "rename: {from: a}",
            "write: { path: p, content: '{{ 1 + }}' }", "assert: {}", "include: { runbook: nope.yaml }",
            "manual: do it", "shell: 'echo {{ missing }}'", "exec: { program: x, expect: { exit-code: [] } }",
        ]), 1..6),
    ) {
        let mut text = String::from("runbook: 1\nname: gen\nsteps:\n");
        for (i, id) in ids.iter().enumerate() {
            text.push_str(&format!("  - id: {id}\n    {}\n", actions[i % actions.len()]));
        }
        check_library(&text)?;
    }
}
