//! `test`: every case of the test files given, each in its own sandbox folder, in parallel. A
//! case runs the real engine (this binary) on its runbook with its fakes first found (the `cd`
//! folder, `PATH`), its inputs and secrets; then its expectations are compared: the outcome,
//! each step's outcome, the plan's verdicts, the files, the calls each fake received, that no
//! secret was printed or journaled, and after `rollback` that the tree is the starting one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::cli::args::{Format, TestArgs};
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode, Failure};
use crate::cli::fake::{self, Call, FAKES_ENV, Spec};
use crate::cli::junit;
use crate::compile::runbook::{Action, Runbook};
use crate::compile::testfile::{self, ArgMatch, Case, Fake, FileSpec, Loaded};
use crate::format::diagnostic::{Diagnostic, plural};
use crate::format::digest::sha256_hex;
use crate::format::mask::Masker;

/// What one case found.
struct CaseRun {
    name: String,
    failures: Vec<String>,
    duration: Duration,
    /// Each step's outcome in the run (`done`, `skipped`, `failed`, …).
    steps: BTreeMap<String, String>,
    /// The steps whose undo ran in the rollback.
    undone: BTreeSet<String>,
}

pub fn run(config: &Config, args: &TestArgs) -> CmdResult {
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let mut files = Vec::new();
    for p in &paths {
        find(p, &mut files)?;
    }
    if files.is_empty() {
        return Err(Diagnostic::error(format!(
            "no test files (*.test.yaml) in {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
        .hint("a test file names a runbook and holds its cases; see `runbook schema test`")
        .into());
    }
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    for f in &files {
        let text = crate::format::file::read_text(f).map_err(Failure::from)?;
        let found = testfile::diagnostics(f, text.clone());
        if found.iter().any(Diagnostic::is_error) {
            problems.extend(found);
            continue;
        }
        match testfile::load(f, text) {
            Ok(l) => loaded.push(l),
            Err(ds) => problems.extend(ds),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::invalid(problems));
    }
    let mut runbooks = Vec::new();
    for l in &loaded {
        runbooks.push(crate::cli::session::load_runbook(&config.ui, &l.runbook_path())?);
    }
    let exe = std::env::current_exe().map_err(|e| Diagnostic::error(format!("cannot find this program: {e}")))?;
    // Every case to run, as (file, case) indexes.
    let jobs: Vec<(usize, usize)> = loaded
        .iter()
        .enumerate()
        .flat_map(|(fi, l)| l.file.cases.iter().enumerate().map(move |(ci, c)| (fi, ci, c)))
        .filter(|(fi, _, c)| args.filter.as_ref().is_none_or(|f| case_id(&loaded[*fi], c).contains(f.as_str())))
        .map(|(fi, ci, _)| (fi, ci))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<(usize, usize), CaseRun>> = Mutex::new(BTreeMap::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(fi, ci)) = jobs.get(i) else { break };
                    let result = run_case(&exe, &loaded[fi], &runbooks[fi], &loaded[fi].file.cases[ci], i);
                    results.lock().expect("results").insert((fi, ci), result);
                }
            });
        }
    });
    let results = results.into_inner().expect("results");
    let coverage = coverage(&loaded, &runbooks, &results);
    if let Some(path) = &args.report {
        crate::cli::session::save(path, &report(&loaded, &results), "the JUnit report")?;
    }
    let failed = results.values().filter(|r| !r.failures.is_empty()).count();
    let below = args.min_coverage.filter(|min| coverage.iter().any(|c| c.percent() < *min));
    match args.format {
        Format::Json => println!("{}", json(&loaded, &results, &coverage)),
        Format::Text => {
            print!("{}", text(&loaded, &results));
            if args.coverage || args.min_coverage.is_some() {
                print!("{}", coverage_text(&coverage));
            }
        }
    }
    let total = results.len();
    if failed > 0 {
        config.ui.info(&format!("{failed} of {total} {} failed", plural(total, "case", "cases")));
        return Ok(ExitCode::StepFailed);
    }
    if let Some(min) = below {
        config.ui.info(&format!("coverage is below {min}% (--min-coverage)"));
        return Ok(ExitCode::StepFailed);
    }
    config.ui.info(&format!("{total} {} passed", plural(total, "case", "cases")));
    Ok(ExitCode::Success)
}

