//! Every child process the engine starts goes through here: a process group of its own (Unix) or
//! a Job Object (Windows), output streamed and captured (bounded), decoded, a timeout, and a stop
//! of the whole tree on timeout or interruption: gently first (SIGTERM, or Ctrl-Break on
//! Windows), then for good after a grace period (SIGKILL, or `TerminateJobObject`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use crate::os::signals::interrupted;

/// Which of a command's output pipes a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    Stdout,
    Stderr,
}

/// Keeps this much of the start and of the end of each stream; the middle of a huge output is
/// dropped (and said so), so memory stays bounded whatever a command prints.
pub const CAPTURE_HEAD: usize = 256 * 1024;
pub const CAPTURE_TAIL: usize = 256 * 1024;

/// How long a command's tree gets between the gentle stop and the kill; read once.
pub fn kill_grace() -> Duration {
    static GRACE: LazyLock<Duration> = LazyLock::new(|| {
        std::env::var("RUNBOOK_KILL_GRACE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(5), Duration::from_millis)
    });
    *GRACE
}

/// The shell a `shell` step uses when it names none.
pub const DEFAULT_SHELL: &str = if cfg!(windows) { "cmd" } else { "sh" };

#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Text appended to the command line exactly as typed, after `args` (Windows: the script
    /// of `cmd /S /C "..."`, which cmd reads itself instead of by the C runtime's rules).
    /// Elsewhere it is an ordinary last argument.
    pub raw_tail: Option<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub stdin: Option<String>,
    pub encoding: &'static encoding_rs::Encoding,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub interrupted: bool,
    pub duration: Duration,
}

mod group;
mod lookup;
#[cfg(any(not(unix), test))]
mod portable;
mod reader;
#[cfg(unix)]
mod unix;

pub use lookup::resolve_program;
use reader::Reader;

/// Runs a command to completion. `started` is told the process id as soon as it runs; `on_line`
/// sees each decoded output line as it arrives.
pub fn run(spec: &Spec, started: &mut dyn FnMut(u32), on_line: &mut dyn FnMut(Pipe, &str)) -> io::Result<Captured> {
    #[cfg(unix)]
    return unix::run(spec, started, on_line);
    #[cfg(not(unix))]
    return portable::run(spec, started, on_line);
}

/// Starts a command. On Windows a process creation that fails with "internal error" (a transient
/// refusal seen under Wine when many processes start at once) is tried again, briefly.
fn spawn_retrying(cmd: &mut Command) -> io::Result<std::process::Child> {
    const ERROR_INTERNAL_ERROR: i32 = 1359;
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(ERROR_INTERNAL_ERROR) && tries < 3 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20 * tries));
            }
            other => return other,
        }
    }
}

/// Stops a command that outlives its time limit or is interrupted: gently first (SIGTERM, or
/// Ctrl-Break), for good once the grace period is over or the command itself has gone (what it
/// started may still hold its output open).
struct Stopper {
    started: std::time::Instant,
    timeout: Option<Duration>,
    gently_at: Option<std::time::Instant>,
    forced: bool,
}

impl Stopper {
    fn new(timeout: Option<Duration>) -> Stopper {
        Stopper { started: std::time::Instant::now(), timeout, gently_at: None, forced: false }
    }

    /// Called on each turn of a driver's loop; says in `captured` why the command was stopped.
    fn tick(&mut self, group: &group::Group, captured: &mut Captured, exited: bool) {
        if self.gently_at.is_none() {
            let timed_out = self.timeout.is_some_and(|t| self.started.elapsed() > t);
            let interrupted = interrupted();
            if timed_out || interrupted {
                captured.timed_out = timed_out && !interrupted;
                captured.interrupted = interrupted;
                group.stop_gently();
                self.gently_at = Some(std::time::Instant::now());
            }
        }
        if let Some(at) = self.gently_at
            && !self.forced
            && (exited || at.elapsed() > kill_grace())
        {
            group.kill();
            self.forced = true;
        }
    }

    /// Whether the command was stopped (rather than ending by itself).
    fn stopped(&self) -> bool {
        self.gently_at.is_some()
    }

    /// How long since it started.
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// An error met while a command ran (after it started): said so, and that it was stopped.
fn lost_track(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("lost track of it while it ran ({e}), so it was stopped"))
}

/// A started command and the group that holds it and everything it starts.
struct Started {
    child: std::process::Child,
    group: group::Group,
}

/// Starts the command: pipes for its output, stdin fed from a thread, in a group of its own.
fn spawn(spec: &Spec, started: &mut dyn FnMut(u32)) -> io::Result<Started> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(tail) = &spec.raw_tail {
        group::raw_arg(&mut cmd, tail);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    group::prepare(&mut cmd);
    let mut child = spawn_retrying(&mut cmd)?;
    let group = match group::Group::adopt(&child) {
        Ok(group) => group,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    if let (Some(text), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    started(child.id());
    crate::os::hooks::point("command-running");
    Ok(Started { child, group })
}

/// The two Unix drivers against each other (the portable one is what Windows uses).
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn spec(script: &str, timeout: Option<Duration>) -> Spec {
        Spec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            raw_tail: None,
            env: vec![],
            cwd: std::env::temp_dir(),
            stdin: None,
            encoding: encoding_rs::UTF_8,
            timeout,
        }
    }

    /// Both drivers see the same lines and captures.
    #[test]
    fn both_drivers_agree() {
        let s = spec("echo one; echo two >&2; printf 'three'; exit 3", None);
        let mut lines_unix = Vec::new();
        let a = unix::run(&s, &mut |_| {}, &mut |st, l| lines_unix.push((st, l.to_owned()))).unwrap();
        let mut lines_portable = Vec::new();
        let b = portable::run(&s, &mut |_| {}, &mut |st, l| lines_portable.push((st, l.to_owned()))).unwrap();
        lines_unix.sort_by(|x, y| x.1.cmp(&y.1));
        lines_portable.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(lines_unix, lines_portable);
        assert_eq!((a.stdout.as_str(), a.stderr.as_str(), a.exit_code), ("one\nthree", "two\n", Some(3)));
        assert_eq!((b.stdout, b.stderr, b.exit_code), (a.stdout, a.stderr, a.exit_code));
    }

    #[test]
    fn the_portable_driver_enforces_timeouts() {
        let c =
            portable::run(&spec("sleep 30", Some(Duration::from_millis(100))), &mut |_| {}, &mut |_, _| {}).unwrap();
        assert!(c.timed_out);
        assert!(c.duration < Duration::from_secs(10));
    }
}
