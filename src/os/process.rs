//! Every child process the engine starts goes through here: a process group of its own (Unix) or
//! a Job Object (Windows), output streamed and captured (bounded), decoded, a timeout, and a stop
//! of the whole tree on timeout or interruption: gently first (SIGTERM, or Ctrl-Break on
//! Windows), then for good after a grace period (SIGKILL, or `TerminateJobObject`).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
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

/// The extensions a bare program name is tried with, in order (`PATHEXT` on Windows, where a
/// name without an extension is never run as is); empty elsewhere.
fn program_extensions() -> &'static [String] {
    static EXTENSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
        if !cfg!(windows) {
            return Vec::new();
        }
        let raw = std::env::var("PATHEXT").ok().filter(|v| !v.trim().is_empty());
        pathext_list(raw.as_deref().unwrap_or(".COM;.EXE;.BAT;.CMD"))
    });
    &EXTENSIONS
}

fn pathext_list(raw: &str) -> Vec<String> {
    raw.split(';').map(str::trim).filter(|e| e.starts_with('.') && e.len() > 1).map(str::to_owned).collect()
}

/// The names tried for `program`, as cmd.exe tries them: with `extensions` (PATHEXT), a name
/// that has an extension is tried as is first, then with each one appended; a name without one
/// only with each one appended. Without extensions (Unix), just the name.
fn candidate_names(program: &str, extensions: &[String]) -> Vec<String> {
    if extensions.is_empty() {
        return vec![program.to_owned()];
    }
    let has_extension = Path::new(program).extension().is_some();
    let mut names = Vec::with_capacity(extensions.len() + 1);
    if has_extension {
        names.push(program.to_owned());
    }
    names.extend(extensions.iter().map(|e| format!("{program}{e}")));
    names
}

/// Finds the program as the Windows command prompt would: a bare name in `cwd` first, then on
/// `PATH`, each with the `PATHEXT` extensions on Windows; a name with a separator relative to
/// `cwd`. `exists` says whether a file is there (the plan asks its overlay, a run the disk), so
/// a plan and a run find the same program.
pub fn resolve_program(program: &str, cwd: &Path, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let extensions = program_extensions();
    let p = Path::new(program);
    let first_in = |dir: Option<&Path>| {
        candidate_names(program, extensions)
            .into_iter()
            .map(|n| dir.map_or_else(|| PathBuf::from(&n), |d| d.join(&n)))
            .find(|c| exists(c))
    };
    if p.is_absolute() {
        return first_in(None);
    }
    if program.contains(['/', '\\']) {
        return first_in(Some(cwd)).map(|c| crate::os::path::native(&c.to_string_lossy()));
    }
    first_in(Some(cwd)).or_else(|| search_path(program, extensions))
}

