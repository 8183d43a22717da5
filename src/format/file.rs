//! Reading the text files a user gives (runbooks, input files, saved plans), with the limits and
//! the checks every one of them shares, so each problem is reported at its line and column.

use std::path::Path;

use crate::format::diagnostic::Diagnostic;
use crate::format::source::{Located, Source, Span};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a file as UTF-8 text with the limits every input file shares.
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let shown = crate::format::source::display_path(path);
    let meta = std::fs::metadata(path).map_err(|e| {
        Diagnostic::error(format!("cannot read {shown}: {}", crate::os::fs::io_reason(&e)))
            .hint("check the path; it is taken relative to the current folder")
    })?;
    if meta.is_dir() {
        return Err(Diagnostic::error(format!("{shown} is a folder, not a file")));
    }
    if !meta.is_file() {
        return Err(Diagnostic::error(format!("{shown} is not a regular file (a device, pipe or socket)"))
            .hint("give the path of a YAML file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(format!(
            "{shown} is {} bytes; files larger than {} MiB are refused",
            meta.len(),
            MAX_FILE_BYTES >> 20
        ))
        .hint("a runbook or input file this large is almost certainly not one; check the path"));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error(format!("cannot read {shown}: {}", crate::os::fs::io_reason(&e))))?;
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(located_byte_error(path, &bytes, pos, "this is not a text file (it contains a NUL byte)")
            .hint("runbooks and input files are UTF-8 YAML text"));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").map(<[u8]>::to_vec).unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|e| {
        let pos = e.utf8_error().valid_up_to();
        located_byte_error(path, e.as_bytes(), pos, "the file is not valid UTF-8")
            .hint("save the file as UTF-8 (not in a legacy code page such as Shift_JIS)")
    })
}

/// A diagnostic at a byte of a file that is not text: shown through a lossy copy of it.
fn located_byte_error(path: &Path, bytes: &[u8], pos: usize, message: &str) -> Diagnostic {
    let (line, col) = line_col_of_bytes(bytes, pos);
    let text = String::from_utf8_lossy(bytes).replace('\0', "\u{2400}");
    let source = Source::new(path, text);
    let offset = source.offset_of(line, col);
    Diagnostic::error(message).at(Located::new(&source, Span::new(offset, 1)))
}

fn line_col_of_bytes(bytes: &[u8], pos: usize) -> (usize, usize) {
    let before = &bytes[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}
