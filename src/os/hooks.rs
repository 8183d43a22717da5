//! Deterministic test hooks for the crash-convergence and interruption tests.
//!
//! `RUNBOOK_TEST_CRASH=<point>:<n>` makes the process kill itself (SIGKILL, or TerminateProcess)
//! the n-th time it reaches `<point>`: `before-sync` (records written to the journal's buffer,
//! not yet on disk), `after-sync` (on disk, before the next action), `copy-chunk` (in the middle
//! of a copy) or `command-running` (a command started and not finished).
//!
//! `RUNBOOK_TEST_FAIL=<point>[:<file>]` makes the operation at `<point>` fail (once `<file>`
//! exists, when one is named): `wait` (waiting for a running command), to prove that whatever
//! goes wrong while a command runs, its tree is stopped.
//!
//! `RUNBOOK_TEST_INTERRUPT_ON=<file>` interrupts the run, exactly as Ctrl-C would, once that
//! file appears: a test's way to press Ctrl-C at a moment of its choosing on a system where it
//! cannot send the console event (Windows under Wine has no console to send it through).
//!
//! Unset, they cost one atomic load. They exist only in builds with debug assertions (what
//! `cargo test` builds) or the `test-hooks` feature: a release build has none, and ignores
//! these variables whatever they say.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Hook {
    point: String,
    at: u64,
    seen: AtomicU64,
}

fn hook() -> Option<&'static Hook> {
    static HOOK: OnceLock<Option<Hook>> = OnceLock::new();
    HOOK.get_or_init(|| {
        let spec = std::env::var("RUNBOOK_TEST_CRASH").ok()?;
        let (point, at) = spec.rsplit_once(':')?;
        Some(Hook { point: point.to_owned(), at: at.parse().ok()?, seen: AtomicU64::new(0) })
    })
    .as_ref()
}

/// Whether this build has the hooks at all.
const ON: bool = cfg!(any(debug_assertions, feature = "test-hooks"));

/// Called at each crash point.
pub fn point(name: &str) {
    if !ON {
        return;
    }
    let Some(h) = hook() else { return };
    if h.point == name && h.seen.fetch_add(1, Ordering::SeqCst) + 1 == h.at {
        crate::os::sys::kill_self();
    }
}

/// An error to fail with at `name`, when the test hook asks for one there.
pub fn failure(name: &str) -> Option<std::io::Error> {
    if !ON {
        return None;
    }
    static SPEC: OnceLock<Option<String>> = OnceLock::new();
    let spec = SPEC.get_or_init(|| std::env::var("RUNBOOK_TEST_FAIL").ok()).as_deref()?;
    let (point, after) = spec.split_once(':').map_or((spec, None), |(p, f)| (p, Some(f)));
    let now = point == name && after.is_none_or(|f| std::path::Path::new(f).exists());
    now.then(|| std::io::Error::other(format!("a failure injected at `{name}`")))
}

/// The file whose appearance interrupts the run, when the test hook is set.
pub fn interrupt_trigger() -> Option<PathBuf> {
    if !ON {
        return None;
    }
    std::env::var_os("RUNBOOK_TEST_INTERRUPT_ON").map(PathBuf::from)
}
