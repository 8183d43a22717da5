//! Every child process the engine starts goes through here: its own process group, output
//! streamed and captured (bounded), decoded, a timeout, and a kill of the whole group on timeout
//! or interruption (SIGTERM, then SIGKILL after a grace period).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, mpsc};
use std::time::{Duration, Instant};

use crate::model::Stream;

/// Set by SIGINT/SIGTERM; long waits poll it. A second signal while it is set ends the process
/// at once with 130.
pub static INTERRUPT: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

pub fn interrupted() -> bool {
    INTERRUPT.load(Ordering::SeqCst)
}

/// Installs the SIGINT/SIGTERM handlers (once).
pub fn install_signal_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&INTERRUPT));
            let _ = signal_hook::flag::register(signal, Arc::clone(&INTERRUPT));
        }
    });
}

/// Keeps this much of the start and of the end of each stream; the middle of a huge output is
/// dropped (and said so), so memory stays bounded whatever a command prints.
pub const CAPTURE_HEAD: usize = 256 * 1024;
pub const CAPTURE_TAIL: usize = 256 * 1024;
/// How long a process group gets between SIGTERM and SIGKILL.
pub fn kill_grace() -> Duration {
    std::env::var("RUNBOOK_KILL_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
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
    /// Both streams interleaved in arrival order (bounded like each stream).
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub interrupted: bool,
    pub duration: Duration,
}

impl Captured {
    pub fn text(&self, stream: Stream) -> String {
        match stream {
            Stream::Stdout => self.stdout.clone(),
            Stream::Stderr => self.stderr.clone(),
            Stream::Any => {
                if self.stderr.is_empty() {
                    self.stdout.clone()
                } else if self.stdout.is_empty() {
                    self.stderr.clone()
                } else {
                    format!("{}\n{}", self.stdout, self.stderr)
                }
            }
        }
    }
}

/// Finds the program as the Windows command prompt would: a bare name in `cwd` first, then on
/// `PATH`; a name with a separator relative to `cwd`.
pub fn resolve_program(program: &str, cwd: &Path, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.is_absolute() {
        return exists(p).then(|| p.to_path_buf());
    }
    if program.contains(['/', '\\']) {
        let candidate = cwd.join(p);
        return exists(&candidate).then_some(candidate);
    }
    let here = cwd.join(p);
    if exists(&here) {
        return Some(here);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(p)).find(|c| exists(c) && is_executable(c))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

enum Event {
    Line(Stream, String),
    Done(Stream, Bounded),
    Exited(io::Result<std::process::ExitStatus>),
}

/// Runs a command to completion. `on_line` sees each decoded output line as it arrives.
pub fn run(spec: &Spec, on_line: &mut dyn FnMut(Stream, &str)) -> io::Result<Captured> {
    let started = Instant::now();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<Event>();
    if let (Some(text), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    let out = child.stdout.take().map(|r| reader(r, Stream::Stdout, spec.encoding, tx.clone()));
    let err = child.stderr.take().map(|r| reader(r, Stream::Stderr, spec.encoding, tx.clone()));
    let waiter = waiter(child, tx);
    crate::crash::point("command-running");
    let mut captured = Captured::default();
    let mut open = usize::from(out.is_some()) + usize::from(err.is_some());
    let mut exited = false;
    let mut killed_at: Option<Instant> = None;
    while open > 0 || !exited {
        match rx.recv_timeout(Duration::from_millis(25)) {
            Ok(Event::Line(stream, line)) => on_line(stream, &line),
            Ok(Event::Done(stream, text)) => {
                open -= 1;
                match stream {
                    Stream::Stderr => captured.stderr = text.finish(),
                    _ => captured.stdout = text.finish(),
                }
            }
            Ok(Event::Exited(status)) => {
                exited = true;
                let status = status?;
                captured.exit_code = status.code();
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    captured.signal = status.signal();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let timed_out = spec.timeout.is_some_and(|t| started.elapsed() > t);
        let interrupted = interrupted();
        if (timed_out || interrupted) && killed_at.is_none() {
            captured.timed_out = timed_out && !interrupted;
            captured.interrupted = interrupted;
            signal_group(pid, libc::SIGTERM);
            killed_at = Some(Instant::now());
        }
        if let Some(at) = killed_at
            && at.elapsed() > kill_grace()
        {
            signal_group(pid, libc::SIGKILL);
            killed_at = Some(Instant::now() + Duration::from_secs(3600));
        }
        // The command is done but something it started still holds the pipes open.
        if exited && killed_at.is_some() && open > 0 {
            signal_group(pid, libc::SIGKILL);
        }
    }
    if killed_at.is_some() {
        // Make sure nothing of the group survives.
        signal_group(pid, libc::SIGKILL);
    }
    let _ = waiter.join();
    captured.duration = started.elapsed();
    Ok(captured)
}

fn signal_group(pid: u32, signal: i32) {
    #[cfg(unix)]
    // SAFETY: kill(2) with a negative pid signals the process group we created for the child;
    // it has no memory-safety preconditions.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

fn waiter(mut child: Child, tx: mpsc::Sender<Event>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(Event::Exited(status));
    })
}

fn reader(
    mut source: impl Read + Send + 'static,
    stream: Stream,
    encoding: &'static encoding_rs::Encoding,
    tx: mpsc::Sender<Event>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut decoder = encoding.new_decoder_with_bom_removal();
        let mut buf = vec![0u8; 64 * 1024];
        let mut text = String::new();
        let mut line = String::new();
        let mut kept = Bounded::default();
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => 0,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            let last = n == 0;
            text.clear();
            text.reserve(decoder.max_utf8_buffer_length(n).unwrap_or(n * 3));
            let _ = decoder.decode_to_string(&buf[..n], &mut text, last);
            kept.push(&text);
            for c in text.chars() {
                if c == '\n' {
                    let l = std::mem::take(&mut line);
                    let _ = tx.send(Event::Line(stream, l.trim_end_matches('\r').to_owned()));
                } else if line.len() < 64 * 1024 {
                    line.push(c);
                }
            }
            if last {
                if !line.is_empty() {
                    let _ = tx.send(Event::Line(stream, std::mem::take(&mut line)));
                }
                break;
            }
        }
        let _ = tx.send(Event::Done(stream, kept));
    })
}

/// The head and tail of a stream, with a count of what was dropped between them.
#[derive(Debug, Default)]
pub struct Bounded {
    head: String,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl Bounded {
    pub fn push(&mut self, s: &str) {
        let room = CAPTURE_HEAD.saturating_sub(self.head.len());
        if room > 0 {
            let mut cut = room.min(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.head.push_str(&s[..cut]);
            if cut == s.len() {
                return;
            }
            return self.push_tail(&s.as_bytes()[cut..]);
        }
        self.push_tail(s.as_bytes());
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        self.tail.extend(bytes);
        let over = self.tail.len().saturating_sub(CAPTURE_TAIL);
        if over > 0 {
            self.tail.drain(..over);
            self.dropped += over as u64;
        }
    }

    pub fn finish(self) -> String {
        let tail: Vec<u8> = self.tail.into_iter().collect();
        let tail = String::from_utf8_lossy(&tail);
        if self.dropped == 0 {
            return self.head + &tail;
        }
        // Start the tail at a line boundary so no half line is shown.
        let tail = tail.find('\n').map_or(&*tail, |i| &tail[i + 1..]);
        format!("{}\n[… {} bytes of output not kept …]\n{tail}", self.head, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_head_and_tail() {
        let mut b = Bounded::default();
        let line = "x".repeat(1023) + "\n";
        for _ in 0..2048 {
            b.push(&line);
        }
        let out = b.finish();
        assert!(out.len() < CAPTURE_HEAD + CAPTURE_TAIL + 100);
        assert!(out.contains("bytes of output not kept"));
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut b = Bounded::default();
        b.push("hello\n");
        b.push("world");
        assert_eq!(b.finish(), "hello\nworld");
    }
}
