//! The plan's picture of the filesystem: the disk as it is, plus what earlier steps would have
//! done. Nothing here touches the disk: changes are recorded, keyed by path (one key per file,
//! see `os::path::key`), and a question about a path no planned change reached falls through to
//! the disk. A renamed folder carries its whole subtree, planned changes inside it included.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::{FsError, FsView, Kind, Progress, Stat};
use crate::format::digest::{file_sha256, sha256_hex};
use crate::os::path::key;

/// What a file would contain, as far as the plan can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    /// The same bytes as this file on the disk has now.
    Real(PathBuf),
    /// Bytes the plan knows, by their SHA-256 (a `write`).
    Hash(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Removed,
    File {
        len: u64,
        content: Content,
    },
    /// A folder the plan creates: only planned entries are inside it.
    Dir,
    /// Whatever is at this path on the disk now (the folder a rename moved here).
    MovedFrom(PathBuf),
}

/// A planned change: the path as the step spelled it, and what is there now.
#[derive(Debug, Clone)]
struct Planned {
    path: PathBuf,
    entry: Entry,
}

/// What the plan sees at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File {
        len: u64,
        content: Content,
    },
    /// A folder, with the disk's folder that holds its unplanned content (none when new).
    Dir {
        real: Option<PathBuf>,
    },
}

type Entries = BTreeMap<PathBuf, Planned>;

#[derive(Debug, Default)]
pub struct Overlay {
    entries: Mutex<Entries>,
}

fn on_disk(path: &Path) -> Option<Node> {
    let meta = std::fs::metadata(path).ok()?;
    Some(if meta.is_dir() {
        Node::Dir { real: Some(path.to_path_buf()) }
    } else {
        Node::File { len: meta.len(), content: Content::Real(path.to_path_buf()) }
    })
}

/// What the plan sees at `path`: the nearest planned change at or above it decides.
fn lookup(entries: &Entries, path: &Path) -> Option<Node> {
    let k = key(path);
    let mut ancestor = Some(k.as_path());
    while let Some(a) = ancestor {
        if let Some(planned) = entries.get(a) {
            let rest = k.strip_prefix(a).unwrap_or(Path::new(""));
            let here = rest.as_os_str().is_empty();
            return match &planned.entry {
                Entry::Removed => None,
                Entry::File { len, content } if here => Some(Node::File { len: *len, content: content.clone() }),
                Entry::Dir if here => Some(Node::Dir { real: None }),
                Entry::File { .. } | Entry::Dir => None,
                Entry::MovedFrom(from) => on_disk(&if here { from.clone() } else { from.join(rest) }),
            };
        }
        ancestor = a.parent();
    }
    on_disk(path)
}

/// The planned entries strictly below `k`: paths order component by component, so a path's
/// descendants follow it directly.
fn below(entries: &Entries, k: &Path) -> Vec<PathBuf> {
    entries
        .range::<Path, _>((Bound::Excluded(k), Bound::Unbounded))
        .map(|(p, _)| p)
        .take_while(|p| p.starts_with(k))
        .cloned()
        .collect()
}

fn set(entries: &mut Entries, path: &Path, entry: Entry) {
    let k = key(path);
    for p in below(entries, &k) {
        entries.remove(&p);
    }
    entries.insert(k, Planned { path: path.to_path_buf(), entry });
}

impl Overlay {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn node(&self, path: &Path) -> Option<Node> {
        lookup(&self.entries(), path)
    }

    fn file(&self, path: &Path) -> Result<(u64, Content), FsError> {
        match self.node(path) {
            Some(Node::File { len, content }) => Ok((len, content)),
            _ => Err(FsError(format!("{} is not a file", path.display()))),
        }
    }
}

fn content_digest(content: &Content) -> Result<String, FsError> {
    match content {
        Content::Hash(h) => Ok(h.clone()),
        Content::Real(p) => file_sha256(p).map_err(|e| FsError::io("cannot read", p, &e)),
    }
}

