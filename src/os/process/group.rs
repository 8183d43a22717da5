//! The group a command runs in, so that stopping it stops everything it started: a process group
//! on Unix, a Job Object on Windows.

pub use imp::*;

/// Process groups on Unix: the command leads a group of its own; a signal to the group reaches
/// everything it started that stayed in it.
#[cfg(unix)]
mod imp {
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
mod imp {
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