fn case_id(file: &Loaded, case: &Case) -> String {
    format!("{}::{}", file.path.display(), case.name)
}

/// Test files under a path (a folder is searched, hidden folders and `target` left out).
fn find(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), Failure> {
    if path.is_file() {
        if !testfile::is_test_file(path) {
            return Err(Diagnostic::error(format!("{} is not a test file", path.display()))
                .hint("test files are named NAME.test.yaml")
                .into());
        }
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Diagnostic::error(format!("cannot read {}: {}", path.display(), crate::os::fs::io_reason(&e))))?;
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if p.is_dir() && !name.starts_with('.') && name != "target" && name != "node_modules" {
            find(&p, out)?;
        } else if p.is_file() && testfile::is_test_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// A case's sandbox: the tree the runbook works in, and beside it what the test keeps (the
/// fakes on `PATH`, their spec and calls, the engine's state folder).
struct Sandbox {
    dir: PathBuf,
    root: PathBuf,
    harness: PathBuf,
}

impl Sandbox {
    fn new(index: usize) -> std::io::Result<Sandbox> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let dir = base.join(format!("runbook-test-{}-{index}-{attempt}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let root = dir.join("sandbox");
                    let harness = dir.join("harness");
                    std::fs::create_dir_all(root.join(""))?;
                    std::fs::create_dir_all(harness.join("bin"))?;
                    // The sandbox by the path the engine sees (no `\\?\` or symlinked parts).
                    let root = std::fs::canonicalize(&root).map(strip_verbatim).unwrap_or(root);
                    return Ok(Sandbox { dir, root, harness });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free sandbox name"))
    }

    /// The sandbox path as expectations spell it (`/` separators).
    fn spelled(&self) -> String {
        self.root.display().to_string().replace('\\', "/")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strip_verbatim(p: PathBuf) -> PathBuf {
    let s = p.display().to_string();
    match s.strip_prefix(r"\\?\") {
        Some(rest) if !rest.starts_with("UNC") => PathBuf::from(rest),
        _ => p,
    }
}

/// A case's expectations met, or each difference.
fn run_case(exe: &Path, file: &Loaded, runbook: &Runbook, case: &Case, index: usize) -> CaseRun {
    let started = Instant::now();
    let mut run = CaseRun {
        name: case.name.clone(),
        failures: Vec::new(),
        duration: Duration::ZERO,
        steps: BTreeMap::new(),
        undone: BTreeSet::new(),
    };
    if let Err(e) = case_in_sandbox(exe, file, runbook, case, index, &mut run) {
        run.failures.push(e);
    }
    // What the report shows is masked like everything runbook prints: a fake's arguments may
    // carry a secret.
    let secrets = file.file.secrets.values().chain(case.secrets.values()).map(String::as_str).filter(|s| !s.is_empty());
    let masker = Masker::new(secrets);
    for f in &mut run.failures {
        *f = masker.mask(f);
    }
    run.duration = started.elapsed();
    run
}

fn case_in_sandbox(
    exe: &Path,
    file: &Loaded,
    runbook: &Runbook,
    case: &Case,
    index: usize,
    run: &mut CaseRun,
) -> Result<(), String> {
    let sandbox = Sandbox::new(index).map_err(|e| format!("cannot make a sandbox: {e}"))?;
    let root = &sandbox.root;
    let here = crate::os::path::parent_dir(&file.path);
    if let Some(fixtures) = &file.file.fixtures {
        copy_tree(&here.join(fixtures), root).map_err(|e| format!("cannot copy the fixtures {fixtures}: {e}"))?;
    }
    for (path, spec) in file.file.files.iter().chain(&case.files) {
        write_spec(root, path, spec)?;
    }
    let mut fakes: IndexMap<String, Fake> = file.file.fakes.clone();
    for (name, fake) in &case.fakes {
        fakes.insert(name.clone(), fake.clone());
    }
    for (name, fake) in &fakes {
        let folder = match &fake.folder {
            Some(f) => inside(root, f)?,
            None => sandbox.harness.join("bin"),
        };
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
        let named =
            if cfg!(windows) && Path::new(name).extension().is_none() { format!("{name}.exe") } else { name.clone() };
        let to = folder.join(named);
        if std::fs::hard_link(exe, &to).is_err() {
            std::fs::copy(exe, &to).map_err(|e| format!("cannot put the fake {name} in place: {e}"))?;
        }
    }
    let log = sandbox.harness.join("calls.jsonl");
    let spec = Spec { sandbox: root.clone(), log: log.clone(), fakes };
    let spec_path = sandbox.harness.join("fakes.json");
    std::fs::write(&spec_path, serde_json::to_string(&spec).expect("a spec serializes")).map_err(|e| e.to_string())?;
    let start = tree(root);

    // Inputs: `{sandbox}` is the sandbox; a path input must stay in it.
    let spelled = sandbox.spelled();
    let native = root.display().to_string();
    let mut inputs: IndexMap<String, serde_json::Value> = file.file.inputs.clone();
    inputs.extend(case.inputs.clone());
    let mut vars = Vec::new();
    for (name, value) in &inputs {
        let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned).replace("{sandbox}", &native);
        vars.push(format!("{name}={text}"));
    }
    for def in runbook.inputs.values().filter(|d| d.ty == crate::format::model::InputType::Path && !d.secret) {
        let given = vars.iter().position(|v| v.starts_with(&format!("{}=", def.name)));
        let value = match given {
            Some(i) => vars[i][def.name.len() + 1..].to_owned(),
            None => def.default.as_ref().and_then(|d| d.as_str()).unwrap_or("").to_owned(),
        };
        let value = match rerooted(&value, &file.file.roots, root)? {
            Some(moved) => {
                let var = format!("{}={moved}", def.name);
                match given {
                    Some(i) => vars[i] = var,
                    None => vars.push(var),
                }
                moved
            }
            None => value,
        };
        if outside(&value, root) {
            return Err(format!(
                "input `{}` is `{value}`, outside the sandbox: give it in the test (a relative path, or `{{sandbox}}/...`), or map its root with `roots:`",
                def.name
            ));
        }
    }
    let mut secrets: IndexMap<String, String> = file.file.secrets.clone();
    secrets.extend(case.secrets.clone());
    let secrets_json = serde_json::to_string(&secrets).expect("secrets serialize");
    let rb = std::path::absolute(file.runbook_path()).unwrap_or_else(|_| file.runbook_path());
    let state = sandbox.harness.join("state");
    let engine = |words: &[&str]| -> Result<(i32, String, String), String> {
        let mut cmd = Command::new(exe);
        cmd.args(words).arg(&rb);
        for v in &vars {
            if words[0] != "rollback" {
                cmd.arg("--var").arg(v);
            }
        }
        cmd.arg("--secrets-from").arg("-");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("RUNBOOK_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(root)
            .env("CI", "true")
            .env("PATH", sandbox.harness.join("bin"))
            .env(FAKES_ENV, &spec_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start runbook: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(secrets_json.as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let mut printed = Vec::new();
    let e = &case.expect;
    if !e.plan.is_empty() {
        let (_, out, err) = engine(&["plan", "--format", "json"])?;
        let plan: serde_json::Value =
            serde_json::from_str(&out).map_err(|_| format!("the plan could not be made:\n{err}"))?;
        let verdicts: BTreeMap<String, String> = plan["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| (s["id"].as_str().unwrap_or("").to_owned(), s["verdict"].as_str().unwrap_or("").to_owned()))
            .collect();
        for (id, want) in &e.plan {
            let got = verdicts.get(id).map_or("(no such step)", String::as_str);
            if got != want {
                run.failures.push(format!("plan verdict of {id}: expected {want}, got {got}"));
            }
        }
        printed.push(out);
        printed.push(err);
    }
    let state_arg = state.display().to_string();
    let (code, out, err) = engine(&["run", "--yes", "--format", "json", "--state-dir", &state_arg])?;
    let events: Vec<serde_json::Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    let mut failed_at = None;
    for ev in &events {
        let step = ev["step"].as_str().unwrap_or("").to_owned();
        match ev["event"].as_str() {
            Some("step_finished") => {
                let outcome = ev["outcome"].as_str().unwrap_or("").to_owned();
                if outcome == "failed" {
                    failed_at = Some(step.clone());
                }
                // Why a step failed is part of what it showed.
                if let Some(error) = ev["error"].as_str() {
                    let text = outputs.entry(step.clone()).or_default();
                    text.push_str(error);
                    text.push('\n');
                }
                run.steps.insert(step, outcome);
            }
            Some("output") | Some("message") => {
                let line = ev["line"].as_str().or(ev["text"].as_str()).unwrap_or("");
                let text = outputs.entry(step).or_default();
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    for s in runbook.step_digests() {
        run.steps.entry(s.id).or_insert_with(|| "not_run".into());
    }
    let outcome = match code {
        0 => "succeeded",
        1 => "failed",
        2 | 3 => "refused",
        130 => "interrupted",
        _ => "crashed",
    };
    let why = || format!("\n{}", crate::format::diagnostic::indent(err.trim_end()));
    if let Some(want) = &e.outcome
        && want != outcome
    {
        run.failures.push(format!("outcome: expected {want}, got {outcome} (exit code {code}){}", why()));
    }
    if let Some(want) = &e.failed_at
        && failed_at.as_deref() != Some(want.as_str())
    {
        run.failures
            .push(format!("failed at: expected {want}, got {}", failed_at.as_deref().unwrap_or("no failed step")));
    }
    let mut step_diff = String::new();
    for (id, want) in &e.steps {
        let got = run.steps.get(id).map_or("(no such step)", String::as_str);
        if got != want {
            let _ = writeln!(step_diff, "  - {id}: {want}\n  + {id}: {got}");
        }
    }
    if !step_diff.is_empty() {
        run.failures.push(format!("step outcomes (- expected, + actual):\n{}", step_diff.trim_end()));
    }
    for (id, wants) in &e.output {
        let got = outputs.get(id).map_or("", String::as_str);
        for want in wants {
            if !got.contains(want.as_str()) {
                run.failures.push(format!(
                    "output of {id}: expected it to contain {want:?}; it was:\n{}",
                    crate::format::diagnostic::indent(got.trim_end())
                ));
            }
        }
    }
    printed.push(out);
    printed.push(err);
    let calls = fake::calls(&log);
    check_files(root, &native, &e.files, &mut run.failures);
    check_calls(&calls, &e.calls, root, &spelled, &mut run.failures);
    for call in calls.iter().filter(|c| c.response.is_none()) {
        run.failures
            .push(format!("{} was called with {:?}, and no response of the test answers that", call.fake, call.args));
    }
    if case.rollback {
        let (code, out, err) = engine(&["rollback", "--yes", "--format", "json", "--state-dir", &state_arg])?;
        let mut ended = None;
        for ev in out.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
            if ev["event"] == "undo_finished" && ev["outcome"] == "done" {
                run.undone.insert(ev["step"].as_str().unwrap_or("").to_owned());
            }
            if ev["event"] == "rollback_finished" {
                ended = ev["outcome"].as_str().map(str::to_owned);
            }
        }
        // A partial rollback (a step that cannot be undone, such as a manual one) went to its
        // end; whether it left the start is what the tree says.
        if !matches!(ended.as_deref(), Some("complete" | "partial")) {
            let how = ended.unwrap_or_else(|| format!("exit code {code}"));
            run.failures.push(format!("rollback: {how}\n{}", crate::format::diagnostic::indent(err.trim_end())));
        }
        let now = tree(root);
        let diff = tree_diff(&start, &now);
        if !diff.is_empty() {
            run.failures.push(format!("after rollback the tree is not the start (- start, + now):\n{diff}"));
        }
        printed.push(out);
        printed.push(err);
    }
    if e.secrets_absent != Some(false) {
        printed.extend(tree(&state).into_values().map(|b| String::from_utf8_lossy(&b).into_owned()));
        for (name, value) in &secrets {
            if value.len() >= 3 && printed.iter().any(|p| p.contains(value.as_str())) {
                run.failures.push(format!("the secret `{name}` appears in runbook's output or journal"));
            }
        }
    }
    Ok(())
}

/// A path of the sandbox, refused when it would reach outside it.
fn inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components().any(|c| matches!(c, std::path::Component::ParentDir | std::path::Component::Prefix(_)))
    {
        return Err(format!("`{rel}` reaches outside the sandbox: give a path relative to it"));
    }
    Ok(p.components().fold(root.to_path_buf(), |acc, c| match c {
        std::path::Component::Normal(part) => acc.join(part),
        _ => acc,
    }))
}

/// An absolute path moved under the sandbox by the test file's `roots:` (the longest prefix
/// that matches; drive letters and `\`/`/` compared loosely).
fn rerooted(value: &str, roots: &IndexMap<String, String>, root: &Path) -> Result<Option<String>, String> {
    // A path in the sandbox already (the sandbox itself may be on `C:`) stays.
    if value.is_empty() || !outside(value, root) {
        return Ok(None);
    }
    let v = value.replace('\\', "/");
    let best = roots
        .iter()
        .map(|(prefix, folder)| (prefix.replace('\\', "/"), folder))
        .filter(|(prefix, _)| v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix))
        .max_by_key(|(prefix, _)| prefix.len());
    let Some((prefix, folder)) = best else { return Ok(None) };
    let base = inside(root, folder)?;
    let rest = v[prefix.len()..].trim_start_matches('/');
    let moved = rest.split('/').filter(|p| !p.is_empty()).fold(base, |acc, part| acc.join(part));
    Ok(Some(moved.display().to_string()))
}

/// Whether an input's path value names something outside the sandbox.
fn outside(value: &str, root: &Path) -> bool {
    let v = value.replace('\\', "/");
    let absolute =
        v.starts_with('/') || (v.len() > 2 && v.as_bytes()[1] == b':' && v.as_bytes()[0].is_ascii_alphabetic());
    if !absolute {
        return Path::new(value).components().any(|c| matches!(c, std::path::Component::ParentDir));
    }
    let root = root.display().to_string().replace('\\', "/");
    let (v, root) = if cfg!(windows) { (v.to_lowercase(), root.to_lowercase()) } else { (v, root) };
    !(v == root || v.starts_with(&format!("{root}/")))
}

fn write_spec(root: &Path, path: &str, spec: &FileSpec) -> Result<(), String> {
    let target = inside(root, path.trim_end_matches('/'))?;
    let (dir, bytes) = match spec {
        _ if path.ends_with('/') => (true, Vec::new()),
        FileSpec::Text(t) => (false, t.clone().into_bytes()),
        FileSpec::Spec(b) if b.dir => (true, Vec::new()),
        FileSpec::Spec(b) => {
            let bytes = if let Some(b64) = &b.base64 {
                decode_base64(b64).ok_or_else(|| format!("the base64 of {path} cannot be read"))?
            } else {
                let text = b.content.clone().unwrap_or_default();
                match &b.encoding {
                    Some(enc) => {
                        fake::encoded(&crate::compile::testfile::OutputSpec::Encoded { text, encoding: enc.clone() })?
                    }
                    None => text.into_bytes(),
                }
            };
            (false, bytes)
        }
    };
    if dir {
        return std::fs::create_dir_all(&target).map_err(|e| format!("cannot make {path}: {e}"));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot make the folder of {path}: {e}"))?;
    }
    std::fs::write(&target, bytes).map_err(|e| format!("cannot write {path}: {e}"))
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Every file (and empty folder, as `path/`) under `root`, with its bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut any = false;
        for e in entries.filter_map(Result::ok) {
            any = true;
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string().replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
        if !any && dir != root {
            let rel = dir.strip_prefix(root).unwrap_or(dir).display().to_string().replace('\\', "/");
            out.insert(format!("{rel}/"), Vec::new());
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn tree_diff(start: &BTreeMap<String, Vec<u8>>, now: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = String::new();
    for (p, b) in start {
        match now.get(p) {
            None => {
                let _ = writeln!(out, "  - {p}");
            }
            Some(n) if n != b => {
                let _ = writeln!(out, "  ~ {p} (content differs)");
            }
            Some(_) => {}
        }
    }
    for p in now.keys().filter(|p| !start.contains_key(*p)) {
        let _ = writeln!(out, "  + {p}");
    }
    out.trim_end().to_owned()
}

fn check_files(root: &Path, native: &str, files: &IndexMap<String, testfile::FileExpect>, failures: &mut Vec<String>) {
    for (path, want) in files {
        let Ok(target) = inside(root, path) else {
            failures.push(format!("file {path}: outside the sandbox"));
            continue;
        };
        let bytes = std::fs::read(&target).ok();
        let exists = target.exists();
        if let Some(should) = want.exists
            && should != exists
        {
            failures.push(format!(
                "file {path}: expected it {}, it {}",
                if should { "to exist" } else { "missing" },
                if exists { "exists" } else { "is missing" }
            ));
            continue;
        }
        let text = bytes.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        if let Some(content) = &want.content {
            let content = content.replace("{sandbox}", native);
            match &text {
                Some(t) if *t == content => {}
                Some(t) => failures.push(format!("file {path}: content differs\n{}", text_diff(&content, t))),
                None => failures.push(format!("file {path}: expected content {content:?}, it is missing")),
            }
        }
        if let Some(part) = &want.contains
            && !text.as_deref().is_some_and(|t| t.contains(part.as_str()))
        {
            failures.push(format!(
                "file {path}: expected it to contain {part:?}; it is {:?}",
                text.unwrap_or_else(|| "missing".into())
            ));
        }
        if let Some(sha) = &want.sha256 {
            let got = bytes.as_deref().map(sha256_hex);
            if got.as_deref() != Some(sha.to_ascii_lowercase().as_str()) {
                failures.push(format!(
                    "file {path}: expected sha256 {sha}, got {}",
                    got.unwrap_or_else(|| "(missing)".into())
                ));
            }
        }
    }
}

/// Two texts line by line, expected (`-`) over actual (`+`).
fn text_diff(expected: &str, actual: &str) -> String {
    let mut out: Vec<String> = expected.lines().map(|l| format!("  - {l}")).collect();
    out.extend(actual.lines().map(|l| format!("  + {l}")));
    if expected.trim_end_matches('\n') == actual.trim_end_matches('\n') {
        out.push("  (they differ only in the newline at the end)".into());
    }
    out.join("\n")
}

fn check_calls(
    calls: &[Call],
    expected: &IndexMap<String, testfile::CallsExpect>,
    root: &Path,
    sandbox: &str,
    failures: &mut Vec<String>,
) {
    for (name, want) in expected {
        let got: Vec<&Call> = calls.iter().filter(|c| c.fake == *name).collect();
        let shown = || {
            if got.is_empty() {
                "  (no calls)".to_string()
            } else {
                got.iter()
                    .map(|c| {
                        format!("  + {:?} in {}", c.args, c.cwd.replace('\\', "/").replacen(sandbox, "{sandbox}", 1))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        if let Some(count) = want.count
            && got.len() != count
        {
            failures.push(format!("calls of {name}: expected {count}, got {}:\n{}", got.len(), shown()));
        }
        if let Some(args) = &want.args {
            let same = args.len() == got.len()
                && args.iter().zip(&got).all(|(m, c)| testfile::args_match(m, &c.args, sandbox));
            if !same {
                let expected: Vec<String> = args
                    .iter()
                    .map(|m| format!("  - [{}]", m.iter().map(ArgMatch::describe).collect::<Vec<_>>().join(", ")))
                    .collect();
                failures.push(format!(
                    "arguments of {name}'s calls (- expected, + actual):\n{}\n{}",
                    expected.join("\n"),
                    shown()
                ));
            }
        }
        if let Some(cwd) = &want.cwd {
            let want_dir = inside(root, cwd).map(|p| p.display().to_string().replace('\\', "/")).unwrap_or_default();
            for c in &got {
                let here = c.cwd.replace('\\', "/");
                let same = if cfg!(windows) { here.eq_ignore_ascii_case(&want_dir) } else { here == want_dir };
                if !same {
                    let shown = |p: &str| p.replacen(sandbox, "{sandbox}", 1);
                    failures.push(format!("{name} ran in {}, expected {}", shown(&here), shown(&want_dir)));
                }
            }
        }
        if let Some(stdin) = &want.stdin {
            for c in &got {
                if c.stdin != *stdin {
                    failures.push(format!("{name} read {:?} on its standard input, expected {stdin:?}", c.stdin));
                }
            }
        }
    }
}

/// What the cases exercised of one runbook.
struct Coverage {
    runbook: String,
    /// Each item (`step X run`, `when of X true`, …) and whether a case saw it.
    items: Vec<(String, bool)>,
}

impl Coverage {
    fn percent(&self) -> f64 {
        if self.items.is_empty() {
            return 100.0;
        }
        100.0 * self.items.iter().filter(|(_, seen)| *seen).count() as f64 / self.items.len() as f64
    }
}

fn coverage(
    loaded: &[Loaded],
    runbooks: &[std::sync::Arc<Runbook>],
    results: &BTreeMap<(usize, usize), CaseRun>,
) -> Vec<Coverage> {
    let mut by_runbook: BTreeMap<String, (usize, Vec<&CaseRun>)> = BTreeMap::new();
    for ((fi, _), r) in results {
        let entry = by_runbook.entry(runbooks[*fi].name.clone()).or_insert((*fi, Vec::new()));
        entry.1.push(r);
    }
    let _ = loaded;
    by_runbook
        .into_values()
        .map(|(fi, runs)| {
            let rb = &runbooks[fi];
            let seen = |id: &str, outcomes: &[&str]| {
                runs.iter().any(|r| r.steps.get(id).is_some_and(|o| outcomes.contains(&o.as_str())))
            };
            let mut items = Vec::new();
            for step in &rb.steps {
                let id = step.id.as_str();
                items.push((format!("step {id} run"), seen(id, &["done", "unchanged", "failed"])));
                if step.when.is_some() {
                    items.push((format!("when of {id} true"), seen(id, &["done", "unchanged", "failed"])));
                    items.push((format!("when of {id} false"), seen(id, &["skipped"])));
                }
                if matches!(step.action, Action::ExpectOutput(_) | Action::Assert(_)) {
                    items.push((format!("expect {id} passing"), seen(id, &["done", "unchanged"])));
                    items.push((format!("expect {id} failing"), seen(id, &["failed"])));
                } else if !matches!(step.action, Action::Fail(_) | Action::Log(_)) {
                    items.push((format!("step {id} failed"), seen(id, &["failed"])));
                }
                let undoable = step.undo.is_some()
                    || matches!(
                        step.action,
                        Action::Copy(_)
                            | Action::Rename(_)
                            | Action::Mkdir(_)
                            | Action::Remove { .. }
                            | Action::Write { .. }
                    );
                if undoable {
                    items.push((format!("undo of {id}"), runs.iter().any(|r| r.undone.contains(id))));
                }
            }
            Coverage { runbook: rb.name.clone(), items }
        })
        .collect()
}

fn coverage_text(coverage: &[Coverage]) -> String {
    let mut out = String::from("\nCoverage\n");
    for c in coverage {
        let _ = writeln!(
            out,
            "  {}: {:.0}% ({} of {})",
            c.runbook,
            c.percent(),
            c.items.iter().filter(|(_, s)| *s).count(),
            c.items.len()
        );
        for (item, seen) in &c.items {
            let _ = writeln!(out, "    [{}] {item}", if *seen { "x" } else { " " });
        }
    }
    out
}

fn text(loaded: &[Loaded], results: &BTreeMap<(usize, usize), CaseRun>) -> String {
    let mut out = String::new();
    for (fi, file) in loaded.iter().enumerate() {
        let runs: Vec<&CaseRun> = results.iter().filter(|((f, _), _)| *f == fi).map(|(_, r)| r).collect();
        if runs.is_empty() {
            continue;
        }
        let failed = runs.iter().filter(|r| !r.failures.is_empty()).count();
        let _ = writeln!(
            out,
            "{} ({}): {} passed, {failed} failed",
            file.path.display(),
            file.file.runbook,
            runs.len() - failed
        );
        for r in runs {
            let mark = if r.failures.is_empty() { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {mark} {} ({})", r.name, crate::cli::ui::duration(r.duration));
            for f in &r.failures {
                for (i, line) in f.lines().enumerate() {
                    let _ = writeln!(out, "       {}{line}", if i == 0 { "" } else { "  " });
                }
            }
        }
    }
    out
}

fn json(loaded: &[Loaded], results: &BTreeMap<(usize, usize), CaseRun>, coverage: &[Coverage]) -> String {
    let files: Vec<serde_json::Value> = loaded
        .iter()
        .enumerate()
        .map(|(fi, f)| {
            let cases: Vec<serde_json::Value> = results
                .iter()
                .filter(|((i, _), _)| *i == fi)
                .map(|(_, r)| serde_json::json!({"name": r.name, "passed": r.failures.is_empty(), "failures": r.failures, "duration_ms": r.duration.as_millis() as u64, "steps": r.steps}))
                .collect();
            serde_json::json!({"file": f.path.display().to_string(), "runbook": f.file.runbook, "cases": cases})
        })
        .collect();
    let coverage: Vec<serde_json::Value> = coverage
        .iter()
        .map(|c| serde_json::json!({"runbook": c.runbook, "percent": (c.percent() * 10.0).round() / 10.0, "items": c.items.iter().map(|(i, s)| serde_json::json!({"item": i, "seen": s})).collect::<Vec<_>>()}))
        .collect();
    let failed = results.values().filter(|r| !r.failures.is_empty()).count();
    serde_json::to_string_pretty(
        &serde_json::json!({"passed": results.len() - failed, "failed": failed, "files": files, "coverage": coverage}),
    )
    .expect("a report serializes")
}

/// JUnit: a test suite per test file, a test case per case.
fn report(loaded: &[Loaded], results: &BTreeMap<(usize, usize), CaseRun>) -> String {
    let mut suites = Vec::new();
    for (fi, f) in loaded.iter().enumerate() {
        let cases: Vec<junit::Case> = results
            .iter()
            .filter(|((i, _), _)| *i == fi)
            .map(|(_, r)| junit::Case {
                name: r.name.clone(),
                title: f.file.runbook.clone(),
                time: r.duration,
                result: if r.failures.is_empty() {
                    junit::CaseResult::Passed
                } else {
                    junit::CaseResult::Failed(r.failures.join("\n"))
                },
                output: None,
            })
            .collect();
        suites.push((f.path.display().to_string(), cases));
    }
    junit::render_suites(&suites, &Masker::default())
}
