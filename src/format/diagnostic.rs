//! Errors and warnings a user can act on, rendered with the source line and a caret.
//!
//! Rendering is deliberately plain and stable (it is snapshot-tested): a header, the
//! `--> file:line:col` pointer, the quoted line with carets, and an optional hint.

use std::fmt::{self, Write as _};

use crate::format::source::Located;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<Located>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, message: message.into(), location: None, hint: None }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(message) }
    }

    pub fn at(mut self, location: Located) -> Diagnostic {
        self.location = Some(location);
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{kind}: {}", self.message)?;
        if let Some(loc) = &self.location {
            let (line, col) = loc.source.line_col(loc.span.offset);
            let gutter = line.to_string().len();
            let pad = " ".repeat(gutter);
            writeln!(f, "{pad}--> {}:{line}:{col}", loc.source.display_path())?;
            let text = loc.source.line_text(line);
            if !text.is_empty() || loc.span.len > 0 {
                writeln!(f, "{pad} |")?;
                let shown: String = text.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
                writeln!(f, "{line} | {shown}")?;
                let width = caret_width(
                    text,
                    col,
                    loc.span.len,
                    &loc.source.text[loc.span.offset.min(loc.source.text.len())..],
                );
                writeln!(f, "{pad} | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
            }
        }
        if let Some(hint) = &self.hint {
            let pad = self
                .location
                .as_ref()
                .map(|l| " ".repeat(l.source.line_col(l.span.offset).0.to_string().len()))
                .unwrap_or_default();
            writeln!(f, "{pad} = hint: {hint}")?;
        }
        Ok(())
    }
}

/// How many carets: the span's length in chars, cut at the end of the line, at least one.
fn caret_width(line: &str, col: usize, span_len: usize, from_span: &str) -> usize {
    let rest_of_line = line.chars().count().saturating_sub(col - 1);
    let span_chars = from_span.char_indices().take_while(|(i, _)| *i < span_len).count();
    span_chars.min(rest_of_line).max(1)
}

/// Renders many diagnostics, one blank line apart, with a closing count.
pub fn render_all(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let _ = writeln!(out, "{d}");
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 {
        let _ = writeln!(
            out,
            "{errors} {}{}",
            plural(errors, "error", "errors"),
            if warnings > 0 {
                format!(", {warnings} {}", plural(warnings, "warning", "warnings"))
            } else {
                String::new()
            }
        );
    }
    out
}

pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Like [`did_you_mean`], but only for a slip of one or two characters (used where an unknown
/// name is often legitimate, as in a site file shared by several runbooks).
pub fn near_miss<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The closest of `candidates` to `word`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| {
            *d <= (c.len().max(word.len()) / 3).max(1) || (c.len() > 2 && (c.starts_with(word) || word.starts_with(c)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The last lines of a text, for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A text shown under a message, each line marked.
pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys() {
        assert_eq!(did_you_mean("form", ["from", "to", "overwrite"]), Some("from"));
        assert_eq!(did_you_mean("cpy", ["copy", "cd", "exec"]), Some("copy"));
        assert_eq!(did_you_mean("expect_output", ["expect-output", "exec"]), Some("expect-output"));
        assert_eq!(did_you_mean("zzzzzz", ["copy", "cd"]), None);
    }
}
