//! The Unix driver: one thread, poll(2) over both pipes and a pidfd; the command runs in a
//! process group of its own, so a kill reaches everything it started.

use std::io;
use std::os::fd::AsRawFd;

use super::{Captured, Pipe, Reader, Spec, Stopper, spawn};

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
    let mut stopper = Stopper::new(spec.timeout);
    let super::Started { mut child, group } = spawn(spec, on_start)?;
    let mut out = Reader::new(Pipe::Stdout, child.stdout.take(), spec.encoding);
    let mut err = Reader::new(Pipe::Stderr, child.stderr.take(), spec.encoding);
    let pidfd = PidFd::open(child.id());
    let mut buf = vec![0u8; 64 * 1024];
    let mut status: Option<std::process::ExitStatus> = None;
    let mut captured = Captured::default();
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
        if let Some(e) = crate::os::hooks::failure("wait") {
            break Err(e);
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
        stopper.tick(&group, &mut captured, status.is_some());
    };
    if let Err(e) = result {
        // Whatever went wrong with the waiting, the command must not outlive it.
        group.kill();
        let _ = child.wait();
        return Err(super::lost_track(e));
    }
    if stopper.stopped() {
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
    captured.duration = stopper.elapsed();
    Ok(captured)
}