/// A bare name on `PATH`, looked up once per process: PATH does not change during a run,
/// and a runbook of many steps runs the same few programs again and again.
fn search_path(program: &str, extensions: &[String]) -> Option<PathBuf> {
    static CACHE: LazyLock<std::sync::Mutex<std::collections::HashMap<String, Option<PathBuf>>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(program.to_owned())
        .or_insert_with(|| {
            let path = std::env::var_os("PATH")?;
            let names = candidate_names(program, extensions);
            std::env::split_paths(&path).find_map(|dir| names.iter().map(|n| dir.join(n)).find(|c| is_executable(c)))
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

/// Runs a command to completion. `started` is told the process id as soon as it runs; `on_line`
/// sees each decoded output line as it arrives.
pub fn run(spec: &Spec, started: &mut dyn FnMut(u32), on_line: &mut dyn FnMut(Pipe, &str)) -> io::Result<Captured> {
    #[cfg(unix)]
    return unix::run(spec, started, on_line);
    #[cfg(not(unix))]
    return portable::run(spec, started, on_line);
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
    let mut child = cmd.spawn()?;
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

/// Process groups on Unix: the command leads a group of its own; a signal to the group reaches
/// everything it started that stayed in it.
#[cfg(unix)]
mod group {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    pub fn prepare(cmd: &mut Command) {
        cmd.process_group(0);
    }

    pub fn raw_arg(cmd: &mut Command, text: &str) {
        cmd.arg(text);
    }

    pub struct Group {
        pid: i32,
    }

    impl Group {
        pub fn adopt(child: &std::process::Child) -> std::io::Result<Group> {
            Ok(Group { pid: child.id() as i32 })
        }

        /// SIGTERM to the whole group.
        pub fn stop_gently(&self) {
            self.signal(libc::SIGTERM);
        }

        /// SIGKILL to the whole group.
        pub fn kill(&self) {
            self.signal(libc::SIGKILL);
        }

        /// The command ended by itself: what it left running in the background stays, as
        /// after any command run from a shell.
        pub fn release(self) {}

        fn signal(&self, signal: i32) {
            // SAFETY: kill(2) with a negative pid signals the process group we created for the
            // child; it has no memory-safety preconditions.
            unsafe {
                libc::kill(-self.pid, signal);
            }
        }
    }
}

/// Job Objects on Windows: the command is started suspended, put in a job of its own (which
/// everything it starts inherits), then resumed, so not even its first instruction runs outside
/// the job. The job is made to kill its processes when its last handle closes, which is also what
/// happens when the engine itself is killed.
#[cfg(windows)]
mod group {
    use std::io;
    use std::os::windows::io::AsRawHandle;
    use std::os::windows::process::CommandExt;
    use std::process::Command;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent};
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
    };
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation, SetInformationJobObject,
        TerminateJobObject,
    };
    use windows_sys::Win32::System::Threading::{
        CREATE_NEW_PROCESS_GROUP, CREATE_SUSPENDED, OpenThread, ResumeThread, THREAD_SUSPEND_RESUME,
    };

    pub fn prepare(cmd: &mut Command) {
        cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_SUSPENDED);
    }

    pub fn raw_arg(cmd: &mut Command, text: &str) {
        cmd.raw_arg(text);
    }

    pub struct Group {
        job: HANDLE,
        pid: u32,
    }

    // SAFETY: a job handle may be used from any thread.
    unsafe impl Send for Group {}

    impl Group {
        pub fn adopt(child: &std::process::Child) -> io::Result<Group> {
            // SAFETY: creating an unnamed job with default security.
            let job = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
            if job.is_null() {
                return Err(io::Error::last_os_error());
            }
            let group = Group { job, pid: child.id() };
            group.set_kill_on_close(true)?;
            // SAFETY: both handles are valid: the job just created, the child's process handle.
            if unsafe { AssignProcessToJobObject(job, child.as_raw_handle() as HANDLE) } == 0 {
                return Err(io::Error::last_os_error());
            }
            resume_threads(group.pid)?;
            Ok(group)
        }

        fn set_kill_on_close(&self, on: bool) -> io::Result<()> {
            // SAFETY: a zeroed JOBOBJECT_EXTENDED_LIMIT_INFORMATION is a valid "no limits" value.
            let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
            if on {
                info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            }
            // SAFETY: the pointer and size describe `info`, of the class named.
            let ok = unsafe {
                SetInformationJobObject(
                    self.job,
                    JobObjectExtendedLimitInformation,
                    (&raw const info).cast(),
                    std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                )
            };
            if ok == 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
        }

        /// Ctrl-Break to the command's process group (it has a console of ours to receive it).
        pub fn stop_gently(&self) {
            // SAFETY: no pointers; fails harmlessly without a shared console.
            unsafe {
                GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, self.pid);
            }
        }

        /// Ends every process in the job.
        pub fn kill(&self) {
            // SAFETY: the job handle is valid for the life of `self`.
            unsafe {
                TerminateJobObject(self.job, 1);
            }
        }

        /// The command ended by itself: what it left running in the background stays, as after
        /// any command run from a prompt.
        pub fn release(self) {
            let _ = self.set_kill_on_close(false);
        }
    }

    impl Drop for Group {
        fn drop(&mut self) {
            // SAFETY: closing the handle this value owns; with kill-on-close still set, this
            // ends whatever is left in the job.
            unsafe {
                CloseHandle(self.job);
            }
        }
    }

    /// Resumes the threads of a process started suspended (there is one, its main thread).
    fn resume_threads(pid: u32) -> io::Result<()> {
        // SAFETY: a snapshot of the system's threads; the handle is closed below.
        let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
        if snapshot == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: THREADENTRY32 is plain data; dwSize is set as the API requires.
        let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
        entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        let mut resumed = 0;
        // SAFETY: `entry` is valid and sized; the snapshot handle is valid.
        let mut more = unsafe { Thread32First(snapshot, &mut entry) } != 0;
        while more {
            if entry.th32OwnerProcessID == pid {
                // SAFETY: opening, resuming and closing a thread of the child we started.
                unsafe {
                    let thread = OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID);
                    if !thread.is_null() {
                        if ResumeThread(thread) != u32::MAX {
                            resumed += 1;
                        }
                        CloseHandle(thread);
                    }
                }
            }
            // SAFETY: as above.
            more = unsafe { Thread32Next(snapshot, &mut entry) } != 0;
        }
        // SAFETY: closing the snapshot handle we own.
        unsafe {
            CloseHandle(snapshot);
        }
        if resumed == 0 {
            return Err(io::Error::other("the command was started but could not be resumed"));
        }
        Ok(())
    }
}

