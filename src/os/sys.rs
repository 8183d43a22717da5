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

/// The user running the tool, for records people read: on Unix the account of the real user
/// id with the id (`root (uid 0)`: the environment's `USER` may be stale after `su`), on Windows
/// the account name the system logged on (`USERNAME`, with its domain when it has one).
pub fn user() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        match account_name(uid) {
            Some(name) => format!("{name} (uid {uid})"),
            None => format!("uid {uid}"),
        }
    }
    #[cfg(windows)]
    {
        let name = std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into());
        match std::env::var("USERDOMAIN") {
            Ok(domain) if !domain.is_empty() && !domain.eq_ignore_ascii_case(&host()) => format!("{domain}\\{name}"),
            _ => name,
        }
    }
}

/// The bare account name of the user running the tool (`alice`, no domain or uid), to tell
/// whether an approval is the operator's own.
pub fn account() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        account_name(uid).unwrap_or_else(|| format!("uid {uid}"))
    }
    #[cfg(windows)]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into())
    }
}

/// The name of the account `uid` in the system's user database.
#[cfg(unix)]
fn account_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: the buffers are ours and their lengths are given; `found` is set to `&pwd` or null.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Whether a process of this machine is still running. Pid 0 is never a process we recorded
/// (on Unix, `kill(0, 0)` would ask about our own process group instead), and a process that
/// has ended but not been reaped yet (a zombie) has ended.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    #[cfg(target_os = "linux")]
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some(after_name) = stat.rfind(')').map(|i| &stat[i + 1..])
        && after_name.trim_start().starts_with(['Z', 'X'])
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

/// When a process started, in the system's own units (Linux: clock ticks since boot; Windows:
/// its creation time), so that a pid reused by a later process is told apart. `None` where the
/// system does not say.
pub fn process_start(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_name = &stat[stat.rfind(')')? + 1..];
        after_name.split_whitespace().nth(19)?.parse().ok()
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{CloseHandle, FILETIME};
        use windows_sys::Win32::System::Threading::{GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};
        // SAFETY: a query handle opened and closed here; the FILETIMEs are ours to write.
        unsafe {
            let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
            if handle.is_null() {
                return None;
            }
            let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
            let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
            let ok = GetProcessTimes(handle, &mut created, &mut exited, &mut kernel, &mut user);
            CloseHandle(handle);
            (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
        }
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = pid;
        None
    }
}

/// What tells this boot of the machine from the next: the kernel's boot id on Linux, the time the
/// system started (to the second) elsewhere. A journal that was not synced may have lost its tail
/// when the boot it was written in has ended. `RUNBOOK_TEST_BOOT_ID` stands in for it in tests.
pub fn boot_id() -> Option<String> {
    if let Ok(id) = std::env::var("RUNBOOK_TEST_BOOT_ID") {
        return Some(id);
    }
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_owned())
    }
    #[cfg(windows)]
    {
        // SAFETY: no arguments; returns milliseconds since the system started.
        let up = unsafe { windows_sys::Win32::System::SystemInformation::GetTickCount64() };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(format!("started {}", now.as_secs().saturating_sub(up / 1000)))
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        None
    }
}

/// Whether two boot ids name the same boot (a start time may be a second off, read twice).
pub fn same_boot(a: &str, b: &str) -> bool {
    match (a.strip_prefix("started "), b.strip_prefix("started ")) {
        (Some(x), Some(y)) => match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.abs_diff(y) <= 2,
            _ => a == b,
        },
        _ => a == b,
    }
}

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
        // 137, as a shell reports a process killed by SIGKILL.
        TerminateProcess(GetCurrentProcess(), 137);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_0_is_never_a_running_process() {
        assert!(!pid_alive(0));
        assert!(pid_alive(std::process::id()));
    }

    /// A command that ended but that nobody reaped yet has ended.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_zombie_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
            assert!(std::time::Instant::now() < until, "the child never ended");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!pid_alive(pid));
        let _ = child.wait();
    }
}
