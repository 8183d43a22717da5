//! The disk. A copy or a write goes to a temporary name beside its target, is synced (and a copy
//! verified), then replaces the target in one step, so the target's name never holds a partial
//! file, even when the disk fills up or the engine is killed. At `process` durability nothing is
//! synced (the steps are still atomic and verified); at `full`, a rename's folder is synced at
//! once, or by the run journal's sync that follows when one file system commit covers both.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{FsError, FsView, Kind, Progress, Stat};
use crate::format::digest::{file_sha256, hex};
use crate::os::path::parent_dir;

const BUF: usize = 1 << 20;
/// How much a large copy writes before asking the disk to start on it.
const WRITEBACK_WINDOW: u64 = 16 << 20;

/// Files at most this large are copied in one read and checked by reading them back whole.
const SMALL: u64 = BUF as u64;

#[derive(Debug)]
pub struct RealFs {
    /// Files and renames are synced before a step counts as done.
    durable: bool,
    /// When the journal's sync, which follows every step, also makes a rename in a folder
    /// durable (same file system, metadata committed in order).
    ordering: crate::os::fs::Ordering,
    /// Folders already cleared of the temporary files an interrupted engine left (once each).
    swept: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
    started: std::time::SystemTime,
}

impl Default for RealFs {
    fn default() -> RealFs {
        RealFs::with(true, crate::os::fs::Ordering::default())
    }
}

impl RealFs {
    /// The disk for a run: `durable` or not, with its journal in `journal_dir`.
    pub fn for_run(durable: bool, journal_dir: &Path) -> RealFs {
        let ordering = if durable { crate::os::fs::Ordering::of(journal_dir) } else { Default::default() };
        RealFs::with(durable, ordering)
    }

    fn with(durable: bool, ordering: crate::os::fs::Ordering) -> RealFs {
        RealFs { durable, ordering, swept: Default::default(), started: std::time::SystemTime::now() }
    }

    /// A new temporary file beside `target` (see [`crate::os::fs::create_temp_beside`]), once
    /// its folder is clear of what an interrupted copy left.
    fn temp_beside(&self, target: &Path) -> io::Result<(PathBuf, File)> {
        let dir = parent_dir(target);
        let first = self.swept.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_path_buf());
        if first {
            crate::os::fs::remove_stale_temps(dir, self.started);
        }
        crate::os::fs::create_temp_beside(target)
    }

    /// Moves a finished temporary file into place, durably as the run needs.
    fn replace(&self, temp: &Path, to: &Path) -> io::Result<()> {
        if self.durable && self.ordering.covers(parent_dir(to)) {
            crate::os::fs::replace_file_unsynced(temp, to)
        } else {
            crate::os::fs::replace_file(temp, to, self.durable)
        }
    }
}

impl FsView for RealFs {
    fn stat(&self, path: &Path) -> Option<Stat> {
        let meta = fs::metadata(path).ok()?;
        Some(Stat { kind: if meta.is_dir() { Kind::Dir } else { Kind::File }, len: meta.len() })
    }

    fn list(&self, dir: &Path) -> Result<Vec<OsString>, FsError> {
        let entries = fs::read_dir(dir).map_err(|e| FsError::io("cannot read", dir, &e))?;
        let mut names: Vec<OsString> = entries.filter_map(Result::ok).map(|e| e.file_name()).collect();
        names.sort();
        Ok(names)
    }

    fn digest(&self, path: &Path) -> Result<String, FsError> {
        file_sha256(path).map_err(|e| FsError::io("cannot read", path, &e))
    }

    fn holds(&self, path: &Path, content: &[u8]) -> Result<bool, FsError> {
        if fs::metadata(path).is_ok_and(|m| m.len() != content.len() as u64) {
            return Ok(false);
        }
        let existing = fs::read(path).map_err(|e| FsError::io("cannot read", path, &e))?;
        Ok(existing == content)
    }

    fn copy_file(&self, from: &Path, to: &Path, _: bool, progress: Progress) -> Result<Option<String>, FsError> {
        let (temp, file) = self.temp_beside(to).map_err(|e| FsError::io("cannot write in", parent_dir(to), &e))?;
        let result = write_verified(from, file, &temp, self.durable, progress).and_then(|sha| {
            self.replace(&temp, to).map_err(|e| FsError::io("cannot move the copy into place at", to, &e))?;
            Ok(sha)
        });
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map(Some)
    }

    fn create_dir(&self, path: &Path) -> Result<(), FsError> {
        fs::create_dir(path).map_err(|e| FsError::io("cannot create", path, &e))
    }

    fn create_dir_all(&self, path: &Path) -> Result<(), FsError> {
        fs::create_dir_all(path).map_err(|e| {
            FsError(format!("cannot create {}: {}", path.display(), crate::os::fs::io_reason_at(path, &e)))
        })
    }

    fn remove(&self, path: &Path, recursive: bool) -> Result<(), FsError> {
        let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        crate::os::fs::retry_while_shared(&[path], || match (is_dir, recursive) {
            (true, true) => fs::remove_dir_all(path),
            (true, false) => fs::remove_dir(path),
            (false, _) => fs::remove_file(path),
        })
        .map_err(|e| FsError::io("cannot remove", path, &e))
    }