impl FsView for Overlay {
    fn stat(&self, path: &Path) -> Option<Stat> {
        self.node(path).map(|n| match n {
            Node::File { len, .. } => Stat { kind: Kind::File, len },
            Node::Dir { .. } => Stat { kind: Kind::Dir, len: 0 },
        })
    }

    fn list(&self, dir: &Path) -> Result<Vec<OsString>, FsError> {
        let entries = self.entries();
        let Some(Node::Dir { real }) = lookup(&entries, dir) else {
            return Err(FsError(format!("cannot read {}: no such folder", dir.display())));
        };
        let mut names: Vec<OsString> = match real {
            Some(r) => std::fs::read_dir(&r)
                .map_err(|e| FsError::io("cannot read", &r, &e))?
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect(),
            None => Vec::new(),
        };
        let k = key(dir);
        names.extend(
            below(&entries, &k)
                .iter()
                .filter(|p| p.parent() == Some(k.as_path()))
                .filter_map(|p| entries[p].path.file_name().map(OsString::from)),
        );
        // One name per file (as the disk would list it), only what is still there.
        let mut seen = BTreeMap::new();
        for name in names {
            let child = dir.join(&name);
            if lookup(&entries, &child).is_some() {
                seen.entry(key(&child)).or_insert(name);
            }
        }
        let mut out: Vec<OsString> = seen.into_values().collect();
        out.sort();
        Ok(out)
    }

    fn digest(&self, path: &Path) -> Result<String, FsError> {
        content_digest(&self.file(path)?.1)
    }

    fn holds(&self, path: &Path, content: &[u8]) -> Result<bool, FsError> {
        let (len, existing) = self.file(path)?;
        Ok(len == content.len() as u64 && content_digest(&existing)? == sha256_hex(content))
    }

    fn copy_file(&self, from: &Path, to: &Path, digest: bool, _: Progress) -> Result<Option<String>, FsError> {
        let (len, content) = self.file(from)?;
        let sha = if digest { Some(content_digest(&content)?) } else { None };
        set(&mut self.entries(), to, Entry::File { len, content });
        Ok(sha)
    }

