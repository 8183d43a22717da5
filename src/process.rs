//! Every child process the engine starts goes through here: its own process group, output
//! streamed and captured (bounded), decoded, a timeout, and a kill of the whole group on timeout
//! or interruption (SIGTERM, then SIGKILL after a grace period).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

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
    search_path(program)
}

/// A bare name on `PATH`, looked up once per process: PATH does not change during a run,
/// and a runbook of many steps runs the same few programs again and again.
fn search_path(program: &str) -> Option<PathBuf> {
    static CACHE: LazyLock<std::sync::Mutex<std::collections::HashMap<String, Option<PathBuf>>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(program.to_owned())
        .or_insert_with(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path).map(|dir| dir.join(program)).find(|c| is_executable(c))
        })
        .clone()
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

/// Runs a command to completion. `on_line` sees each decoded output line as it arrives.
pub fn run(spec: &Spec, on_line: &mut dyn FnMut(Stream, &str)) -> io::Result<Captured> {
    #[cfg(unix)]
    return unix::run(spec, on_line);
    #[cfg(not(unix))]
    return portable::run(spec, on_line);
}

/// Starts the command: pipes for its output, stdin fed from a thread, its own process group.
fn spawn(spec: &Spec) -> io::Result<std::process::Child> {
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
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
    }
    let mut child = cmd.spawn()?;
    if let (Some(text), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    crate::crash::point("command-running");
    Ok(child)
}

/// The longest line passed on live.
const MAX_LINE: usize = 64 * 1024;

/// One output stream being read: decoded incrementally, split into lines, kept bounded.
struct Reader<R> {
    stream: Stream,
    source: Option<R>,
    decoder: encoding_rs::Decoder,
    text: String,
    line: String,
    kept: Bounded,
}

impl<R: Read> Reader<R> {
    fn new(stream: Stream, source: Option<R>, encoding: &'static encoding_rs::Encoding) -> Reader<R> {
        Reader {
            stream,
            source,
            decoder: encoding.new_decoder_with_bom_removal(),
            text: String::new(),
            line: String::new(),
            kept: Bounded::default(),
        }
    }

    /// Reads what is available (the fd is ready); at end of stream, flushes and closes.
    fn read(&mut self, buf: &mut [u8], on_line: &mut dyn FnMut(Stream, &str)) {
        let Some(source) = &mut self.source else { return };
        let n = match source.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        let last = n == 0;
        self.text.clear();
        self.text.reserve(self.decoder.max_utf8_buffer_length(n).unwrap_or(n * 3));
        let _ = self.decoder.decode_to_string(&buf[..n], &mut self.text, last);
        self.kept.push(&self.text);
        for piece in self.text.split_inclusive('\n') {
            let (body, complete) = match piece.strip_suffix('\n') {
                Some(body) => (body, true),
                None => (piece, false),
            };
            // A line longer than this is cut (the capture keeps all of it).
            let room = MAX_LINE.saturating_sub(self.line.len());
            let mut cut = room.min(body.len());
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            self.line.push_str(&body[..cut]);
            if complete {
                on_line(self.stream, self.line.trim_end_matches('\r'));
                self.line.clear();
            }
        }
        if last {
            if !self.line.is_empty() {
                on_line(self.stream, &self.line);
                self.line.clear();
            }
            self.source = None;
        }
    }
}

