//! The integration-test builder: runs the real `runbook` binary in a fresh temporary folder and
//! checks, every time, the exit code, stdout, stderr and the files left in the folder.
//!
//! Expectations are strict by default: stdout and stderr must be empty and the folder must hold
//! exactly the files the test wrote, unless the test says otherwise.
//!
//! The binary runs with the tests' helper programs (`helper`, `simulated-server`, built by
//! `cargo test` as examples of this crate) first on its `PATH`, so runbooks name them bare, on
//! Linux and Windows alike. Output is compared with the temporary folder shown as `[TMP]`, run
//! ids as `[RUN]`, and (on Windows) paths spelled with `/`.

#![allow(dead_code)]

use std::collections::BTreeMap;
pub mod lsp;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;

/// The binary under test, as an absolute path (under Wine the build's `/tmp/...` path must be
/// made absolute before the tests change drive).
pub fn bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::path::absolute(env!("CARGO_BIN_EXE_runbook")).expect("the binary's path"))
}

/// Where cargo puts this crate's examples: the helper programs.
pub fn helpers_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = bin().parent().expect("the binary is in a folder").join("examples");
        assert!(
            dir.join(format!("helper{}", std::env::consts::EXE_SUFFIX)).is_file(),
            "the test helpers are examples of this crate: build them with `cargo build --examples` (`cargo test` does)"
        );
        dir
    })
}

