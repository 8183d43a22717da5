//! One run of a runbook at a time: an OS file lock per runbook in the state folder, with the
//! holder (pid, host, user, time) written beside it so a refusal can name it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub since: String,
    pub command: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run of `{runbook}` holds the lock: {}", describe(.holder))]
    Held { runbook: String, holder: Option<Box<Holder>> },
    #[error("cannot use the state folder {path}: {reason}")]
    StateDir { path: PathBuf, reason: String },
}

fn describe(holder: &Option<Box<Holder>>) -> String {
    match holder {
        Some(h) => format!("pid {} on {} ({}), since {}, running `{}`", h.pid, h.host, h.user, h.since, h.command),
        None => "holder unknown".into(),
    }
}

/// Held for as long as this value lives; the OS releases it if the process dies.
pub struct RunLock {
    _file: File,
    holder_path: PathBuf,
    /// A previous holder that died without releasing its record (reported, then replaced).
    pub stale: Option<Holder>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.holder_path);
    }
}

pub fn acquire(state: &Path, runbook: &str, command: &str) -> Result<RunLock, LockError> {
    let dir = state.join("locks");
    let state_err = |e: std::io::Error| LockError::StateDir {
        path: state.to_path_buf(),
        reason: crate::os::fs::io_reason_at(&dir, &e),
    };
    fs::create_dir_all(&dir).map_err(state_err)?;
    let lock_path = dir.join(format!("{runbook}.lock"));
    let holder_path = dir.join(format!("{runbook}.holder.json"));
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(state_err)?;
    let previous: Option<Holder> = fs::read(&holder_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(LockError::Held { runbook: runbook.to_owned(), holder: previous.map(Box::new) });
        }
        Err(fs::TryLockError::Error(e)) => return Err(state_err(e)),
    }
    let me = Holder {
        pid: std::process::id(),
        host: crate::state::journal::host(),
        user: crate::state::journal::user(),
        since: crate::state::journal::now(),
        command: command.to_owned(),
    };
    let mut f = File::create(&holder_path).map_err(state_err)?;
    f.write_all(&serde_json::to_vec_pretty(&me).expect("holder serializes")).map_err(state_err)?;
    let stale = previous.filter(|p| p.host == me.host && !crate::os::sys::pid_alive(p.pid));
    Ok(RunLock { _file: file, holder_path, stale })
}