/// The Unix driver: one thread, poll(2) over both pipes and a pidfd; the command runs in a
/// process group of its own, so a kill reaches everything it started.
#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use super::{Captured, Reader, Spec, interrupted, kill_grace, spawn};
    use crate::model::Stream;

    fn raw_fd<R: AsRawFd>(r: &Reader<R>) -> Option<i32> {
        r.source.as_ref().map(|f| f.as_raw_fd())
    }

    /// A file descriptor that becomes readable when the process exits (Linux 5.3+).
    struct PidFd(i32);

    impl PidFd {
        fn open(pid: u32) -> Option<PidFd> {
            #[cfg(target_os = "linux")]
            {
                // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
                if fd >= 0 {
                    return Some(PidFd(fd as i32));
                }
            }
            let _ = pid;
            None
        }
    }

    impl Drop for PidFd {
        fn drop(&mut self) {
            // SAFETY: closing the fd this value owns.
            unsafe {
                libc::close(self.0);
            }
        }
    }

    /// Runs a command to completion. `on_line` sees each decoded output line as it arrives.
    ///
    /// One thread does it all with poll(2) over both pipes and the process's pidfd, with a short
    /// timeout to notice a time limit or an interruption. (Only feeding stdin takes a thread.)
    pub(super) fn run(spec: &Spec, on_line: &mut dyn FnMut(Stream, &str)) -> io::Result<Captured> {
        let started = Instant::now();
        let mut child = spawn(spec)?;
        let pid = child.id();
        let mut out = Reader::new(Stream::Stdout, child.stdout.take(), spec.encoding);
        let mut err = Reader::new(Stream::Stderr, child.stderr.take(), spec.encoding);
        let pidfd = PidFd::open(pid);
        let mut buf = vec![0u8; 64 * 1024];
        let mut status: Option<std::process::ExitStatus> = None;
        let mut captured = Captured::default();
        let mut killed_at: Option<Instant> = None;
        loop {
            let open = out.source.is_some() || err.source.is_some();
            if !open && status.is_some() {
                break;
            }
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
            for fd in [raw_fd(&out), raw_fd(&err)].into_iter().flatten() {
                fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
            }
            if let (None, Some(p)) = (status, &pidfd) {
                fds.push(libc::pollfd { fd: p.0, events: libc::POLLIN, revents: 0 });
            }
            // Without a pidfd, pipes closed before the exit leave nothing to poll: check often.
            let wait_ms = if !open && pidfd.is_none() { 1 } else { 25 };
            // SAFETY: fds points at fds.len() initialised pollfd structs.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for f in fds.iter().filter(|f| f.revents != 0) {
                if raw_fd(&out) == Some(f.fd) {
                    out.read(&mut buf, on_line);
                } else if raw_fd(&err) == Some(f.fd) {
                    err.read(&mut buf, on_line);
                }
            }
            if status.is_none() {
                status = child.try_wait()?;
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
            // The command is gone but something it started still holds the pipes open after a kill.
            if status.is_some() && killed_at.is_some() && (out.source.is_some() || err.source.is_some()) {
                signal_group(pid, libc::SIGKILL);
            }
        }
        if killed_at.is_some() {
            // Make sure nothing of the group survives.
            signal_group(pid, libc::SIGKILL);
        }
        let status = status.expect("the loop ends once the process has exited");
        captured.exit_code = status.code();
        {
            use std::os::unix::process::ExitStatusExt;
            captured.signal = status.signal();
        }
        captured.stdout = out.kept.finish();
        captured.stderr = err.kept.finish();
        captured.duration = started.elapsed();
        Ok(captured)
    }

    fn signal_group(pid: u32, signal: i32) {
        // SAFETY: kill(2) with a negative pid signals the process group we created for the child;
        // it has no memory-safety preconditions.
        unsafe {
            libc::kill(-(pid as i32), signal);
        }
    }
}

/// The portable driver (used where poll(2) is not available, e.g. Windows): a thread per output
/// stream, a bounded channel of lines, and a kill of the command itself on timeout or interrupt.
#[cfg(any(not(unix), test))]
mod portable {
    use std::io;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::{Bounded, Captured, Reader, Spec, interrupted, spawn};
    use crate::model::Stream;

    enum Event {
        Line(Stream, String),
        Done(Stream, Bounded),
    }

