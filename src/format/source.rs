//! A loaded text file and positions inside it.
//!
//! Every user-facing error points into a [`Source`]; spans are byte ranges so that a caret can be
//! drawn under the exact text, and line/column are derived (1-based, columns counted in chars).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file as it was read, kept whole so diagnostics can quote it.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: String) -> Arc<Source> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Arc::new(Source { path: path.into(), text, line_starts })
    }

    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }

    /// 1-based line and column (in chars) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.text[start..floor_char(&self.text, offset)].chars().count() + 1;
        (line + 1, col)
    }

    /// Byte offset of a 1-based line and column; clamps to the text.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        let line_text = rest.split('\n').next().unwrap_or("");
        start + line_text.char_indices().nth(col.saturating_sub(1)).map_or(line_text.len(), |(i, _)| i)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let rest = &self.text[start..];
        let end = rest.find('\n').unwrap_or(rest.len());
        rest[..end].trim_end_matches('\r')
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Paths are shown as given, relative paths without a leading `./`.
pub fn display_path(path: &Path) -> String {
    let s = path.display().to_string();
    s.strip_prefix("./").map(str::to_owned).unwrap_or(s)
}

/// A byte range in one [`Source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub const fn new(offset: usize, len: usize) -> Span {
        Span { offset, len }
    }
}

/// A span together with the file it is in.
#[derive(Debug, Clone)]
pub struct Located {
    pub source: Arc<Source>,
    pub span: Span,
}

impl Located {
    pub fn new(source: &Arc<Source>, span: Span) -> Located {
        Located { source: Arc::clone(source), span }
    }

    /// `file:line:col`
    pub fn position(&self) -> String {
        let (line, col) = self.source.line_col(self.span.offset);
        format!("{}:{line}:{col}", self.source.display_path())
    }
}