/// A helper program by name.
pub fn helper(name: &str) -> PathBuf {
    helpers_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// `PATH` with the helpers first.
pub fn path_with_helpers() -> std::ffi::OsString {
    let mut dirs = vec![helpers_dir().to_path_buf()];
    dirs.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    std::env::join_paths(dirs).expect("PATH entries")
}

/// A `runbook` command with the environment every test gives it: in `dir`, CI set, helpers on
/// PATH, no inputs or state folder inherited from the environment.
pub fn command(dir: &Path) -> Command {
    command_for(bin(), dir)
}

/// Any program, with the environment the tests give `runbook`.
pub fn command_for(program: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir)
        .env_remove("RUNBOOK_STATE_DIR")
        .env_remove("NO_COLOR")
        .env("CI", "true")
        .env("PATH", path_with_helpers());
    for (k, _) in std::env::vars() {
        if k.starts_with("RUNBOOK_INPUT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The exit code `Output::code` shows for a process killed at once (SIGKILL on Unix; the crash
/// hook's TerminateProcess code on Windows).
pub const KILLED: i32 = if cfg!(windows) { 137 } else { -1 };

/// How a stream is checked.
#[derive(Debug, Clone)]
pub enum Text {
    Exact(String),
    /// Every fragment must appear, in order.
    Contains(Vec<String>),
    /// Anything (the test checks the value it gets back).
    Any,
}

#[must_use = "a test does nothing until `.run()`"]
pub struct Test {
    pub dir: Rc<tempfile::TempDir>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    /// `None`: any exit code (the test checks it).
    code: Option<i32>,
    stdout: Text,
    stderr: Text,
    /// Expected changes to the folder: path → Some(content) created/changed, None removed.
    changes: BTreeMap<String, Option<Expected>>,
    /// Paths (prefixes) whose contents are not compared, e.g. the state folder.
    ignore: Vec<String>,
    before: BTreeMap<String, Vec<u8>>,
    /// Run as an unprivileged user (when the tests run as root), so permissions apply.
    unprivileged: bool,
}

#[derive(Debug, Clone)]
pub enum Expected {
    Bytes(Vec<u8>),
    /// The file exists; its content is checked by the test.
    Exists,
    Dir,
}

pub struct Output {
    pub code: i32,
    /// Normalized for comparison (see the module's documentation).
    pub stdout: String,
    pub stderr: String,
    /// As written, for parsing (JSON).
    pub stdout_raw: String,
    tempdir: Rc<tempfile::TempDir>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test::in_dir(Rc::new(tempfile::Builder::new().prefix("runbook-test").tempdir().expect("temp dir")))
    }

    fn in_dir(dir: Rc<tempfile::TempDir>) -> Test {
        Test {
            dir,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            code: Some(0),
            stdout: Text::Exact(String::new()),
            stderr: Text::Exact(String::new()),
            changes: BTreeMap::new(),
            ignore: vec![".runbook".into()],
            before: BTreeMap::new(),
            unprivileged: false,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Another run in the same folder (the files as they are now).
    pub fn again(&self) -> Test {
        Test::in_dir(self.dir.clone())
    }

    /// Writes a file (and its folders) before the run.
    pub fn file(self, path: &str, content: impl AsRef<[u8]>) -> Test {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, content).unwrap();
        self
    }

    /// A program of the test's own: on Unix a shell script (`unix`), on Windows a batch file
    /// (`windows`, saved as `<path>.bat`, found through PATHEXT).
    pub fn script(self, path: &str, unix: &str, windows: &str) -> Test {
        if cfg!(windows) {
            return self.file(&format!("{path}.bat"), windows.replace('\n', "\r\n"));
        }
        let t = self.file(path, unix);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(t.dir.path().join(path), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        t
    }

    pub fn mkdir(self, path: &str) -> Test {
        std::fs::create_dir_all(self.dir.path().join(path)).unwrap();
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Test {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Test {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn stdin(mut self, s: &str) -> Test {
        self.stdin = Some(s.into());
        self
    }

    pub fn code(mut self, code: i32) -> Test {
        self.code = Some(code);
        self
    }

    pub fn code_any(mut self) -> Test {
        self.code = None;
        self
    }

    pub fn stdout(mut self, s: &str) -> Test {
        self.stdout = Text::Exact(s.into());
        self
    }

    pub fn stderr(mut self, s: &str) -> Test {
        self.stderr = Text::Exact(s.into());
        self
    }

    pub fn stdout_contains<I: IntoIterator<Item = S>, S: Into<String>>(mut self, parts: I) -> Test {
        self.stdout = Text::Contains(parts.into_iter().map(Into::into).collect());
        self
    }

    pub fn stderr_contains<I: IntoIterator<Item = S>, S: Into<String>>(mut self, parts: I) -> Test {
        self.stderr = Text::Contains(parts.into_iter().map(Into::into).collect());
        self
    }

    pub fn any_stdout(mut self) -> Test {
        self.stdout = Text::Any;
        self
    }

    pub fn any_stderr(mut self) -> Test {
        self.stderr = Text::Any;
        self
    }

    /// The run creates or changes this file, with this content.
    pub fn creates(mut self, path: &str, content: impl AsRef<[u8]>) -> Test {
        self.changes.insert(path.into(), Some(Expected::Bytes(content.as_ref().to_vec())));
        self
    }

    pub fn creates_some(mut self, path: &str) -> Test {
        self.changes.insert(path.into(), Some(Expected::Exists));
        self
    }

    pub fn creates_dir(mut self, path: &str) -> Test {
        self.changes.insert(path.into(), Some(Expected::Dir));
        self
    }

    pub fn removes(mut self, path: &str) -> Test {
        self.changes.insert(path.into(), None);
        self
    }

    /// The test checks the files itself (e.g. scans all of them).
    pub fn any_files(mut self) -> Test {
        self.ignore.push("*".into());
        self
    }

    /// Do not compare what is under this path.
    pub fn ignore(mut self, prefix: &str) -> Test {
        self.ignore.push(prefix.into());
        self
    }

    /// Runs the binary as `nobody` when the tests run as root, so file permissions apply to it.
    pub fn unprivileged(mut self) -> Test {
        self.unprivileged = true;
        self
    }

    /// Compare the state folder too.
    pub fn compare_state(mut self) -> Test {
        self.ignore.retain(|p| p != ".runbook");
        self
    }

    /// Runs and checks; returns the output for further checks.
    #[track_caller]
    pub fn run(mut self) -> Output {
        self.before = tree(self.dir.path());
        let mut cmd = if self.unprivileged { unprivileged(self.dir.path()) } else { command(self.dir.path()) };
        cmd.args(&self.args)
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = spawn(&mut cmd);
        if let Some(input) = &self.stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().expect("runbook finishes");
        let dir = self.dir.path().to_path_buf();
        let norm = |b: &[u8]| normalize(&String::from_utf8_lossy(b), &dir);
        let output = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: norm(&out.stdout),
            stderr: norm(&out.stderr),
            stdout_raw: String::from_utf8_lossy(&out.stdout).into_owned(),
            tempdir: self.dir.clone(),
        };
        let context = format!(
            "runbook {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            output.stdout,
            output.stderr
        );
        assert!(!output.stderr.contains("panicked"), "the binary panicked\n{context}");
        if let Some(code) = self.code {
            assert_eq!(output.code, code, "exit code\n{context}");
        }
        check_text("stdout", &self.stdout, &output.stdout, &context);
        check_text("stderr", &self.stderr, &output.stderr, &context);
        self.check_files(&context);
        output
    }

    #[track_caller]
    fn check_files(&self, context: &str) {
        let after = tree(self.dir.path());
        let ignored = |p: &str| self.ignore.iter().any(|i| i == "*" || p == i || p.starts_with(&format!("{i}/")));
        let mut expected = self.before.clone();
        for (path, change) in &self.changes {
            match change {
                None => {
                    expected.remove(path);
                }
                Some(Expected::Bytes(b)) => {
                    expected.insert(path.clone(), b.clone());
                }
                Some(Expected::Exists) => {
                    let got =
                        after.get(path).cloned().unwrap_or_else(|| panic!("expected file {path} to exist\n{context}"));
                    expected.insert(path.clone(), got);
                }
                Some(Expected::Dir) => {
                    expected.insert(format!("{path}/"), Vec::new());
                }
            }
        }
        // A folder marker stands only for an empty folder.
        let files: Vec<String> = expected.keys().filter(|p| !p.ends_with('/')).cloned().collect();
        expected.retain(|p, _| !p.ends_with('/') || !files.iter().any(|f| f.starts_with(p.as_str())));
        let expected: BTreeMap<_, _> = expected.into_iter().filter(|(p, _)| !ignored(p)).collect();
        let after: BTreeMap<_, _> = after.into_iter().filter(|(p, _)| !ignored(p)).collect();
        if expected != after {
            let show = |m: &BTreeMap<String, Vec<u8>>| {
                m.iter().map(|(p, b)| format!("  {p}: {:?}", String::from_utf8_lossy(b))).collect::<Vec<_>>().join("\n")
            };
            panic!("files differ\nexpected:\n{}\nfound:\n{}\n{context}", show(&expected), show(&after));
        }
    }
}

impl Output {
    /// A follow-up run in the same folder.
    pub fn then(&self) -> Test {
        Test::in_dir(self.tempdir.clone())
    }

    pub fn path(&self) -> &Path {
        self.tempdir.path()
    }
}

#[track_caller]
fn check_text(name: &str, want: &Text, got: &str, context: &str) {
    match want {
        Text::Exact(s) => assert_eq!(got, s, "{name} differs\n{context}"),
        Text::Contains(parts) => {
            let mut rest = got;
            for p in parts {
                match rest.find(p.as_str()) {
                    Some(i) => rest = &rest[i + p.len()..],
                    None => panic!("{name} lacks {p:?} (in order)\n{context}"),
                }
            }
        }
        Text::Any => {}
    }
}

/// Every file (and empty folder, with a trailing `/`) below `root`, with its content.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut any = false;
        for e in entries.flatten() {
            any = true;
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
        if !any && dir != root {
            let rel = dir.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            out.insert(format!("{rel}/"), Vec::new());
        }
    }
    walk(root, root, &mut out);
    out
}

/// Makes output stable: the temp folder becomes `[TMP]`, the helpers' folder `[HELPERS]`, this
/// crate's folder `[CRATE]`, run ids `[RUN]`; on Windows, paths are spelled with `/` so one
/// expectation serves both systems.
pub fn normalize(text: &str, dir: &Path) -> String {
    // The build (commit, target, date) changes with every commit; taken out first, before a
    // Markdown-escaped target (`x86\_64`) could be taken for a Windows path.
    let build = regex::Regex::new(r"\d+\.\d+\.\d+ \(commit [0-9a-z]+, [\w\\-]+, built (?:[\d-]+|unknown)\)").unwrap();
    let mut s = build.replace_all(text, "[VERSION]").into_owned();
    let mut places = vec![
        (dir.to_path_buf(), "[TMP]"),
        (helpers_dir().to_path_buf(), "[HELPERS]"),
        (Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(), "[CRATE]"),
    ];
    if let Ok(canon) = std::fs::canonicalize(dir) {
        places.push((canon, "[TMP]"));
    }
    for (place, name) in places {
        let shown = place.display().to_string();
        s = s.replace(&shown, name);
        if cfg!(windows) {
            // Windows spells the same folder with either case, and sometimes with `/`.
            let re = regex::RegexBuilder::new(&regex::escape(&shown).replace(r"\\", r"[\\/]"))
                .case_insensitive(true)
                .build()
                .unwrap();
            s = re.replace_all(&s, name).into_owned();
        }
    }
    if cfg!(windows) {
        s = forward_slashes(&s);
    }
    let run_id = regex::Regex::new(r"\d{8}-\d{6}-\d{3}-\d+").unwrap();
    run_id.replace_all(&s, "[RUN]").into_owned()
}

/// Windows paths in `text` spelled with `/`: a path from a placeholder or a drive (its names may
/// hold spaces), and any run of name characters joined by `\`. Other backslashes (a regex's
/// `\d`, an escaped quote) stay.
fn forward_slashes(text: &str) -> String {
    static PATHS: std::sync::LazyLock<[regex::Regex; 2]> = std::sync::LazyLock::new(|| {
        [
            regex::Regex::new(r#"(?:\[TMP\]|\[HELPERS\]|\[CRATE\]|\b[A-Za-z]:)(?:\\[^\\\n"'`→]*)+"#).unwrap(),
            regex::Regex::new(r"[\w.\-\[\]]+(?:\\[\w.\-\[\]]+)+").unwrap(),
        ]
    });
    let mut s = text.to_string();
    for re in PATHS.iter() {
        s = re.replace_all(&s, |m: &regex::Captures| m[0].replace('\\', "/")).into_owned();
    }
    s
}

/// Runs the runbook as on a Japanese machine, whose console code page is CP932 (Shift_JIS): on
/// Unix the locale says so. On Windows the code page belongs to the machine (or the console),
/// not to one process: where it is 932 nothing needs doing; elsewhere (Wine in CI is a US
/// machine) the override the Japanese site file documents, `tool_encoding=shift_jis`, stands in.
pub fn japanese_console(t: Test) -> Test {
    #[cfg(windows)]
    {
        // SAFETY: no arguments; 0 when this process has no console.
        let cp = unsafe {
            match windows_sys::Win32::System::Console::GetConsoleOutputCP() {
                0 => windows_sys::Win32::Globalization::GetOEMCP(),
                cp => cp,
            }
        };
        if cp == 932 { t } else { t.args(["--var", "tool_encoding=shift_jis"]) }
    }
    #[cfg(unix)]
    t.env("LC_ALL", "ja_JP.SJIS")
}

/// The shipped files, by path from the crate root.
pub fn crate_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Processes whose working folder is inside `dir` (Linux: from /proc; elsewhere none are found,
/// and tests check the processes they know of by pid instead).
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(e.path().join("cwd"))
            && cwd.starts_with(&dir)
        {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded) until no process works inside `dir`; returns those still there.
pub fn wait_for_no_processes_in(dir: &Path) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = processes_in(dir);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A `runbook` command that runs as `nobody` when the tests run as root, so file permissions
/// apply to it.
#[cfg(unix)]
fn unprivileged(dir: &Path) -> Command {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return command(dir);
    }
    let mut cmd = command_for(&unprivileged_bin(), dir);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // SAFETY: only async-signal-safe calls (setgid, setuid) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Windows has no root to drop: the tests that need a refused permission make one themselves.
#[cfg(windows)]
fn unprivileged(dir: &Path) -> Command {
    command(dir)
}

/// A copy of the binary that an unprivileged user can run, wherever the checkout lives.
#[cfg(unix)]
fn unprivileged_bin() -> PathBuf {
    static BIN_COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN_COPY
        .get_or_init(|| {
            use std::hash::{Hash, Hasher};
            use std::os::unix::fs::PermissionsExt;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bin().hash(&mut h);
            // One folder per checkout, reused by later test runs.
            let dir = std::env::temp_dir().join(format!("runbook-test-bin-{:x}", h.finish()));
            std::fs::create_dir_all(&dir).unwrap();
            let copy = dir.join(format!("runbook-{}", std::process::id()));
            std::fs::copy(bin(), &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            let stable = dir.join("runbook");
            std::fs::rename(&copy, &stable).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            stable
        })
        .clone()
}

/// Waits (bounded) until every command a run in `dir` started (per its journal) has ended, as an
/// operator would before resuming a run whose engine was killed.
pub fn wait_for_commands(dir: &Path) {
    let mut pids = Vec::new();
    for runbook in std::fs::read_dir(dir.join(".runbook/runs")).into_iter().flatten().flatten() {
        for journal in std::fs::read_dir(runbook.path()).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(journal.path()).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains("\"command_started\"")) {
                if let Ok(record) = serde_json::from_str::<serde_json::Value>(line) {
                    pids.extend(record["pid"].as_u64().map(|p| p as u32));
                }
            }
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pids.iter().any(|&p| pid_alive(p)) {
        assert!(std::time::Instant::now() < deadline, "commands still running: {pids:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// SHA-256 in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a process of this machine is still running (one that ended but was not reaped yet,
/// a zombie, has ended).
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some(i) = stat.rfind(')')
        && stat[i + 1..].trim_start().starts_with(['Z', 'X'])
    {
        return false;
    }
    #[cfg(unix)]
    {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid as i32, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{CloseHandle, STILL_ACTIVE};
        use windows_sys::Win32::System::Threading::{
            GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
        };
        // SAFETY: a query handle opened and closed here.
        unsafe {
            let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
            if handle.is_null() {
                return false;
            }
            let mut code = 0u32;
            let ok = GetExitCodeProcess(handle, &mut code);
            CloseHandle(handle);
            ok != 0 && code == STILL_ACTIVE as u32
        }
    }
}

/// Starts a command; under Wine a process creation sometimes fails with "internal error" when
/// many start at once: it is tried again, briefly.
pub fn spawn(cmd: &mut Command) -> std::process::Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 3 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20 * tries));
            }
            Err(e) => panic!("cannot start {:?}: {e}", cmd.get_program()),
        }
    }
}

/// Runs a command to its end and returns its output (see [`spawn`]).
pub fn output(cmd: &mut Command) -> std::process::Output {
    spawn(cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()))
        .wait_with_output()
        .expect("the command finishes")
}

/// Every file (with its content) and folder under `dir`, sorted, leaving out the state folder
/// (`.runbook`) and the files named in `ignored`: to compare a whole tree before and after.
pub fn snapshot(dir: &Path, ignored: &[&str]) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
            if rel.starts_with(".runbook") || ignored.contains(&rel.as_str()) {
                continue;
            }
            if p.is_dir() {
                out.push((rel, None));
                stack.push(p);
            } else {
                out.push((rel, Some(std::fs::read(&p).unwrap())));
            }
        }
    }
    out.sort();
    out
}