    fn reader<R: io::Read + Send + 'static>(
        stream: Stream,
        source: Option<R>,
        encoding: &'static encoding_rs::Encoding,
        tx: mpsc::SyncSender<Event>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut r = Reader::new(stream, source, encoding);
            let mut buf = vec![0u8; 64 * 1024];
            while r.source.is_some() {
                r.read(&mut buf, &mut |s, line| {
                    let _ = tx.send(Event::Line(s, line.to_owned()));
                });
            }
            let _ = tx.send(Event::Done(stream, std::mem::take(&mut r.kept)));
        })
    }

    pub(super) fn run(spec: &Spec, on_line: &mut dyn FnMut(Stream, &str)) -> io::Result<Captured> {
        let started = Instant::now();
        let mut child = spawn(spec)?;
        // Bounded: a command printing faster than lines are shown waits for them.
        let (tx, rx) = mpsc::sync_channel::<Event>(1024);
        let threads = [
            reader(Stream::Stdout, child.stdout.take(), spec.encoding, tx.clone()),
            reader(Stream::Stderr, child.stderr.take(), spec.encoding, tx),
        ];
        let mut captured = Captured::default();
        let mut open = 2;
        let mut status = None;
        let mut killed: Option<Instant> = None;
        while open > 0 || status.is_none() {
            // After a kill, something the command started may hold its output open: stop
            // waiting for it soon after the command itself is gone.
            if status.is_some() && killed.is_some_and(|at| at.elapsed() > Duration::from_secs(1)) {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(25)) {
                Ok(Event::Line(stream, line)) => on_line(stream, &line),
                Ok(Event::Done(stream, kept)) => {
                    open -= 1;
                    match stream {
                        Stream::Stderr => captured.stderr = kept.finish(),
                        _ => captured.stdout = kept.finish(),
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
            }
            if status.is_none() {
                status = child.try_wait()?;
            }
            let timed_out = spec.timeout.is_some_and(|t| started.elapsed() > t);
            if (timed_out || interrupted()) && killed.is_none() {
                captured.timed_out = timed_out && !interrupted();
                captured.interrupted = interrupted();
                let _ = child.kill();
                killed = Some(Instant::now());
            }
        }
        if killed.is_none() {
            for t in threads {
                let _ = t.join();
            }
        }
        let status = status.expect("the loop ends once the process has exited");
        captured.exit_code = status.code();
        captured.duration = started.elapsed();
        Ok(captured)
    }
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

    fn spec(script: &str, timeout: Option<Duration>) -> Spec {
        Spec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            cwd: std::env::temp_dir(),
            stdin: None,
            encoding: encoding_rs::UTF_8,
            timeout,
        }
    }

    /// Both drivers see the same lines and captures (the portable one is what Windows uses).
    #[test]
    fn both_drivers_agree() {
        let s = spec("echo one; echo two >&2; printf 'three'; exit 3", None);
        let mut lines_unix = Vec::new();
        let a = unix::run(&s, &mut |st, l| lines_unix.push((st, l.to_owned()))).unwrap();
        let mut lines_portable = Vec::new();
        let b = portable::run(&s, &mut |st, l| lines_portable.push((st, l.to_owned()))).unwrap();
        lines_unix.sort_by(|x, y| x.1.cmp(&y.1));
        lines_portable.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(lines_unix, lines_portable);
        assert_eq!((a.stdout.as_str(), a.stderr.as_str(), a.exit_code), ("one\nthree", "two\n", Some(3)));
        assert_eq!((b.stdout, b.stderr, b.exit_code), (a.stdout, a.stderr, a.exit_code));
    }

    #[test]
    fn the_portable_driver_enforces_timeouts() {
        let c = portable::run(&spec("sleep 30", Some(Duration::from_millis(100))), &mut |_, _| {}).unwrap();
        assert!(c.timed_out);
        assert!(c.duration < Duration::from_secs(10));
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut b = Bounded::default();
        b.push("hello\n");
        b.push("world");
        assert_eq!(b.finish(), "hello\nworld");
    }
}
