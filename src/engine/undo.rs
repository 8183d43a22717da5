//! Backing steps out. Before a built-in step changes anything, its effect is predicted over an
//! overlay of the disk with a [`Recorder`] (the same code the step runs, so the prediction is
//! what it will do); each change gets its inverse ([`UndoOp`]), and what it would overwrite or
//! remove is kept under the state folder first. Undoing applies the inverses newest first; each
//! is safe to apply again (a rollback killed half-way converges when run again).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::engine::fs::overlay::Overlay;
use crate::engine::fs::real::RealFs;
use crate::engine::fs::{FsError, FsView, Kind, Progress, Stat};
use crate::state::undo::{Backout, Left, LeftAt, UndoOp};

/// One change a step makes, with what was there before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing was there.
    Created {
        path: PathBuf,
        kind: Kind,
    },
    /// A file was there (`len` bytes): its content is replaced.
    Replaced {
        path: PathBuf,
        len: u64,
    },
    /// A file or a folder tree (`len` bytes in all) was there, and goes.
    Removed {
        path: PathBuf,
        kind: Kind,
        len: u64,
    },
    Moved {
        from: PathBuf,
        to: PathBuf,
    },
}

impl Change {
    /// Its inverse, as a run journals it (a plan shows it the same way); the place of a kept
    /// copy is left empty here, for the [`Keeper`] that keeps it.
    pub fn inverse(&self) -> UndoOp {
        let shown = |p: &Path| p.display().to_string();
        match self {
            Change::Created { path, kind: Kind::File } => UndoOp::RemoveFile { path: shown(path) },
            Change::Created { path, kind: Kind::Dir } => UndoOp::RemoveDir { path: shown(path) },
            Change::Moved { from, to } => UndoOp::MoveBack { from: shown(from), to: shown(to) },
            Change::Replaced { path, .. } | Change::Removed { path, kind: Kind::File, .. } => {
                UndoOp::RestoreFile { path: shown(path), backup: String::new(), sha256: String::new() }
            }
            Change::Removed { path, kind: Kind::Dir, .. } => {
                UndoOp::RestoreDir { path: shown(path), backup: String::new() }
            }
        }
    }

    /// Bytes that must be kept to undo it.
    pub fn kept_bytes(&self) -> u64 {
        match self {
            Change::Replaced { len, .. } | Change::Removed { len, .. } => *len,
            _ => 0,
        }
    }
}

/// A view that notes each change before passing it on, with what was there before it.
#[derive(Debug)]
pub struct Recorder<'a> {
    inner: &'a dyn FsView,
    changes: Mutex<Vec<Change>>,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a dyn FsView) -> Recorder<'a> {
        Recorder { inner, changes: Mutex::new(Vec::new()) }
    }

    pub fn changes(self) -> Vec<Change> {
        self.changes.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, change: Change) {
        self.changes.lock().unwrap_or_else(|e| e.into_inner()).push(change);
    }

    /// The change writing a file at `path` makes.
    fn note_file_write(&self, path: &Path) {
        match self.inner.stat(path) {
            Some(Stat { kind: Kind::File, len }) => self.note(Change::Replaced { path: path.to_owned(), len }),
            _ => self.note(Change::Created { path: path.to_owned(), kind: Kind::File }),
        }
    }

    /// Bytes in a file or a folder tree.
    fn size(&self, path: &Path) -> u64 {
        match self.inner.stat(path) {
            Some(Stat { kind: Kind::File, len }) => len,
            Some(Stat { kind: Kind::Dir, .. }) => {
                self.inner.list(path).unwrap_or_default().iter().map(|n| self.size(&path.join(n))).sum()
            }
            None => 0,
        }
    }
}

impl FsView for Recorder<'_> {
    fn stat(&self, path: &Path) -> Option<Stat> {
        self.inner.stat(path)
    }

    fn list(&self, dir: &Path) -> Result<Vec<OsString>, FsError> {
        self.inner.list(dir)
    }

    fn digest(&self, path: &Path) -> Result<String, FsError> {
        self.inner.digest(path)
    }

    fn holds(&self, path: &Path, content: &[u8]) -> Result<bool, FsError> {
        self.inner.holds(path, content)
    }

    fn copy_file(&self, from: &Path, to: &Path, digest: bool, progress: Progress) -> Result<Option<String>, FsError> {
        self.note_file_write(to);
        self.inner.copy_file(from, to, digest, progress)
    }

    fn create_dir(&self, path: &Path) -> Result<(), FsError> {
        self.note(Change::Created { path: path.to_owned(), kind: Kind::Dir });
        self.inner.create_dir(path)
    }

    fn create_dir_all(&self, path: &Path) -> Result<(), FsError> {
        let mut missing: Vec<&Path> = path.ancestors().take_while(|p| self.inner.stat(p).is_none()).collect();
        missing.reverse();
        for dir in missing {
            self.note(Change::Created { path: dir.to_owned(), kind: Kind::Dir });
        }
        self.inner.create_dir_all(path)
    }

    fn remove(&self, path: &Path, recursive: bool) -> Result<(), FsError> {
        if let Some(stat) = self.inner.stat(path) {
            self.note(Change::Removed { path: path.to_owned(), kind: stat.kind, len: self.size(path) });
        }
        self.inner.remove(path, recursive)
    }

    fn write(&self, path: &Path, content: &[u8]) -> Result<(), FsError> {
        self.note_file_write(path);
        self.inner.write(path, content)
    }

    fn rename(&self, from: &Path, to: &Path, progress: Progress) -> Result<(), FsError> {
        if let Some(Stat { kind: Kind::File, len }) = self.inner.stat(to) {
            self.note(Change::Replaced { path: to.to_owned(), len });
        }
        self.note(Change::Moved { from: from.to_owned(), to: to.to_owned() });
        self.inner.rename(from, to, progress)
    }
}

