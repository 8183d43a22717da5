//! The few things that differ between operating systems, outside process spawning
//! (`process.rs`): who and where we are, whether a process lives, positioned reads, write-back.

use std::fs::File;

/// This machine's name.
pub fn host() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("HOSTNAME").or_else(|_| std::env::var("COMPUTERNAME")).unwrap_or_else(|_| "unknown".into())
}

/// The user running the tool.
pub fn user() -> String {
    if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).or_else(|_| std::env::var("USERNAME")) {
        return u;
    }
    #[cfg(unix)]
    // SAFETY: getuid has no preconditions.
    return format!("uid {}", unsafe { libc::getuid() });
    #[cfg(not(unix))]
    return "unknown".into();
}

/// Whether a process of this machine is still running (for reporting a stale lock).
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    // SAFETY: kill with signal 0 only checks that the process exists.
    return unsafe { libc::kill(pid as i32, 0) == 0 };
    #[cfg(not(unix))]
    {
        let _ = pid;
        // Without a cheap check, assume it lives: the OS lock is what actually decides.
        true
    }
}

/// Ends this process at once, as a crash would (the crash-test hook).
pub fn kill_self() -> ! {
    #[cfg(unix)]
    // SAFETY: sending SIGKILL to ourselves has no preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

/// Reads exactly `buf.len()` bytes at `offset`, without moving a shared file position.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match file.seek_read(&mut buf[done..], offset + done as u64)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => done += n,
            }
        }
        Ok(())
    }
}

/// Starts writing a range of a file to disk without waiting (Linux); elsewhere a no-op.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: sync_file_range only schedules writeback of a range of a file we own.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    let _ = (file, offset, len);
}
