//! The file actions' effects, decided over a [`FsView`]: the same code predicts them in a plan
//! (over the overlay) and carries them out in a run (over the disk). Each is idempotent by
//! construction: what is already as asked is `unchanged`.

use std::path::{Path, PathBuf};

use super::{Done, StepError, StepResult, fail};
use crate::engine::fs::{FsView, Kind, Progress};
use crate::engine::render::Check;
use crate::os::path::{key, parent_dir};
use crate::state::outcome::{Outcome, StepData};

/// The refusal to replace a file whose content differs, and what to do about it.
pub fn different_content(path: &Path) -> String {
    format!("{} exists with different content; set `overwrite: true` to replace it", path.display())
}

fn kind(fs: &dyn FsView, path: &Path) -> Option<Kind> {
    fs.stat(path).map(|s| s.kind)
}

/// `inner` is `outer` or inside it (one file, spelled either way).
fn within(inner: &Path, outer: &Path) -> bool {
    key(inner).starts_with(key(outer))
}

/// The folder a new entry at `path` goes into must exist (and be a folder).
fn parent_ready(fs: &dyn FsView, path: &Path) -> Result<(), StepError> {
    let parent = parent_dir(path);
    match kind(fs, parent) {
        Some(Kind::Dir) => Ok(()),
        Some(Kind::File) => fail(format!("{} is not a folder", parent.display())),
        None => fail(format!("folder {} does not exist", parent.display())),
    }
}

/// Where a copy of `from` into `to` lands: inside `to` when it is an existing folder.
pub fn copy_target(fs: &dyn FsView, from: &Path, to: &Path) -> PathBuf {
    match (kind(fs, to), from.file_name()) {
        (Some(Kind::Dir), Some(name)) => to.join(name),
        _ => to.to_path_buf(),
    }
}

/// `copy`: a file or a folder (recursively) to `to`, or into `to` when it is a folder.
/// `steps.<id>.captures.sha256` is a copied file's verified digest (in a plan, computed only
/// when `digest` says a later step reads it).
pub fn copy(fs: &dyn FsView, from: &Path, to: &Path, overwrite: bool, digest: bool, progress: Progress) -> StepResult {
    let Some(source) = kind(fs, from) else {
        return fail(format!("the source {} does not exist", from.display()));
    };
    let target = copy_target(fs, from, to);
    if key(&target) == key(from) {
        return fail(format!("{} would be copied onto itself", from.display()));
    }
    if source == Kind::Dir && within(&target, from) {
        return fail(format!("cannot copy the folder {} into itself ({})", from.display(), target.display()));
    }
    parent_ready(fs, &target)?;
    let (changed, sha) = copy_entry(fs, from, source, &target, overwrite, digest, progress)?;
    let outcome = if changed { Outcome::Done } else { Outcome::Unchanged };
    Ok(Done { outcome, data: Some(StepData::with_sha256(sha)) })
}

fn copy_entry(
    fs: &dyn FsView,
    from: &Path,
    source: Kind,
    target: &Path,
    overwrite: bool,
    digest: bool,
    progress: Progress,
) -> Result<(bool, Option<String>), StepError> {
    match (source, fs.stat(target)) {
        (Kind::File, Some(t)) if t.kind == Kind::Dir => fail(format!("{} is a folder", target.display())),
        (Kind::File, Some(t)) => {
            // The same bytes already: nothing to do (sizes first, so most differences cost no read).
            if fs.stat(from).is_some_and(|s| s.len == t.len) {
                let sha = fs.digest(from)?;
                if fs.digest(target)? == sha {
                    return Ok((false, Some(sha)));
                }
            }
            if !overwrite {
                return fail(different_content(target));
            }
            Ok((true, fs.copy_file(from, target, digest, progress)?))
        }
        (Kind::File, None) => Ok((true, fs.copy_file(from, target, digest, progress)?)),
        (Kind::Dir, Some(t)) if t.kind == Kind::File => {
            fail(format!("{} exists and is not a folder", target.display()))
        }
        (Kind::Dir, existing) => {
            let mut changed = existing.is_none();
            if changed {
                fs.create_dir(target)?;
            }
            for name in fs.list(from)? {
                let child = from.join(&name);
                let Some(child_kind) = kind(fs, &child) else { continue };
                changed |= copy_entry(fs, &child, child_kind, &target.join(&name), overwrite, false, progress)?.0;
            }
            Ok((changed, None))
        }
    }
}

