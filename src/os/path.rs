//! How paths are spelled on this system: the separator they print with, and when two spellings
//! name the same file (on Windows `C:/Temp/A.pfx` and `c:\temp\a.pfx` do).

use std::path::{Component, Path, PathBuf};

/// Text in this system's spelling: on Windows every `/` becomes `\`, so `C:/x`, `C:\x` and a
/// path joined from both print with one separator. Unchanged elsewhere.
pub fn native_text(text: &str) -> String {
    if cfg!(windows) { text.replace('/', "\\") } else { text.to_owned() }
}

/// A path in this system's spelling (see [`native_text`]).
pub fn native(text: &str) -> PathBuf {
    PathBuf::from(native_text(text))
}

/// A path as a step means it: `.` removed, `..` resolved by name (as Windows resolves them, and
/// so the plan and the disk agree on every path), a trailing separator dropped.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::ParentDir if out.has_root() => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// The folder a file is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// One spelling per file, for comparing and indexing paths: `.` removed, `..` resolved
/// lexically, and on Windows the separators unified and the case folded (names there are
/// case-insensitive).
pub fn key(path: &Path) -> PathBuf {
    let native;
    let path = if cfg!(windows) {
        native = self::native(&path.to_string_lossy());
        native.as_path()
    } else {
        path
    };
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if cfg!(windows) { PathBuf::from(out.to_string_lossy().to_lowercase()) } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_resolve_dots_by_name() {
        assert_eq!(clean(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(clean(Path::new("/../x")), PathBuf::from("/x"));
        assert_eq!(clean(Path::new("a/../..")), PathBuf::from(".."));
        assert_eq!(clean(Path::new("./")), PathBuf::from("."));
    }

    #[test]
    fn keys_resolve_dots() {
        assert_eq!(key(Path::new("/a/./b/../c")), key(Path::new("/a/c")));
    }

    #[cfg(windows)]
    #[test]
    fn windows_keys_ignore_case_and_separators() {
        assert_eq!(key(Path::new("C:/Temp/A.pfx")), key(Path::new(r"c:\temp\a.PFX")));
        assert_eq!(native_text("C:/x/y"), r"C:\x\y");
    }
}
