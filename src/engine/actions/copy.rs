//! `copy` and `rename`, idempotent by construction: a copy is written under a temporary name
//! beside the target, verified (SHA-256), then renamed into place, so the target's name never
//! holds a partial file, even when the disk fills up.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{StepError, fail};
use crate::os::fs::io_reason;
use crate::state::outcome::Outcome;

const BUF: usize = 1 << 20;
/// How much a large copy writes before asking the disk to start on it.
const WRITEBACK_WINDOW: u64 = 16 << 20;

pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut f = crate::os::fs::open_shared(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn err(what: &str, path: &Path, e: &io::Error) -> StepError {
    StepError::Failed(format!("{what} {}: {}", path.display(), io_reason(e)))
}

/// The path a copy of `from` into `to` lands at: inside `to` when it is an existing folder.
pub fn copy_target(from: &Path, to: &Path) -> PathBuf {
    match (to.is_dir(), from.file_name()) {
        (true, Some(name)) => to.join(name),
        _ => to.to_path_buf(),
    }
}

/// Copies a file or a folder; for a file, also returns the verified SHA-256 of its content.
/// Told how far a file's copy has got: bytes done, bytes in all.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

pub fn copy(
    from: &Path,
    to: &Path,
    overwrite: bool,
    progress: Progress,
) -> Result<(Outcome, Option<String>), StepError> {
    let meta = fs::metadata(from).map_err(|e| err("cannot read the source", from, &e))?;
    let target = copy_target(from, to);
    if meta.is_dir() {
        return copy_tree(from, &target, overwrite, progress).map(|o| (o, None));
    }
    copy_file(from, &target, overwrite, progress).map(|(o, sha)| (o, Some(sha)))
}

fn copy_tree(from: &Path, to: &Path, overwrite: bool, progress: Progress) -> Result<Outcome, StepError> {
    match fs::metadata(to) {
        Ok(m) if !m.is_dir() => {
            return fail(format!("{} exists and is not a folder", to.display()));
        }
        Ok(_) => {}
        Err(_) => fs::create_dir_all(to).map_err(|e| err("cannot create", to, &e))?,
    }
    let mut changed = false;
    let entries = fs::read_dir(from).map_err(|e| err("cannot read", from, &e))?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let outcome = if src.is_dir() {
            copy_tree(&src, &dst, overwrite, progress)?
        } else {
            copy_file(&src, &dst, overwrite, progress)?.0
        };
        changed |= outcome == Outcome::Done;
    }
    Ok(if changed { Outcome::Done } else { Outcome::Unchanged })
}

fn copy_file(from: &Path, target: &Path, overwrite: bool, progress: Progress) -> Result<(Outcome, String), StepError> {
    if let Ok(existing) = fs::metadata(target) {
        if existing.is_dir() {
            return fail(format!("{} is a folder", target.display()));
        }
        let source_len = fs::metadata(from).map(|m| m.len()).unwrap_or(u64::MAX);
        if existing.len() == source_len {
            let source_sha = file_sha256(from).map_err(|e| err("cannot read", from, &e))?;
            if source_sha == file_sha256(target).map_err(|e| err("cannot read", target, &e))? {
                return Ok((Outcome::Unchanged, source_sha));
            }
        }
        if !overwrite {
            return fail(crate::engine::effects::different_content(target));
        }
    }
    let dir = crate::os::path::parent_dir(target);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = temp_name(dir, &name);
    let result = write_verified(from, &temp, progress).and_then(|sha| {
        crate::os::fs::replace_file(&temp, target)
            .map_err(|e| err("cannot move the copy into place at", target, &e))?;
        Ok(sha)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map(|sha| (Outcome::Done, sha))
}

/// Copies `from` to `temp`, hashing on the way, then re-reads `temp` to verify it; returns the digest.
fn write_verified(from: &Path, temp: &Path, progress: Progress) -> Result<String, StepError> {
    let mut src = crate::os::fs::open_shared(from).map_err(|e| err("cannot read the source", from, &e))?;
    let mut dst = File::create(temp).map_err(|e| err("cannot write in", temp.parent().unwrap_or(temp), &e))?;
    // The copy is read back and hashed while it is written, on a second thread: verifying
    // then costs no extra pass. The check covers what the kernel will write, not the disk
    // surface (which fdatasync and the filesystem answer for).
    let reader = File::open(temp).map_err(|e| err("cannot verify", temp, &e))?;
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
    let total = src.metadata().map(|m| m.len()).unwrap_or(0);
    let copied = (|| {
        loop {
            let n = src.read(&mut buf).map_err(|e| err("cannot read the source", from, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            dst.write_all(&buf[..n]).map_err(|e| err("cannot write", temp, &e))?;
            let _ = tx.send((offset, n));
            offset += n as u64;
            if offset - written_back >= WRITEBACK_WINDOW {
                // Start the disk on what is written, so the final fdatasync has little left.
                crate::os::sys::start_writeback(&dst, written_back, offset - written_back);
                written_back = offset;
            }
            progress(offset, total);
            crate::os::hooks::point("copy-chunk");
        }
        dst.sync_data().map_err(|e| err("cannot write", temp, &e))
    })();
    drop(tx);
    let written = verifier.join().map_err(|_| StepError::Failed("the verification of the copy failed".into()))?;
    copied?;
    drop(dst);
    if let Ok(perm) = fs::metadata(from).map(|m| m.permissions()) {
        let _ = fs::set_permissions(temp, perm);
    }
    let expected = hex(&hasher.finalize());
    let written = written.map_err(|e| err("cannot verify", temp, &e))?;
    if written != expected {
        return fail(format!("the copy of {} does not match the source (SHA-256 differs)", from.display()));
    }
    Ok(expected)
}

pub fn rename(from: &Path, to: &Path, overwrite: bool, progress: Progress) -> Result<Outcome, StepError> {
    let from_exists = fs::symlink_metadata(from).is_ok();
    let to_exists = fs::symlink_metadata(to).is_ok();
    match (from_exists, to_exists) {
        (false, true) => return Ok(Outcome::Unchanged),
        (false, false) => return fail(format!("{} does not exist", from.display())),
        (true, true) if !overwrite => {
            return fail(format!("{} already exists; set `overwrite: true` to replace it", to.display()));
        }
        _ => {}
    }
    let renamed = if fs::metadata(from).is_ok_and(|m| m.is_file()) {
        crate::os::fs::replace_file(from, to)
    } else {
        fs::rename(from, to).map(|()| crate::os::fs::sync_dir(crate::os::path::parent_dir(to)))
    };
    match renamed {
        Ok(()) => Ok(Outcome::Done),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            copy(from, to, overwrite, progress)?;
            let removed = if from.is_dir() { fs::remove_dir_all(from) } else { fs::remove_file(from) };
            removed.map_err(|e| err("copied, but cannot remove", from, &e))?;
            Ok(Outcome::Done)
        }
        Err(e) => Err(err("cannot rename", from, &e)),
    }
}

/// The temporary name a copy or write of `name` uses beside its target. It is the same for
/// every attempt, so a retry after a crash simply replaces what the interrupted one left (runs of
/// one runbook never overlap: the run lock sees to that).
pub fn temp_name(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.runbook-tmp"))
}
