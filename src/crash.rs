//! A deterministic crash hook for the crash-convergence tests.
//!
//! `RUNBOOK_TEST_CRASH=<point>:<n>` makes the process kill itself with SIGKILL the n-th time it
//! reaches `<point>`: `before-sync` (records written to the journal's buffer, not yet on disk),
//! `after-sync` (on disk, before the next action), `copy-chunk` (in the middle of a copy) or
//! `command-running` (a command started and not finished).
//! Unset, it costs one atomic load.

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

/// Called at each crash point.
pub fn point(name: &str) {
    let Some(h) = hook() else { return };
    if h.point == name && h.seen.fetch_add(1, Ordering::SeqCst) + 1 == h.at {
        crate::sys::kill_self();
    }
}
