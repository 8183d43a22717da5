//! Small filesystem helpers shared by the executor, journal and loader.

use std::io;

/// A short reason for an I/O error, without the "(os error N)" noise.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or folder".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::AlreadyExists => "it already exists".into(),
        io::ErrorKind::StorageFull => "no space left on the device".into(),
        io::ErrorKind::ReadOnlyFilesystem => "the filesystem is read-only".into(),
        io::ErrorKind::FileTooLarge => "file too large (a size limit was reached)".into(),
        io::ErrorKind::DirectoryNotEmpty => "the folder is not empty".into(),
        io::ErrorKind::IsADirectory => "it is a folder".into(),
        io::ErrorKind::NotADirectory => "a part of the path is not a folder".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// The refusal to replace a file whose content differs, and what to do about it.
pub fn different_content(path: &std::path::Path) -> String {
    format!("{} exists with different content; set `overwrite: true` to replace it", path.display())
}

/// The folder a file is in (`.` for a bare name).
pub fn parent_dir(path: &std::path::Path) -> &std::path::Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."))
}
