//! The console: the encoding console programs write in (`encoding: console`), and colours.

/// The encoding a console program writes its output in on this machine: the console's output
/// code page on Windows (CP932, Shift_JIS, on a Japanese server; the OEM code page when there
/// is no console), the locale's character set elsewhere. UTF-8 when it cannot be told.
pub fn output_encoding() -> &'static encoding_rs::Encoding {
    imp::output_encoding().unwrap_or(encoding_rs::UTF_8)
}

/// Turns on escape sequences for colour and cursor movement on the terminal behind stderr
/// where that needs doing (the Windows console); false where they cannot be shown.
pub fn enable_escape_sequences() -> bool {
    imp::enable_escape_sequences()
}

/// The character set named by a locale such as `ja_JP.SJIS` or `en_US.UTF-8@euro`.
#[cfg_attr(windows, allow(dead_code))]
fn locale_encoding(locale: &str) -> Option<&'static encoding_rs::Encoding> {
    let codeset = locale.split_once('.')?.1;
    let codeset = codeset.split('@').next().unwrap_or(codeset);
    encoding_rs::Encoding::for_label(codeset.as_bytes()).or_else(|| match codeset.to_ascii_lowercase().as_str() {
        "eucjp" => Some(encoding_rs::EUC_JP),
        "euckr" => Some(encoding_rs::EUC_KR),
        _ => None,
    })
}

#[cfg(unix)]
mod imp {
    pub fn output_encoding() -> Option<&'static encoding_rs::Encoding> {
        ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .and_then(|locale| super::locale_encoding(&locale))
    }

    pub fn enable_escape_sequences() -> bool {
        true
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::Globalization::GetOEMCP;
    use windows_sys::Win32::System::Console::{
        ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, GetConsoleOutputCP, GetStdHandle, STD_ERROR_HANDLE,
        SetConsoleMode,
    };

    pub fn output_encoding() -> Option<&'static encoding_rs::Encoding> {
        // SAFETY: no arguments; 0 when the process has no console.
        let cp = match unsafe { GetConsoleOutputCP() } {
            // SAFETY: as above.
            0 => unsafe { GetOEMCP() },
            cp => cp,
        };
        codepage::to_encoding(u16::try_from(cp).ok()?)
    }

    pub fn enable_escape_sequences() -> bool {
        // SAFETY: querying and setting the mode of our own stderr console handle.
        unsafe {
            let handle = GetStdHandle(STD_ERROR_HANDLE);
            let mut mode = 0;
            if GetConsoleMode(handle, &mut mode) == 0 {
                return false;
            }
            mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0
                || SetConsoleMode(handle, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_name_their_encoding() {
        assert_eq!(locale_encoding("ja_JP.SJIS"), Some(encoding_rs::SHIFT_JIS));
        assert_eq!(locale_encoding("en_US.UTF-8@euro"), Some(encoding_rs::UTF_8));
        assert_eq!(locale_encoding("ja_JP.eucJP"), Some(encoding_rs::EUC_JP));
        assert_eq!(locale_encoding("C"), None);
    }
}
