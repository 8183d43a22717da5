//! The integration tests' helper program: what they would otherwise ask of `sh`, `cat`, `printf`
//! or `sleep`, the same on Linux and Windows. Its arguments are a list of commands, run in order:
//!
//! ```text
//! echo WORD...            print the rest of the arguments, space-separated (ends the list)
//! out TEXT / err TEXT     print a line on stdout / stderr
//! bytes HEX               write raw bytes on stdout (e.g. Shift_JIS text)
//! exit CODE               exit with that code
//! sleep MS                wait
//! write FILE TEXT         write TEXT and a newline to FILE (replacing it)
//! append FILE TEXT        add TEXT and a newline to FILE
//! touch FILE              create FILE if it is missing
//! rm FILE / rmdir DIR     remove a file / an empty folder
//! mkdir DIR               create a folder (its parent must exist)
//! mv FROM TO              rename FROM to TO
//! cat FILE                print FILE (a missing file: a message on stderr, exit 1)
//! stdin                   copy stdin to stdout
//! env NAME                print an environment variable
//! pwd                     print the working folder
//! whoami                  print this program's own path (which copy of it ran)
//! wait-for FILE           wait until FILE exists
//! if-missing FILE         go on only if FILE does not exist (else exit 0)
//! wait-journaled          wait until a journal under `.runbook/runs` records this process
//! count FILE N            add one to the number in FILE; exit 1 while it is below N
//! pidfile FILE            write this process's id to FILE
//! spawn-sleep MS PIDFILE  start another helper that writes its pid and sleeps, and go on
//! ignore-interrupts       ignore SIGTERM (Unix) or Ctrl-C and Ctrl-Break (Windows)
//! kill-parent             kill the process that started this one, at once
//! measure PROGRAM ARG...  run PROGRAM (stdin, stderr passed through), print its peak memory in
//!                         KiB on stdout (0 where not measured), exit with its code (ends the list)
//! ```

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

fn main() {
    let mut args: std::collections::VecDeque<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout();
    while let Some(command) = args.pop_front() {
        let mut next =
            |what: &str| -> String { args.pop_front().unwrap_or_else(|| fail(&format!("{what}: missing argument"))) };
        match command.as_str() {
            "echo" => {
                let rest: Vec<String> = args.drain(..).collect();
                let _ = writeln!(out, "{}", rest.join(" "));
            }
            "out" => {
                let _ = writeln!(out, "{}", next("out"));
            }
            "err" => {
                let _ = out.flush();
                eprintln!("{}", next("err"));
            }
            "bytes" => {
                let hex = next("bytes");
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap_or_else(|_| fail("bytes: bad hex")))
                    .collect();
                let _ = out.write_all(&bytes);
            }
            "exit" => {
                let _ = out.flush();
                std::process::exit(next("exit").parse().unwrap_or_else(|_| fail("exit: not a number")));
            }
            "sleep" => std::thread::sleep(Duration::from_millis(number(&next("sleep")))),
            "write" => {
                let (file, text) = (next("write"), next("write"));
                std::fs::write(&file, format!("{text}\n")).unwrap_or_else(|e| fail(&format!("write {file}: {e}")));
            }
            "append" => {
                let (file, text) = (next("append"), next("append"));
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file)
                    .unwrap_or_else(|e| fail(&format!("append {file}: {e}")));
                let _ = writeln!(f, "{text}");
            }
            "rm" => {
                let file = next("rm");
                std::fs::remove_file(&file).unwrap_or_else(|e| fail(&format!("rm {file}: {e}")));
            }
            "rmdir" => {
                let dir = next("rmdir");
                std::fs::remove_dir(&dir).unwrap_or_else(|e| fail(&format!("rmdir {dir}: {e}")));
            }
            "mkdir" => {
                let dir = next("mkdir");
                std::fs::create_dir(&dir).unwrap_or_else(|e| fail(&format!("mkdir {dir}: {e}")));
            }
            "mv" => {
                let (from, to) = (next("mv"), next("mv"));
                std::fs::rename(&from, &to).unwrap_or_else(|e| fail(&format!("mv {from} {to}: {e}")));
            }
            "touch" => {
                let file = next("touch");
                let _ = std::fs::OpenOptions::new().create(true).append(true).open(&file);
            }
            "cat" => {
                let file = next("cat");
                match std::fs::read(&file) {
                    Ok(bytes) => {
                        let _ = out.write_all(&bytes);
                    }
                    Err(e) => {
                        eprintln!("helper: cannot read {file}: {e}");
                        std::process::exit(1);
                    }
                }
            }
            "stdin" => {
                let mut buf = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut buf);
                let _ = out.write_all(&buf);
            }
            "env" => {
                let _ = writeln!(out, "{}", std::env::var(next("env")).unwrap_or_default());
            }
            "whoami" => {
                let _ = writeln!(out, "{}", std::env::current_exe().unwrap().display());
            }
            "pwd" => {
                let _ = writeln!(out, "{}", std::env::current_dir().unwrap().display());
            }
            "wait-for" => {
                let file = next("wait-for");
                while !Path::new(&file).exists() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            "wait-journaled" => {
                let me = format!("\"pid\":{}", std::process::id());
                let journaled = || {
                    let runs = std::fs::read_dir(".runbook/runs").into_iter().flatten().flatten();
                    runs.flat_map(|r| std::fs::read_dir(r.path()).into_iter().flatten().flatten())
                        .any(|j| std::fs::read_to_string(j.path()).is_ok_and(|t| t.contains(&me)))
                };
                while !journaled() {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            "if-missing" => {
                if Path::new(&next("if-missing")).exists() {
                    let _ = out.flush();
                    std::process::exit(0);
                }
            }
            "count" => {
                let (file, at_least) = (next("count"), number(&next("count")));
                let n = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0) + 1;
                std::fs::write(&file, format!("{n}\n")).unwrap_or_else(|e| fail(&format!("count {file}: {e}")));
                if n < at_least {
                    let _ = out.flush();
                    std::process::exit(1);
                }
            }
            "pidfile" => {
                let file = next("pidfile");
                std::fs::write(&file, std::process::id().to_string()).unwrap_or_else(|e| fail(&format!("{file}: {e}")));
            }
            "spawn-sleep" => {
                let (ms, pidfile) = (next("spawn-sleep"), next("spawn-sleep"));
                // Left running on purpose: the tests check that the engine stops it.
                #[allow(clippy::zombie_processes)]
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args(["pidfile", &pidfile, "sleep", &ms])
                    .spawn()
                    .unwrap_or_else(|e| fail(&format!("spawn: {e}")));
                // The pid file is there before this helper goes on, so a test can wait for it.
                while !Path::new(&pidfile).exists() {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            "ignore-interrupts" => sys::ignore_interrupts(),
            "measure" => {
                let program = next("measure");
                let rest: Vec<String> = args.drain(..).collect();
                let (code, peak_kb) = sys::measure(&program, &rest);
                let _ = writeln!(out, "{peak_kb}");
                let _ = out.flush();
                std::process::exit(code);
            }
            "kill-parent" => {
                let _ = out.flush();
                sys::kill_parent();
            }
            other => fail(&format!("unknown command `{other}`")),
        }
    }
}

fn number(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| fail(&format!("`{text}` is not a number")))
}