/// The longest line passed on live.
const MAX_LINE: usize = 64 * 1024;

/// One output stream being read: decoded incrementally, split into lines, kept bounded.
/// Line ends are kept as `\n` whatever the program wrote (`\r\n` on Windows), so expectations and
/// templates read the same text on every system.
struct Reader<R> {
    stream: Pipe,
    source: Option<R>,
    decoder: encoding_rs::Decoder,
    text: String,
    line: String,
    /// The last chunk ended in `\r`: held back until we know whether `\n` follows.
    held_cr: bool,
    kept: Bounded,
}

impl<R: Read> Reader<R> {
    fn new(stream: Pipe, source: Option<R>, encoding: &'static encoding_rs::Encoding) -> Reader<R> {
        Reader {
            stream,
            source,
            decoder: encoding.new_decoder_with_bom_removal(),
            text: String::new(),
            line: String::new(),
            held_cr: false,
            kept: Bounded::default(),
        }
    }

    /// Reads what is available (the fd is ready); at end of stream, flushes and closes.
    fn read(&mut self, buf: &mut [u8], on_line: &mut dyn FnMut(Pipe, &str)) {
        let Some(source) = &mut self.source else { return };
        let n = match source.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        let last = n == 0;
        self.text.clear();
        if std::mem::take(&mut self.held_cr) {
            self.text.push('\r');
        }
        self.text.reserve(self.decoder.max_utf8_buffer_length(n).unwrap_or(n * 3));
        let _ = self.decoder.decode_to_string(&buf[..n], &mut self.text, last);
        if !last && self.text.ends_with('\r') {
            self.text.pop();
            self.held_cr = true;
        }
        if self.text.contains("\r\n") {
            self.text = self.text.replace("\r\n", "\n");
        }
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
                on_line(self.stream, &self.line);
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

    use super::{Captured, Pipe, Reader, Spec, interrupted, kill_grace, spawn};

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
    pub(super) fn run(
        spec: &Spec,
        on_start: &mut dyn FnMut(u32),
        on_line: &mut dyn FnMut(Pipe, &str),
    ) -> io::Result<Captured> {
        let started = Instant::now();
        let super::Started { mut child, group } = spawn(spec, on_start)?;
        let mut out = Reader::new(Pipe::Stdout, child.stdout.take(), spec.encoding);
        let mut err = Reader::new(Pipe::Stderr, child.stderr.take(), spec.encoding);
        let pidfd = PidFd::open(child.id());
        let mut buf = vec![0u8; 64 * 1024];
        let mut status: Option<std::process::ExitStatus> = None;
        let mut captured = Captured::default();
        let mut killed_at: Option<Instant> = None;
        let result = loop {
            let open = out.source.is_some() || err.source.is_some();
            if !open && status.is_some() {
                break Ok(());
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
                    break Err(e);
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
                match child.try_wait() {
                    Ok(s) => status = s,
                    Err(e) => break Err(e),
                }
            }
            let timed_out = spec.timeout.is_some_and(|t| started.elapsed() > t);
            let interrupted = interrupted();
            if (timed_out || interrupted) && killed_at.is_none() {
                captured.timed_out = timed_out && !interrupted;
                captured.interrupted = interrupted;
                group.stop_gently();
                killed_at = Some(Instant::now());
            }
            if let Some(at) = killed_at
                && at.elapsed() > kill_grace()
            {
                group.kill();
                killed_at = Some(Instant::now() + Duration::from_secs(3600));
            }
            // The command is gone but something it started still holds the pipes open after a kill.
            if status.is_some() && killed_at.is_some() && (out.source.is_some() || err.source.is_some()) {
                group.kill();
            }
        };
        if let Err(e) = result {
            // Whatever went wrong with the waiting, the command must not outlive it.
            group.kill();
            let _ = child.wait();
            return Err(e);
        }
        if killed_at.is_some() {
            // Make sure nothing of the group survives.
            group.kill();
        } else {
            group.release();
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
}

/// The portable driver (Windows, where there is no poll(2) over pipes): a thread per output
/// stream, a bounded channel of lines, and the same stop of the whole group on timeout or
/// interruption.
#[cfg(any(not(unix), test))]
mod portable {
    use std::io;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::{Bounded, Captured, Pipe, Reader, Spec, interrupted, kill_grace, spawn};

    enum Event {
        Line(Pipe, String),
        Done(Pipe, Bounded),
    }

    fn reader<R: io::Read + Send + 'static>(
        stream: Pipe,
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

    pub(super) fn run(
        spec: &Spec,
        on_start: &mut dyn FnMut(u32),
        on_line: &mut dyn FnMut(Pipe, &str),
    ) -> io::Result<Captured> {
        let started = Instant::now();
        let super::Started { mut child, group } = spawn(spec, on_start)?;
        // Bounded: a command printing faster than lines are shown waits for them.
        let (tx, rx) = mpsc::sync_channel::<Event>(1024);
        let threads = [
            reader(Pipe::Stdout, child.stdout.take(), spec.encoding, tx.clone()),
            reader(Pipe::Stderr, child.stderr.take(), spec.encoding, tx),
        ];
        let mut captured = Captured::default();
        let mut open = 2;
        let mut status = None;
        let mut killed: Option<Instant> = None;
        let mut forced = false;
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
                        Pipe::Stderr => captured.stderr = kept.finish(),
                        _ => captured.stdout = kept.finish(),
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
            }
            if status.is_none() {
                match child.try_wait() {
                    Ok(s) => status = s,
                    Err(e) => {
                        group.kill();
                        let _ = child.wait();
                        return Err(e);
                    }
                }
            }
            let timed_out = spec.timeout.is_some_and(|t| started.elapsed() > t);
            if (timed_out || interrupted()) && killed.is_none() {
                captured.timed_out = timed_out && !interrupted();
                captured.interrupted = interrupted();
                group.stop_gently();
                killed = Some(Instant::now());
            }
            if let Some(at) = killed
                && !forced
                && (at.elapsed() > kill_grace() || status.is_some())
            {
                group.kill();
                forced = true;
            }
        }
        if killed.is_some() {
            group.kill();
        } else {
            for t in threads {
                let _ = t.join();
            }
            group.release();
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

    #[test]
    fn small_output_is_kept_whole() {
        let mut b = Bounded::default();
        b.push("hello\n");
        b.push("world");
        assert_eq!(b.finish(), "hello\nworld");
    }

    #[test]
    fn names_tried_follow_pathext() {
        let ext = pathext_list(".COM;.EXE; .BAT;;.CMD;bad");
        assert_eq!(ext, [".COM", ".EXE", ".BAT", ".CMD"]);
        assert_eq!(
            candidate_names("CertificateManager", &ext),
            ["CertificateManager.COM", "CertificateManager.EXE", "CertificateManager.BAT", "CertificateManager.CMD"]
        );
        assert_eq!(candidate_names("tool.exe", &ext)[..2], ["tool.exe".to_string(), "tool.exe.COM".to_string()]);
        assert_eq!(candidate_names("tool", &[]), ["tool"]);
    }

    /// Line ends split between reads, and `\r\n`, read as `\n`; a lone `\r` stays.
    #[test]
    fn crlf_is_read_as_lf_across_reads() {
        let chunks: Vec<&[u8]> = vec![b"one\r", b"\ntwo\r\nthr", b"ee\rx\r"];
        let mut lines = Vec::new();
        let mut r = Reader::new(Pipe::Stdout, Some(ChunkReader { chunks, at: 0 }), encoding_rs::UTF_8);
        let mut buf = vec![0u8; 64];
        while r.source.is_some() {
            r.read(&mut buf, &mut |_, l| lines.push(l.to_owned()));
        }
        assert_eq!(lines, ["one", "two", "three\rx\r"]);
        assert_eq!(r.kept.finish(), "one\ntwo\nthree\rx\r");
    }

    struct ChunkReader<'a> {
        chunks: Vec<&'a [u8]>,
        at: usize,
    }

    impl Read for ChunkReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(chunk) = self.chunks.get(self.at) else { return Ok(0) };
            self.at += 1;
            buf[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }

    #[cfg(unix)]
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

    /// Both drivers see the same lines and captures (the portable one is what Windows uses).
    #[cfg(unix)]
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

    #[cfg(unix)]
    #[test]
    fn the_portable_driver_enforces_timeouts() {
        let c =
            portable::run(&spec("sleep 30", Some(Duration::from_millis(100))), &mut |_| {}, &mut |_, _| {}).unwrap();
        assert!(c.timed_out);
        assert!(c.duration < Duration::from_secs(10));
    }
}
