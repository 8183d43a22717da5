//! How a step is backed out, as its journal records it: the inverse of each change a built-in
//! action makes (recorded before the change takes effect, with the previous contents kept under
//! the state folder), and what the step left behind (so a rollback can tell a file changed since).

use serde::{Deserialize, Serialize};

/// The inverse of one change, applied in the reverse order of the changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum UndoOp {
    /// The step creates this file: removed.
    RemoveFile { path: String },
    /// The step creates this folder: removed (when nothing else is in it).
    RemoveDir { path: String },
    /// The step replaces or removes this file: its previous content, kept at `backup`, goes back
    /// (checked against `sha256` first).
    RestoreFile { path: String, backup: String, sha256: String },
    /// The step removes this folder: its tree, kept at `backup`, goes back.
    RestoreDir { path: String, backup: String },
    /// The step moves `from` to `to`: moved back.
    MoveBack { from: String, to: String },
}

impl UndoOp {
    /// The paths the step changed.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            UndoOp::RemoveFile { path }
            | UndoOp::RemoveDir { path }
            | UndoOp::RestoreFile { path, .. }
            | UndoOp::RestoreDir { path, .. } => vec![path],
            UndoOp::MoveBack { from, to } => vec![to, from],
        }
    }

    /// For people: what undoing it does.
    pub fn describe(&self) -> String {
        match self {
            UndoOp::RemoveFile { path } => format!("remove {path} (created)"),
            UndoOp::RemoveDir { path } => format!("remove the folder {path} (created)"),
            UndoOp::RestoreFile { path, .. } => format!("restore {path} (previous content kept)"),
            UndoOp::RestoreDir { path, .. } => format!("restore the folder {path} (kept)"),
            UndoOp::MoveBack { from, to } => format!("rename {to} → {from} (back)"),
        }
    }
}

/// What is at a path, as far as telling a later change goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Left {
    Absent,
    Dir,
    File { len: u64, modified_ns: u64 },
}

/// A path as a step left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftAt {
    pub path: String,
    #[serde(flatten)]
    pub left: Left,
}

/// How a step can be backed out, as recorded when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Backout {
    /// Nothing to undo (it changes nothing, or its changes are undone by their inverse ops).
    #[default]
    Nothing,
    /// The inverse of each change, in the order of the changes.
    Ops { ops: Vec<UndoOp> },
    /// Its declared `undo:` action.
    Declared,
    /// It cannot be undone, and why.
    Impossible { reason: String },
}

impl Backout {
    pub fn is_nothing(&self) -> bool {
        *self == Backout::Nothing
    }
}

/// The size a limit is written as (`256MiB`, `1G`, `500k`, a number of bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("`{text}` is not a size such as 256MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit `{other}` in `{text}`: use k, M or G")),
    };
    Ok((n * factor as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn records_read_back() {
        let b = Backout::Ops {
            ops: vec![
                UndoOp::RemoveDir { path: "/a".into() },
                UndoOp::RestoreFile { path: "/a/b".into(), backup: "x".into(), sha256: "00".into() },
            ],
        };
        let text = serde_json::to_string(&b).unwrap();
        assert!(text.starts_with(r#"{"undo":"ops","ops":[{"op":"remove_dir","path":"/a"}"#), "{text}");
        assert_eq!(serde_json::from_str::<Backout>(&text).unwrap(), b);
        let left = LeftAt { path: "/a".into(), left: Left::File { len: 3, modified_ns: 7 } };
        assert_eq!(serde_json::to_string(&left).unwrap(), r#"{"path":"/a","kind":"file","len":3,"modified_ns":7}"#);
    }
}