    fn write(&self, path: &Path, content: &[u8]) -> Result<(), FsError> {
        let (temp, mut f) = self.temp_beside(path).map_err(|e| FsError::io("cannot write in", parent_dir(path), &e))?;
        let result = (|| {
            f.write_all(content)?;
            if self.durable {
                f.sync_data()?;
            }
            drop(f);
            self.replace(&temp, path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(FsError::io("cannot write", path, &e));
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path, progress: Progress) -> Result<(), FsError> {
        let is_file = fs::metadata(from).is_ok_and(|m| m.is_file());
        let renamed = if is_file {
            self.replace(from, to)
        } else {
            fs::rename(from, to).map(|()| {
                if self.durable && !self.ordering.covers(parent_dir(to)) {
                    crate::os::fs::sync_dir(parent_dir(to));
                }
            })
        };
        match renamed {
            Ok(()) => Ok(()),
            // Another filesystem: copy (verified), then remove the original.
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                self.copy_across(from, to, progress)?;
                self.remove(from, true).map_err(|e| FsError(format!("copied, but {e}")))
            }
            Err(e) => Err(FsError::io("cannot rename", from, &e)),
        }
    }
}

impl RealFs {
    fn copy_across(&self, from: &Path, to: &Path, progress: Progress) -> Result<(), FsError> {
        if fs::metadata(from).is_ok_and(|m| m.is_file()) {
            return self.copy_file(from, to, true, progress).map(|_| ());
        }
        self.create_dir(to)?;
        for name in self.list(from)? {
            self.copy_across(&from.join(&name), &to.join(&name), progress)?;
        }
        Ok(())
    }
}

/// A small file in one pass: read whole, written, read back and compared byte for byte (a
/// stronger check than comparing digests, without a second thread or a second open).
fn write_small(
    src: &mut File,
    from: &Path,
    dst: &mut File,
    temp: &Path,
    meta: &fs::Metadata,
    durable: bool,
    progress: Progress,
) -> Result<String, FsError> {
    let mut content = Vec::with_capacity(meta.len() as usize);
    src.read_to_end(&mut content).map_err(|e| FsError::io("cannot read the source", from, &e))?;
    dst.write_all(&content).map_err(|e| FsError::io("cannot write", temp, &e))?;
    crate::os::hooks::point("copy-chunk");
    let mut back = vec![0u8; content.len()];
    crate::os::sys::read_exact_at(dst, &mut back, 0).map_err(|e| FsError::io("cannot verify", temp, &e))?;
    if back != content {
        return Err(FsError(format!("the copy of {} does not match the source", from.display())));
    }
    let _ = dst.set_permissions(meta.permissions());
    if durable {
        dst.sync_data().map_err(|e| FsError::io("cannot write", temp, &e))?;
    }
    progress(content.len() as u64, content.len() as u64);
    Ok(hex(&Sha256::digest(&content)))
}

/// Copies `from` to `temp`, hashing on the way, and verifies what was written (read back from
/// the system); synced when `durable`. Returns the source's SHA-256.
fn write_verified(
    from: &Path,
    mut dst: File,
    temp: &Path,
    durable: bool,
    progress: Progress,
) -> Result<String, FsError> {
    let mut src = crate::os::fs::open_shared(from).map_err(|e| FsError::io("cannot read the source", from, &e))?;
    let meta = src.metadata().map_err(|e| FsError::io("cannot read the source", from, &e))?;
    if meta.len() <= SMALL {
        return write_small(&mut src, from, &mut dst, temp, &meta, durable, progress);
    }
    // The copy is read back and hashed while it is written, on a second thread: verifying
    // then costs no extra pass. The check covers what the kernel will write, not the disk
    // surface (which fdatasync and the filesystem answer for).
    let reader = File::open(temp).map_err(|e| FsError::io("cannot verify", temp, &e))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, usize)>(8);
    let verifier = std::thread::spawn(move || -> io::Result<String> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BUF];
        for (offset, len) in rx {
            crate::os::sys::read_exact_at(&reader, &mut buf[..len], offset)?;
            hasher.update(&buf[..len]);
        }
        Ok(hex(&hasher.finalize()))
    });
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut offset = 0u64;
    let mut written_back = 0u64;
    let total = meta.len();
    let copied = (|| {
        loop {
            let n = src.read(&mut buf).map_err(|e| FsError::io("cannot read the source", from, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            dst.write_all(&buf[..n]).map_err(|e| FsError::io("cannot write", temp, &e))?;
            let _ = tx.send((offset, n));
            offset += n as u64;
            if offset - written_back >= WRITEBACK_WINDOW {
                // Start the disk on what is written, so the final sync has little left.
                crate::os::sys::start_writeback(&dst, written_back, offset - written_back);
                written_back = offset;
            }
            progress(offset, total);
            crate::os::hooks::point("copy-chunk");
        }
        if durable { dst.sync_data().map_err(|e| FsError::io("cannot write", temp, &e)) } else { Ok(()) }
    })();
    drop(tx);
    let written = verifier.join().map_err(|_| FsError("the verification of the copy failed".into()))?;
    copied?;
    let _ = dst.set_permissions(meta.permissions());
    drop(dst);
    let expected = hex(&hasher.finalize());
    let written = written.map_err(|e| FsError::io("cannot verify", temp, &e))?;
    if written != expected {
        return Err(FsError(format!("the copy of {} does not match the source (SHA-256 differs)", from.display())));
    }
    Ok(expected)
}
