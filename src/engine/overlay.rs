//! The plan's picture of the filesystem: the real one, plus what earlier steps would have done.
//!
//! Only the planner writes to it; queries fall through to the real filesystem for any path no
//! planned step has touched. A renamed folder carries its whole subtree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::engine::scope::{FsView, Kind};

/// What a file would contain, as far as the plan can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The same bytes as this real file has now.
    Real(PathBuf),
    /// Text the plan knows (a `write`), by SHA-256.
    Hash(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Removed,
    File {
        size: u64,
        content: Content,
    },
    Dir,
    /// Whatever is at the real path `from` now (a rename).
    MovedFrom(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File { size: u64, content: Content },
    Dir,
}

impl Node {
    pub fn kind(&self) -> Kind {
        match self {
            Node::File { .. } => Kind::File,
            Node::Dir => Kind::Dir,
        }
    }
}

#[derive(Debug, Default)]
pub struct Overlay {
    entries: Mutex<BTreeMap<PathBuf, Entry>>,
}

impl FsView for Overlay {
    fn kind(&self, path: &Path) -> Option<Kind> {
        self.get(path).map(|n| n.kind())
    }
}

fn real(path: &Path) -> Option<Node> {
    let meta = std::fs::metadata(path).ok()?;
    Some(if meta.is_dir() {
        Node::Dir
    } else {
        Node::File { size: meta.len(), content: Content::Real(path.to_path_buf()) }
    })
}

impl Overlay {
    pub fn get(&self, path: &Path) -> Option<Node> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Self::lookup(&entries, &normalize(path))
    }

    fn lookup(entries: &BTreeMap<PathBuf, Entry>, path: &Path) -> Option<Node> {
        // The nearest planned entry at the path or above it decides.
        let mut ancestor = Some(path);
        while let Some(a) = ancestor {
            if let Some(entry) = entries.get(a) {
                let rest = path.strip_prefix(a).unwrap_or(Path::new(""));
                return match entry {
                    Entry::Removed => None,
                    Entry::File { size, content } if rest.as_os_str().is_empty() => {
                        Some(Node::File { size: *size, content: content.clone() })
                    }
                    Entry::File { .. } => None,
                    Entry::Dir if rest.as_os_str().is_empty() => Some(Node::Dir),
                    // A folder the plan creates: new, so only planned entries are inside it.
                    Entry::Dir => None,
                    // `from` is always a real path (see `rename`), as it was before the plan.
                    Entry::MovedFrom(from) => {
                        let source = if rest.as_os_str().is_empty() { from.clone() } else { from.join(rest) };
                        real(&source)
                    }
                };
            }
            ancestor = a.parent();
        }
        real(path)
    }

    pub fn set(&self, path: &Path, entry: Entry) {
        let path = normalize(path);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Planned entries below a replaced path no longer apply. Paths order component by
        // component, so a path's descendants follow it directly.
        let below: Vec<PathBuf> = entries
            .range::<Path, _>((std::ops::Bound::Excluded(path.as_path()), std::ops::Bound::Unbounded))
            .map(|(p, _)| p)
            .take_while(|p| p.starts_with(&path))
            .cloned()
            .collect();
        for p in below {
            entries.remove(&p);
        }
        entries.insert(path, entry);
    }

    /// `mkdir -p`: every missing ancestor becomes a folder too.
    pub fn mkdir_all(&self, path: &Path) {
        let path = normalize(path);
        let mut missing = Vec::new();
        let mut cur = Some(path.as_path());
        while let Some(p) = cur {
            if self.get(p).is_some() {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        for p in missing.into_iter().rev() {
            self.set(&p, Entry::Dir);
        }
    }

    /// Moves whatever is at `from` to `to`.
    pub fn rename(&self, from: &Path, to: &Path) {
        let from = normalize(from);
        let source = match self.get(&from) {
            Some(Node::File { size, content }) => Entry::File { size, content },
            Some(Node::Dir) => {
                // Keep the subtree reachable: point at the real folder when there is one.
                let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                match entries.get(&from) {
                    Some(Entry::MovedFrom(orig)) => Entry::MovedFrom(orig.clone()),
                    Some(Entry::Dir) => Entry::Dir,
                    _ => Entry::MovedFrom(from.clone()),
                }
            }
            None => return,
        };
        self.set(to, source);
        self.set(&from, Entry::Removed);
    }
}

/// The same file is always the same key (dots resolved; on Windows, case and separators folded).
fn normalize(path: &Path) -> PathBuf {
    crate::os::path::key(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_files_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let real_file = dir.path().join("a.dat");
        std::fs::write(&real_file, "abc").unwrap();
        let o = Overlay::default();
        assert_eq!(o.kind(&real_file), Some(Kind::File));
        let copy = dir.path().join("b.dat");
        assert_eq!(o.kind(&copy), None);
        o.set(&copy, Entry::File { size: 3, content: Content::Real(real_file.clone()) });
        assert_eq!(o.kind(&copy), Some(Kind::File));
        let pfx = dir.path().join("b.pfx");
        o.rename(&copy, &pfx);
        assert_eq!(o.kind(&copy), None);
        assert_eq!(o.kind(&pfx), Some(Kind::File));
        // Nothing on disk changed.
        assert!(!copy.exists() && !pfx.exists());
    }

    #[test]
    fn renamed_folders_keep_their_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("old")).unwrap();
        std::fs::write(dir.path().join("old/x"), "1").unwrap();
        let o = Overlay::default();
        o.rename(&dir.path().join("old"), &dir.path().join("new"));
        assert_eq!(o.kind(&dir.path().join("new/x")), Some(Kind::File));
        assert_eq!(o.kind(&dir.path().join("old/x")), None);
    }

    #[test]
    fn removed_folders_hide_their_content_and_mkdir_makes_parents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/x"), "1").unwrap();
        let o = Overlay::default();
        o.set(&dir.path().join("d"), Entry::Removed);
        assert_eq!(o.kind(&dir.path().join("d/x")), None);
        o.mkdir_all(&dir.path().join("d/e/f"));
        assert_eq!(o.kind(&dir.path().join("d/e")), Some(Kind::Dir));
        assert_eq!(o.kind(&dir.path().join("d/e/f")), Some(Kind::Dir));
        assert_eq!(o.kind(&dir.path().join("d/x")), None);
    }

    #[test]
    fn replacing_a_path_forgets_only_what_was_below_it() {
        let o = Overlay::default();
        let file = |size| Entry::File { size, content: Content::Hash(String::new()) };
        for p in ["/x/a/b", "/x/a/b/c", "/x/a/b/c/d", "/x/a/b.txt", "/x/a/bc"] {
            o.set(Path::new(p), file(1));
        }
        o.set(Path::new("/x/a/b"), Entry::Removed);
        assert_eq!(o.kind(Path::new("/x/a/b/c")), None);
        assert_eq!(o.kind(Path::new("/x/a/b/c/d")), None);
        assert_eq!(o.kind(Path::new("/x/a/b.txt")), Some(Kind::File));
        assert_eq!(o.kind(Path::new("/x/a/bc")), Some(Kind::File));
    }

    #[test]
    fn normalizes_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), normalize(Path::new("/a/c")));
    }
}
