//! Who and where we are, whether a process lives, positioned reads, write-back, and the crash
//! hook's way of dying.

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
    std::env::var("COMPUTERNAME").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| "unknown".into())
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

/// Whether a process of this machine is still running. Pid 0 is never a process we recorded
/// (on Unix, `kill(0, 0)` would ask about our own process group instead).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
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
        // SAFETY: opening a process by id for a query; the handle is closed below.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            return false;
        }
        let mut code = 0u32;
        // SAFETY: `handle` is valid and `code` is ours to write.
        let ok = unsafe { GetExitCodeProcess(handle, &mut code) };
        // SAFETY: closing the handle opened above.
        unsafe {
            CloseHandle(handle);
        }
        ok != 0 && code == STILL_ACTIVE as u32
    }
}

/// The exit code a process killed by the crash hook shows on Windows (Unix shows SIGKILL).
pub const KILLED_EXIT_CODE: u32 = 137;

/// Ends this process at once, as a crash would (the crash-test hook): SIGKILL on Unix,
/// `TerminateProcess` on Windows. No destructor, buffer flush or handler runs.
pub fn kill_self() -> ! {
    #[cfg(unix)]
    // SAFETY: sending SIGKILL to ourselves has no preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    #[cfg(windows)]
    // SAFETY: terminating our own process.
    unsafe {
        use windows_sys::Win32::System::Threading::{GetCurrentProcess, TerminateProcess};
        TerminateProcess(GetCurrentProcess(), KILLED_EXIT_CODE);
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
