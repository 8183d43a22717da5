//! Interruption: Ctrl-C and SIGTERM on Unix; Ctrl-C, Ctrl-Break and closing the console window on
//! Windows. Each sets one flag that long waits poll, so every system takes the same path: the
//! running command's tree is stopped, the step is journaled as interrupted, and the exit code is
//! 130. A second interruption while the first is being handled ends the process at once with 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// Set when an interruption arrives.
pub static INTERRUPT: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

pub fn interrupted() -> bool {
    INTERRUPT.load(Ordering::SeqCst)
}

/// Installs the handlers (once).
pub fn install_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        imp::install();
        if let Some(trigger) = crate::os::hooks::interrupt_trigger() {
            watch(trigger);
        }
    });
}

/// The test hook's stand-in for Ctrl-C: the flag is set when `trigger` appears.
fn watch(trigger: std::path::PathBuf) {
    std::thread::spawn(move || {
        while !trigger.exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        INTERRUPT.store(true, Ordering::SeqCst);
    });
}

#[cfg(unix)]
mod imp {
    use std::sync::Arc;

    use super::INTERRUPT;

    pub fn install() {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&INTERRUPT));
            let _ = signal_hook::flag::register(signal, Arc::clone(&INTERRUPT));
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use windows_sys::Win32::Foundation::{FALSE, TRUE};
    use windows_sys::Win32::System::Console::{
        CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT, SetConsoleCtrlHandler,
    };

    use super::INTERRUPT;

    /// Runs on a thread of its own that Windows starts for the event.
    unsafe extern "system" fn on_control(kind: u32) -> windows_sys::core::BOOL {
        match kind {
            CTRL_C_EVENT | CTRL_BREAK_EVENT => {
                if INTERRUPT.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
                TRUE
            }
            CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => {
                // Windows ends the process when this returns (or after a few seconds): give the
                // engine that time to stop the command and journal the interruption.
                INTERRUPT.store(true, Ordering::SeqCst);
                let until = Instant::now() + Duration::from_secs(4);
                while Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
                TRUE
            }
            _ => FALSE,
        }
    }

    pub fn install() {
        // SAFETY: registering a handler function with the signature the API expects.
        unsafe {
            SetConsoleCtrlHandler(Some(on_control), TRUE);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Ctrl-C and Ctrl-Break set the flag the run polls; other events are not ours.
        #[test]
        fn control_events_interrupt() {
            // SAFETY: calling the handler as Windows would, on this thread.
            unsafe {
                assert_eq!(on_control(CTRL_BREAK_EVENT), TRUE);
                assert!(super::super::interrupted());
                INTERRUPT.store(false, Ordering::SeqCst);
                assert_eq!(on_control(CTRL_C_EVENT), TRUE);
                assert!(super::super::interrupted());
                INTERRUPT.store(false, Ordering::SeqCst);
                assert_eq!(on_control(99), FALSE);
                assert!(!super::super::interrupted());
            }
        }
    }
}