/// A fresh overlay over the disk: where a step's changes are predicted before it runs.
pub fn preview_fs() -> Overlay {
    Overlay::default()
}

/// Keeps previous contents under a run's backup folder, within a byte budget.
pub struct Keeper {
    dir: PathBuf,
    /// Bytes kept so far in this run, and the most it may keep.
    used: u64,
    limit: u64,
    next: usize,
    disk: RealFs,
}

impl Keeper {
    /// The keeper of run `run_id`'s backups (continuing the count of a resumed run).
    pub fn new(state: &Path, runbook: &str, run_id: &str, limit: u64, durable: bool) -> Keeper {
        let dir = backups_dir(state, runbook, run_id);
        let (mut used, mut next) = (0, 0);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                next += 1;
                used += tree_size(&e.path());
            }
        }
        Keeper { disk: RealFs::for_run(durable, &dir), dir, used, limit, next }
    }

    /// How a step with these changes (predicted on the disk as it is) is backed out: the inverse
    /// of each change, its previous contents kept now; or why it cannot be.
    pub fn back_out(&mut self, changes: &[Change]) -> Backout {
        if changes.is_empty() {
            return Backout::Nothing;
        }
        let needed: u64 = changes.iter().map(Change::kept_bytes).sum();
        if self.used + needed > self.limit {
            return Backout::Impossible { reason: over_limit(needed, self.limit) };
        }
        let mut ops = Vec::with_capacity(changes.len());
        for change in changes {
            match self.inverse(change) {
                Ok(op) => ops.push(op),
                Err(e) => {
                    return Backout::Impossible { reason: format!("its previous content could not be kept: {e}") };
                }
            }
        }
        self.used += needed;
        Backout::Ops { ops }
    }

    fn inverse(&mut self, change: &Change) -> Result<UndoOp, FsError> {
        Ok(match change.inverse() {
            UndoOp::RestoreFile { path, .. } => {
                // A file an earlier change of this step created is not on the disk yet.
                if std::fs::metadata(&path).map(|m| !m.is_file()).unwrap_or(true) {
                    return Ok(UndoOp::RemoveFile { path });
                }
                let backup = self.slot()?;
                let sha = self.disk.copy_file(Path::new(&path), &backup, true, &mut |_, _| {})?.unwrap_or_default();
                UndoOp::RestoreFile { path, backup: backup.display().to_string(), sha256: sha }
            }
            UndoOp::RestoreDir { path, .. } => {
                let backup = self.slot()?;
                copy_tree(&self.disk, Path::new(&path), &backup)?;
                UndoOp::RestoreDir { path, backup: backup.display().to_string() }
            }
            op => op,
        })
    }

    /// A new place in the backup folder.
    fn slot(&mut self) -> Result<PathBuf, FsError> {
        self.disk.create_dir_all(&self.dir)?;
        self.next += 1;
        Ok(self.dir.join(format!("{:04}", self.next)))
    }
}

/// Why a step's previous contents cannot be kept.
pub fn over_limit(needed: u64, limit: u64) -> String {
    format!(
        "keeping what it replaces ({}) would pass the backup limit of {} a run (--backup-limit)",
        human_bytes(needed),
        human_bytes(limit)
    )
}

pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// Where a run's previous contents are kept.
pub fn backups_dir(state: &Path, runbook: &str, run_id: &str) -> PathBuf {
    state.join("backups").join(runbook).join(run_id)
}