fn fail(message: &str) -> ! {
    eprintln!("helper: {message}");
    std::process::exit(101)
}

#[cfg(unix)]
mod sys {
    pub fn ignore_interrupts() {
        // SAFETY: setting a signal's disposition to ignore.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }

    pub fn kill_parent() {
        // SAFETY: getppid has no preconditions; kill signals the process that started us.
        unsafe {
            libc::kill(libc::getppid(), libc::SIGKILL);
        }
    }

    /// Runs a program and returns its exit code (128 + signal when killed) and its peak resident
    /// memory in KiB, from the kernel. Started from this small process, the figure is the
    /// program's own (a vfork'ed child's peak counts the memory of the process it came from).
    #[allow(clippy::zombie_processes)]
    pub fn measure(program: &str, args: &[String]) -> (i32, i64) {
        let child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| super::fail(&format!("measure: {e}")));
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it for the child we spawned.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
        (code, usage.ru_maxrss)
    }
}

#[cfg(windows)]
mod sys {
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE, TRUE};
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
    };
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_TERMINATE, TerminateProcess};

    unsafe extern "system" fn swallow(_: u32) -> windows_sys::core::BOOL {
        TRUE
    }

    pub fn measure(program: &str, args: &[String]) -> (i32, i64) {
        // Wine sometimes refuses a spawn under load ("internal error"); the engine tries again,
        // and so does this stand-in for a shell.
        let mut tries = 0;
        let status = loop {
            match std::process::Command::new(program).args(args).stdout(std::process::Stdio::null()).status() {
                Ok(status) => break status,
                Err(_) if tries < 5 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => super::fail(&format!("measure: {e}")),
            }
        };
        (status.code().unwrap_or(-1), 0)
    }

    pub fn ignore_interrupts() {
        // SAFETY: registering a handler that reports every event handled.
        unsafe {
            SetConsoleCtrlHandler(Some(swallow), TRUE);
        }
    }

    pub fn kill_parent() {
        let me = std::process::id();
        // SAFETY: a process snapshot read with a correctly sized entry, then closed.
        unsafe {
            let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
            if snapshot == INVALID_HANDLE_VALUE {
                return;
            }
            let mut entry: PROCESSENTRY32W = std::mem::zeroed();
            entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
            let mut parent = None;
            let mut more = Process32FirstW(snapshot, &mut entry) != 0;
            while more {
                if entry.th32ProcessID == me {
                    parent = Some(entry.th32ParentProcessID);
                }
                more = Process32NextW(snapshot, &mut entry) != 0;
            }
            CloseHandle(snapshot);
            if let Some(pid) = parent {
                let handle = OpenProcess(PROCESS_TERMINATE, 0, pid);
                if !handle.is_null() {
                    TerminateProcess(handle, 137);
                    CloseHandle(handle);
                }
            }
        }
    }
}
