//! Reading the text files a user gives (runbooks, input files, saved plans), with the limits and
//! the checks every one of them shares, so each problem is reported at its line and column.

use std::path::Path;

use crate::format::diagnostic::Diagnostic;
use crate::format::source::{Located, Source, Span};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a text file with the limits every input file shares: UTF-8 (with or without a BOM), or
/// UTF-16 / UTF-32 with a BOM (as Notepad's "Unicode" and PowerShell 5.1's `>` save files), as
/// YAML 1.2 requires.
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
    if let Some((encoding, bom)) = wide_encoding(&bytes) {
        return decode_wide(path, &bytes[bom..], encoding);
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wide {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

impl Wide {
    fn name(self) -> &'static str {
        match self {
            Wide::Utf16Le => "UTF-16 LE",
            Wide::Utf16Be => "UTF-16 BE",
            Wide::Utf32Le => "UTF-32 LE",
            Wide::Utf32Be => "UTF-32 BE",
        }
    }
}

/// The UTF-16 or UTF-32 encoding its byte order mark names, and the mark's length. UTF-32 LE's
/// mark begins with UTF-16 LE's, so it is tried first.
fn wide_encoding(bytes: &[u8]) -> Option<(Wide, usize)> {
    if bytes.starts_with(&[0xFF, 0xFE, 0, 0]) {
        Some((Wide::Utf32Le, 4))
    } else if bytes.starts_with(&[0, 0, 0xFE, 0xFF]) {
        Some((Wide::Utf32Be, 4))
    } else if bytes.starts_with(&[0xFF, 0xFE]) {
        Some((Wide::Utf16Le, 2))
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        Some((Wide::Utf16Be, 2))
    } else {
        None
    }
}

/// Decodes UTF-16 or UTF-32 text (after its mark); a malformed unit or a NUL character is
/// reported at its line and column.
fn decode_wide(path: &Path, body: &[u8], encoding: Wide) -> Result<String, Diagnostic> {
    let unit = if matches!(encoding, Wide::Utf16Le | Wide::Utf16Be) { 2 } else { 4 };
    let mut text = String::with_capacity(body.len() / unit);
    let bad = |text: &str, what: &str| {
        let source = Source::new(path, text.replace('\0', "\u{2400}"));
        Diagnostic::error(format!("the file is not valid {}: {what}", encoding.name()))
            .at(Located::new(&source, Span::new(source.text.len(), 1)))
            .hint("save the file again as UTF-8 or UTF-16 text")
    };
    if !body.len().is_multiple_of(unit) {
        return Err(bad("", "its length is not a whole number of characters"));
    }
    match encoding {
        Wide::Utf16Le | Wide::Utf16Be => {
            let units = body.chunks_exact(2).map(|c| {
                if encoding == Wide::Utf16Le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            });
            for c in char::decode_utf16(units) {
                match c {
                    Ok(c) => text.push(c),
                    Err(_) => return Err(bad(&text, "an unpaired surrogate")),
                }
            }
        }
        Wide::Utf32Le | Wide::Utf32Be => {
            for c in body.chunks_exact(4) {
                let bytes = [c[0], c[1], c[2], c[3]];
                let n = if encoding == Wide::Utf32Le { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) };
                match char::from_u32(n) {
                    Some(c) => text.push(c),
                    None => return Err(bad(&text, "a value that is not a character")),
                }
            }
        }
    }
    if let Some(pos) = text.find('\0') {
        let source = Source::new(path, text.replace('\0', "\u{2400}"));
        return Err(Diagnostic::error("this is not a text file (it contains a NUL character)")
            .at(Located::new(&source, Span::new(pos, 1)))
            .hint("runbooks and input files are YAML text"));
    }
    Ok(text)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<String, Diagnostic> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        std::fs::write(&path, bytes).unwrap();
        read_text(&path)
    }

    fn utf16(text: &str, big: bool) -> Vec<u8> {
        let mut out = if big { vec![0xFE, 0xFF] } else { vec![0xFF, 0xFE] };
        for u in text.encode_utf16() {
            out.extend(if big { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    }

    fn utf32(text: &str, big: bool) -> Vec<u8> {
        let mut out = if big { vec![0, 0, 0xFE, 0xFF] } else { vec![0xFF, 0xFE, 0, 0] };
        for c in text.chars() {
            out.extend(if big { (c as u32).to_be_bytes() } else { (c as u32).to_le_bytes() });
        }
        out
    }

    #[test]
    fn every_unicode_encoding_with_a_mark_is_read() {
        let text = "name: 証明書\r\nsteps: []\n";
        assert_eq!(read(text.as_bytes()).unwrap(), text);
        assert_eq!(read(&[b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat()).unwrap(), text);
        assert_eq!(read(&utf16(text, false)).unwrap(), text);
        assert_eq!(read(&utf16(text, true)).unwrap(), text);
        assert_eq!(read(&utf32(text, false)).unwrap(), text);
        assert_eq!(read(&utf32(text, true)).unwrap(), text);
    }

    #[test]
    fn a_nul_byte_without_a_mark_is_refused_at_its_place() {
        let e = read(b"a: 1\nb: \0\n").unwrap_err();
        assert!(e.message.contains("NUL byte"), "{}", e.message);
        assert!(e.location.as_ref().unwrap().position().ends_with("f.yaml:2:4"));
    }

    #[test]
    fn broken_wide_text_is_refused_at_its_place() {
        let mut bytes = utf16("a: 1\nb: x", false);
        bytes.extend([0x00, 0xD8]); // a lone high surrogate
        let e = read(&bytes).unwrap_err();
        assert!(e.message.contains("not valid UTF-16 LE: an unpaired surrogate"), "{}", e.message);
        assert!(
            e.location.as_ref().unwrap().position().ends_with("f.yaml:2:5"),
            "{:?}",
            e.location.as_ref().unwrap().position()
        );
        let e = read(&utf16("a: \0", true)).unwrap_err();
        assert!(e.message.contains("NUL character"), "{}", e.message);
        assert!(read(&[0xFF, 0xFE, b'a']).is_err(), "an odd length");
    }
}