fn tree_size(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(path).map(|d| d.flatten().map(|e| tree_size(&e.path())).sum()).unwrap_or(0)
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Copies a folder tree (verified file by file).
fn copy_tree(disk: &RealFs, from: &Path, to: &Path) -> Result<(), FsError> {
    disk.create_dir(to)?;
    for name in disk.list(from)? {
        let (f, t) = (from.join(&name), to.join(&name));
        if disk.stat(&f).is_some_and(|s| s.kind == Kind::Dir) {
            copy_tree(disk, &f, &t)?;
        } else {
            disk.copy_file(&f, &t, false, &mut |_, _| {})?;
        }
    }
    Ok(())
}

/// What is at each path a step's undo touches, as the step leaves it.
pub fn left_by(backout: &Backout) -> Vec<LeftAt> {
    let Backout::Ops { ops } = backout else { return Vec::new() };
    let mut out: Vec<LeftAt> = Vec::new();
    for path in ops.iter().flat_map(UndoOp::paths) {
        if !out.iter().any(|l| l.path == path) {
            out.push(LeftAt { path: path.to_owned(), left: left_at(Path::new(path)) });
        }
    }
    out
}

pub fn left_at(path: &Path) -> Left {
    match std::fs::metadata(path) {
        Err(_) => Left::Absent,
        Ok(m) if m.is_dir() => Left::Dir,
        Ok(m) => Left::File {
            len: m.len(),
            modified_ns: m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64),
        },
    }
}

/// The paths whose state is no longer what the step left (changed since the run).
pub fn changed_since(left: &[LeftAt]) -> Vec<String> {
    left.iter().filter(|l| left_at(Path::new(&l.path)) != l.left).map(|l| l.path.clone()).collect()
}

/// Applies the inverses, newest first, through `fs`; each is done only if still needed, so
/// applying them again after an interruption is safe. Returns whether anything changed.
pub fn apply(ops: &[UndoOp], fs: &dyn FsView) -> Result<bool, FsError> {
    let mut changed = false;
    for op in ops.iter().rev() {
        changed |= apply_one(op, fs)?;
    }
    Ok(changed)
}

fn apply_one(op: &UndoOp, fs: &dyn FsView) -> Result<bool, FsError> {
    match op {
        UndoOp::RemoveFile { path } => {
            let p = Path::new(path);
            match fs.stat(p) {
                Some(Stat { kind: Kind::File, .. }) => fs.remove(p, false).map(|()| true),
                Some(_) => Err(FsError(format!("{path} is a folder now; the run created a file there"))),
                None => Ok(false),
            }
        }
        UndoOp::RemoveDir { path } => {
            let p = Path::new(path);
            match fs.stat(p) {
                Some(Stat { kind: Kind::Dir, .. }) => {
                    if !fs.list(p)?.is_empty() {
                        return Err(FsError(format!(
                            "cannot remove the folder {path} the run created: it holds files the run did not put there"
                        )));
                    }
                    fs.remove(p, false).map(|()| true)
                }
                Some(_) => Err(FsError(format!("{path} is a file now; the run created a folder there"))),
                None => Ok(false),
            }
        }
        UndoOp::RestoreFile { path, backup, sha256 } => {
            let (p, b) = (Path::new(path), Path::new(backup));
            if fs.stat(p).is_some_and(|s| s.kind == Kind::File) && fs.digest(p).ok().as_deref() == Some(sha256) {
                return Ok(false);
            }
            let kept = fs.digest(b).map_err(|e| FsError(format!("the kept copy of {path} is gone: {e}")))?;
            if kept != *sha256 {
                return Err(FsError(format!("the kept copy of {path} ({backup}) is damaged (SHA-256 differs)")));
            }
            fs.copy_file(b, p, false, &mut |_, _| {}).map(|_| true)
        }
        UndoOp::RestoreDir { path, backup } => {
            let p = Path::new(path);
            if fs.stat(p).is_some() {
                return Ok(false);
            }
            // Put together beside it, then moved into place in one step: an interrupted
            // restore leaves no half tree under the folder's name.
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let temp = crate::os::path::parent_dir(p).join(format!(".{name}.runbook-restore"));
            if fs.stat(&temp).is_some() {
                fs.remove(&temp, true)?;
            }
            restore_tree(fs, Path::new(backup), &temp)?;
            fs.rename(&temp, p, &mut |_, _| {})?;
            Ok(true)
        }
        UndoOp::MoveBack { from, to } => {
            let (f, t) = (Path::new(from), Path::new(to));
            match (fs.stat(t), fs.stat(f)) {
                (Some(_), None) => fs.rename(t, f, &mut |_, _| {}).map(|()| true),
                (None, Some(_)) => Ok(false),
                (None, None) => Err(FsError(format!("{to} is gone: it cannot be renamed back to {from}"))),
                (Some(_), Some(_)) => Err(FsError(format!("{from} exists again: {to} cannot be renamed back over it"))),
            }
        }
    }
}

fn restore_tree(fs: &dyn FsView, from: &Path, to: &Path) -> Result<(), FsError> {
    fs.create_dir(to)?;
    for name in fs.list(from)? {
        let (f, t) = (from.join(&name), to.join(&name));
        if fs.stat(&f).is_some_and(|s| s.kind == Kind::Dir) {
            restore_tree(fs, &f, &t)?;
        } else {
            fs.copy_file(&f, &t, false, &mut |_, _| {})?;
        }
    }
    Ok(())
}
