//! The filesystem as a step sees it: the disk during a run ([`real::RealFs`]), or during a plan an
//! [`overlay::Overlay`] that records what earlier steps would have done, over the disk as it is.
//! Each action's effect is written once against [`FsView`] (in `engine::actions::files`), so a plan
//! and a run decide alike by construction; only the disk changes anything.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

pub mod overlay;
pub mod real;

/// The kind of thing at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// What is at a path: its kind, and a file's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub len: u64,
}

/// An operation on the filesystem that could not be done, said for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FsError(pub String);

impl FsError {
    pub fn io(what: &str, path: &Path, e: &std::io::Error) -> FsError {
        FsError(format!("{what} {}: {}", path.display(), crate::os::fs::io_reason(e)))
    }
}

/// How far a file's copy has got: bytes done, bytes in all.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// What a step may ask of the filesystem, and the changes it may make. Paths are absolute.
pub trait FsView: Send + Sync + fmt::Debug {
    /// What is at `path` (following a symbolic link), if anything.
    fn stat(&self, path: &Path) -> Option<Stat>;
    /// The names in a folder, sorted.
    fn list(&self, dir: &Path) -> Result<Vec<OsString>, FsError>;
    /// The SHA-256 of a file's content.
    fn digest(&self, path: &Path) -> Result<String, FsError>;
    /// Whether a file holds exactly `content`.
    fn holds(&self, path: &Path, content: &[u8]) -> Result<bool, FsError>;

    /// Copies the file `from` to `to`, replacing a file there; returns the digest of what was
    /// copied when asked (a run always knows it: the copy is verified).
    fn copy_file(&self, from: &Path, to: &Path, digest: bool, progress: Progress) -> Result<Option<String>, FsError>;
    /// Creates a folder whose parent exists.
    fn create_dir(&self, path: &Path) -> Result<(), FsError>;
    /// Creates a folder and its missing parents.
    fn create_dir_all(&self, path: &Path) -> Result<(), FsError>;
    /// Removes a file, or a folder (with its content when `recursive`).
    fn remove(&self, path: &Path, recursive: bool) -> Result<(), FsError>;
    /// Writes a file in one step (replacing one there).
    fn write(&self, path: &Path, content: &[u8]) -> Result<(), FsError>;
    /// Moves a file or folder; `to` is free, or a file when `from` is one.
    fn rename(&self, from: &Path, to: &Path, progress: Progress) -> Result<(), FsError>;
}

/// The kind at a path, as template functions ask it (`exists()`, `is_file()`, `is_dir()`).
pub fn kind(fs: &dyn FsView, path: &Path) -> Option<Kind> {
    fs.stat(path).map(|s| s.kind)
}