/// `rename`: moves a file or folder. `from` gone and `to` there: already done (`unchanged`).
pub fn rename(fs: &dyn FsView, from: &Path, to: &Path, overwrite: bool, progress: Progress) -> StepResult {
    let (source, target) = (kind(fs, from), kind(fs, to));
    let outcome = match (source, target) {
        (None, Some(_)) => Outcome::Unchanged,
        (None, None) => return fail(format!("{} does not exist", from.display())),
        // The same file: nothing to move, unless only the spelling (a name's case) changes.
        (Some(_), _) if key(from) == key(to) => {
            if from == to {
                Outcome::Unchanged
            } else {
                fs.rename(from, to, progress)?;
                Outcome::Done
            }
        }
        (Some(_), Some(_)) if !overwrite => {
            return fail(format!("{} already exists; set `overwrite: true` to replace it", to.display()));
        }
        (Some(Kind::File), Some(Kind::Dir)) => return fail(format!("{} is a folder", to.display())),
        (Some(Kind::Dir), Some(_)) => {
            return fail(format!("{} already exists; a folder cannot replace it (remove it first)", to.display()));
        }
        (Some(kind), _) => {
            if kind == Kind::Dir && within(to, from) {
                return fail(format!("cannot move the folder {} into itself ({})", from.display(), to.display()));
            }
            parent_ready(fs, to)?;
            fs.rename(from, to, progress)?;
            Outcome::Done
        }
    };
    Ok(Done::known(outcome))
}

/// `mkdir`: a folder and its parents; there already: `unchanged`.
pub fn mkdir(fs: &dyn FsView, path: &Path) -> StepResult {
    match kind(fs, path) {
        Some(Kind::Dir) => return Ok(Done::known(Outcome::Unchanged)),
        Some(Kind::File) => return fail(format!("{} exists and is not a folder", path.display())),
        None => {}
    }
    // The nearest part of the path that exists must be a folder; some part must exist (a
    // drive that is not there has no root).
    match path.ancestors().skip(1).find(|a| kind(fs, a).is_some()) {
        Some(blocker) if kind(fs, blocker) != Some(Kind::Dir) => {
            return fail(format!("cannot create {}: {} is not a folder", path.display(), blocker.display()));
        }
        Some(_) => {}
        None => {
            let root = path.ancestors().last().unwrap_or(path);
            return fail(format!("cannot create {}: {} does not exist", path.display(), root.display()));
        }
    }
    fs.create_dir_all(path)?;
    Ok(Done::known(Outcome::Done))
}

/// `remove`: a file, or a folder (with content only when `recursive`); gone already: `unchanged`.
pub fn remove(fs: &dyn FsView, path: &Path, recursive: bool) -> StepResult {
    match kind(fs, path) {
        None => return Ok(Done::known(Outcome::Unchanged)),
        Some(Kind::Dir) if !recursive && !fs.list(path)?.is_empty() => {
            return fail(format!(
                "cannot remove {}: the folder is not empty; set `recursive: true` to remove a folder with content",
                path.display()
            ));
        }
        Some(_) => fs.remove(path, recursive)?,
    }
    Ok(Done::known(Outcome::Done))
}

/// `write`: text to a file, in one step; the same text there already: `unchanged`.
pub fn write(fs: &dyn FsView, path: &Path, content: &str, overwrite: bool) -> StepResult {
    parent_ready(fs, path)?;
    match kind(fs, path) {
        Some(Kind::Dir) => return fail(format!("{} is a folder", path.display())),
        Some(Kind::File) => {
            if fs.holds(path, content.as_bytes())? {
                return Ok(Done::known(Outcome::Unchanged));
            }
            if !overwrite {
                return fail(different_content(path));
            }
        }
        None => {}
    }
    fs.write(path, content.as_bytes())?;
    Ok(Done::known(Outcome::Done))
}

/// `cd`: the folder must be there.
pub fn cd(fs: &dyn FsView, path: &Path) -> Result<(), StepError> {
    match kind(fs, path) {
        Some(Kind::Dir) => Ok(()),
        Some(Kind::File) => fail(format!("{} is not a folder", path.display())),
        None => fail(format!("cannot enter {}: no such file or folder", path.display())),
    }
}

/// The checks of an `assert` that do not hold.
pub fn failed_checks(fs: &dyn FsView, checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter_map(|check| match check {
            Check::Exists(p) => kind(fs, p).is_none().then(|| format!("{} does not exist", p.display())),
            Check::Missing(p) => kind(fs, p).is_some().then(|| format!("{} exists", p.display())),
            Check::File(p) => (kind(fs, p) != Some(Kind::File)).then(|| format!("{} is not a file", p.display())),
            Check::Dir(p) => (kind(fs, p) != Some(Kind::Dir)).then(|| format!("{} is not a folder", p.display())),
            Check::That { expr, holds } => (!holds).then(|| format!("`{expr}` is false")),
        })
        .collect()
}