    fn create_dir(&self, path: &Path) -> Result<(), FsError> {
        set(&mut self.entries(), path, Entry::Dir);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> Result<(), FsError> {
        let mut entries = self.entries();
        let mut missing = Vec::new();
        let mut cur = Some(path);
        while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
            if lookup(&entries, p).is_some() {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        for p in missing.into_iter().rev() {
            set(&mut entries, &p, Entry::Dir);
        }
        Ok(())
    }

    fn remove(&self, path: &Path, _: bool) -> Result<(), FsError> {
        set(&mut self.entries(), path, Entry::Removed);
        Ok(())
    }

    fn write(&self, path: &Path, content: &[u8]) -> Result<(), FsError> {
        let entry = Entry::File { len: content.len() as u64, content: Content::Hash(sha256_hex(content)) };
        set(&mut self.entries(), path, entry);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path, _: Progress) -> Result<(), FsError> {
        let mut entries = self.entries();
        let (from_key, to_key) = (key(from), key(to));
        if from_key == to_key {
            // Only the spelling changes (a name's case, on Windows).
            if let Some(planned) = entries.get_mut(&from_key) {
                planned.path = to.to_path_buf();
            }
            return Ok(());
        }
        let moved = match lookup(&entries, from) {
            Some(Node::File { len, content }) => Entry::File { len, content },
            Some(Node::Dir { real: Some(r) }) => Entry::MovedFrom(r),
            Some(Node::Dir { real: None }) => Entry::Dir,
            None => return Err(FsError(format!("{} does not exist", from.display()))),
        };
        // What was planned inside the folder moves with it.
        let inside: Vec<(PathBuf, Planned)> =
            below(&entries, &from_key).into_iter().filter_map(|k| entries.remove(&k).map(|p| (k, p))).collect();
        set(&mut entries, from, Entry::Removed);
        set(&mut entries, to, moved);
        for (k, planned) in inside {
            let rest = k.strip_prefix(&from_key).unwrap_or(Path::new(""));
            let path = planned.path.strip_prefix(from).map_or_else(|_| to.join(rest), |r| to.join(r));
            entries.insert(to_key.join(rest), Planned { path, entry: planned.entry });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(o: &Overlay, p: &Path) -> Option<Kind> {
        o.stat(p).map(|s| s.kind)
    }

    fn names(o: &Overlay, p: &Path) -> Vec<String> {
        o.list(p).unwrap().into_iter().map(|n| n.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn planned_files_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let real_file = dir.path().join("a.dat");
        std::fs::write(&real_file, "abc").unwrap();
        let o = Overlay::default();
        assert_eq!(kind(&o, &real_file), Some(Kind::File));
        let copy = dir.path().join("b.dat");
        assert_eq!(kind(&o, &copy), None);
        o.copy_file(&real_file, &copy, false, &mut |_, _| {}).unwrap();
        assert_eq!(o.stat(&copy), Some(Stat { kind: Kind::File, len: 3 }));
        let pfx = dir.path().join("b.pfx");
        o.rename(&copy, &pfx, &mut |_, _| {}).unwrap();
        assert_eq!(kind(&o, &copy), None);
        assert!(o.holds(&pfx, b"abc").unwrap());
        // Nothing on disk changed.
        assert!(!copy.exists() && !pfx.exists());
    }

    #[test]
    fn renamed_folders_keep_their_content_planned_or_real() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("old")).unwrap();
        std::fs::write(dir.path().join("old/x"), "1").unwrap();
        let o = Overlay::default();
        o.write(&dir.path().join("old/planned"), b"2").unwrap();
        o.rename(&dir.path().join("old"), &dir.path().join("new"), &mut |_, _| {}).unwrap();
        assert_eq!(kind(&o, &dir.path().join("new/x")), Some(Kind::File));
        assert!(o.holds(&dir.path().join("new/planned"), b"2").unwrap());
        assert_eq!(kind(&o, &dir.path().join("old/x")), None);
        assert_eq!(names(&o, &dir.path().join("new")), ["planned", "x"]);
        // A new folder renamed with what was written into it.
        o.create_dir(&dir.path().join("fresh")).unwrap();
        o.write(&dir.path().join("fresh/f"), b"3").unwrap();
        o.rename(&dir.path().join("fresh"), &dir.path().join("moved"), &mut |_, _| {}).unwrap();
        assert_eq!(names(&o, &dir.path().join("moved")), ["f"]);
    }

    #[test]
    fn removed_folders_hide_their_content_and_listing_follows() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/x"), "1").unwrap();
        std::fs::write(dir.path().join("d/y"), "1").unwrap();
        let o = Overlay::default();
        o.remove(&dir.path().join("d/x"), false).unwrap();
        o.write(&dir.path().join("d/z"), b"new").unwrap();
        assert_eq!(names(&o, &dir.path().join("d")), ["y", "z"]);
        o.remove(&dir.path().join("d"), true).unwrap();
        assert_eq!(kind(&o, &dir.path().join("d/y")), None);
        o.create_dir_all(&dir.path().join("d/e/f")).unwrap();
        assert_eq!(kind(&o, &dir.path().join("d/e/f")), Some(Kind::Dir));
        assert_eq!(names(&o, &dir.path().join("d")), ["e"]);
    }

    #[test]
    fn replacing_a_path_forgets_only_what_was_below_it() {
        let o = Overlay::default();
        for p in ["/x/a/b", "/x/a/b/c", "/x/a/b/c/d", "/x/a/b.txt", "/x/a/bc"] {
            o.write(Path::new(p), b"1").unwrap();
        }
        o.remove(Path::new("/x/a/b"), true).unwrap();
        assert_eq!(kind(&o, Path::new("/x/a/b/c")), None);
        assert_eq!(kind(&o, Path::new("/x/a/b/c/d")), None);
        assert_eq!(kind(&o, Path::new("/x/a/b.txt")), Some(Kind::File));
        assert_eq!(kind(&o, Path::new("/x/a/bc")), Some(Kind::File));
    }
}
