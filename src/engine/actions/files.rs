//! `mkdir`, `remove` and `write`: each idempotent (present already: `unchanged`).

use std::fs;
use std::io::Write;
use std::path::Path;

use super::{StepError, fail};
use crate::os::fs::io_reason;
use crate::state::outcome::Outcome;

pub fn mkdir(path: &Path) -> Result<Outcome, StepError> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Ok(Outcome::Unchanged),
        Ok(_) => return fail(format!("{} exists and is not a folder", path.display())),
        Err(_) => {}
    }
    fs::create_dir_all(path).map_err(|e| {
        StepError::Failed(format!("cannot create {}: {}", path.display(), crate::os::fs::io_reason_at(path, &e)))
    })?;
    Ok(Outcome::Done)
}

pub fn remove(path: &Path, recursive: bool) -> Result<Outcome, StepError> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(Outcome::Unchanged);
    };
    let result = crate::os::fs::retry_while_shared(&[path], || {
        if meta.is_dir() {
            if recursive { fs::remove_dir_all(path) } else { fs::remove_dir(path) }
        } else {
            fs::remove_file(path)
        }
    });
    result.map_err(|e| {
        let hint =
            if meta.is_dir() && !recursive { "; set `recursive: true` to remove a folder with content" } else { "" };
        StepError::Failed(format!("cannot remove {}: {}{hint}", path.display(), io_reason(&e)))
    })?;
    Ok(Outcome::Done)
}

pub fn write(path: &Path, content: &str, overwrite: bool) -> Result<Outcome, StepError> {
    if let Ok(existing) = fs::read(path) {
        if existing == content.as_bytes() {
            return Ok(Outcome::Unchanged);
        }
        if !overwrite {
            return fail(crate::engine::effects::different_content(path));
        }
    }
    let dir = crate::os::path::parent_dir(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = super::copy::temp_name(dir, &name);
    let result = (|| {
        let mut f = fs::File::create(&temp)?;
        f.write_all(content.as_bytes())?;
        f.sync_data()?;
        crate::os::fs::replace_file(&temp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return fail(format!("cannot write {}: {}", path.display(), io_reason(&e)));
    }
    Ok(Outcome::Done)
}
