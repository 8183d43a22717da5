//! The filesystem operations whose guarantees differ between systems: replacing a file in one
//! step, making a rename durable, and files held open by another program (Windows refuses to
//! touch them: a virus scanner or an editor briefly holding a file is common there).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long an operation on a file held open elsewhere is retried before it is reported.
const SHARING_RETRY: Duration = Duration::from_secs(2);

/// Moves the file `from` over `to` in one step: `to` names either its old content or the new
/// one, never neither; when `durable`, the move is on disk when this returns (Unix: `rename(2)`
/// then a sync of the folder; Windows: `MoveFileExW` with `REPLACE_EXISTING | WRITE_THROUGH`).
pub fn replace_file(from: &Path, to: &Path, durable: bool) -> io::Result<()> {
    retry_while_shared(&[from, to], || imp::replace_file(from, to, durable))?;
    if durable {
        sync_dir(super::path::parent_dir(to));
    }
    Ok(())
}

/// Moves `from` over `to` in one step, leaving the folder's sync to a later sync of a file on
/// the same file system that orders metadata (see [`Ordering`]).
pub fn replace_file_unsynced(from: &Path, to: &Path) -> io::Result<()> {
    retry_while_shared(&[from, to], || imp::replace_file(from, to, true))
}

/// Whether syncing one file makes earlier changes to folders of the same file system durable
/// too: so on Linux for ext4 and XFS, whose journals commit metadata in order (an `fdatasync`
/// of the run's journal, after a rename, commits the rename). Elsewhere folders are synced.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ordering {
    /// The device of the file whose sync follows, when its file system orders metadata.
    device: Option<u64>,
}

impl Ordering {
    /// For the file system of `path` (the folder of the file that will be synced after).
    pub fn of(path: &Path) -> Ordering {
        Ordering { device: imp::ordered_device(path) }
    }

    /// Whether a rename in `dir` is made durable by the later sync.
    pub fn covers(&self, dir: &Path) -> bool {
        self.device.is_some() && imp::device(dir) == self.device
    }
}

/// Makes a folder's entries (a rename, a new file) durable. On Windows the rename itself is
/// written through (NTFS journals its metadata), and a folder cannot be opened to be synced.
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    let _ = dir;
}

/// Runs `op`, again and again for a short, bounded time while a file it uses (`paths`) is held
/// open by another program without sharing (Windows); then fails saying so, with the holder when
/// the system can tell.
pub fn retry_while_shared<T>(paths: &[&Path], mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        match op() {
            Err(e) if imp::is_sharing_violation(&e) => {
                if started.elapsed() >= SHARING_RETRY {
                    return Err(in_use(paths));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

/// Opens a file for reading, waiting out a short sharing violation.
pub fn open_shared(path: &Path) -> io::Result<File> {
    retry_while_shared(&[path], || File::open(path))
}

fn in_use(paths: &[&Path]) -> io::Error {
    let holders: Vec<String> = paths.iter().flat_map(|p| imp::holders(p)).collect();
    let by = if holders.is_empty() { String::new() } else { format!(" (held by {})", holders.join(", ")) };
    io::Error::new(io::ErrorKind::ResourceBusy, format!("the file is in use by another program{by}"))
}

/// Like [`io_reason`], for an error met creating `path` or something in it: where a part of the
/// path is a file, every system says so (Windows would say only that the path was not found).
pub fn io_reason_at(path: &Path, e: &io::Error) -> String {
    let blocked =
        matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory)
            && path.ancestors().find(|a| a.exists()).is_some_and(|a| !a.is_dir());
    if blocked {
        return "a part of the path is not a folder".into();
    }
    io_reason(e)
}

/// A short reason for an I/O error, without the "(os error N)" noise.
pub fn io_reason(e: &io::Error) -> String {
    if imp::is_sharing_violation(e) {
        return "the file is in use by another program".into();
    }
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

#[cfg(unix)]
mod imp {
    use std::io;
    use std::path::Path;

    pub fn replace_file(from: &Path, to: &Path, _durable: bool) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    pub fn is_sharing_violation(_: &io::Error) -> bool {
        false
    }

    pub fn device(path: &Path) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| m.dev())
    }

    /// The device of `path` when its file system commits metadata in order (ext4, XFS).
    #[cfg(target_os = "linux")]
    pub fn ordered_device(path: &Path) -> Option<u64> {
        use std::os::unix::ffi::OsStrExt;
        const EXT4: i64 = 0xEF53;
        const XFS: i64 = 0x5846_5342;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: a NUL-terminated path and a zeroed statfs the call fills in.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)]
        let kind = st.f_type as i64;
        if kind == EXT4 || kind == XFS { device(path) } else { None }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn ordered_device(_: &Path) -> Option<u64> {
        None
    }

    pub fn holders(_: &Path) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(windows)]
mod imp {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION, ERROR_USER_MAPPED_FILE};
    use windows_sys::Win32::Storage::FileSystem::{MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH, MoveFileExW};
    use windows_sys::Win32::System::RestartManager::{
        CCH_RM_SESSION_KEY, RM_PROCESS_INFO, RmEndSession, RmGetList, RmRegisterResources, RmStartSession,
    };

    /// A path for the wide Win32 calls: absolute, and in the `\\?\` form when it is long, so
    /// paths past 260 characters work as they do through std.
    fn wide(path: &Path) -> Vec<u16> {
        let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = full.as_os_str().to_string_lossy().into_owned();
        let text = if text.len() < 248 || text.starts_with(r"\\?\") {
            text
        } else if let Some(unc) = text.strip_prefix(r"\\") {
            format!(r"\\?\UNC\{unc}")
        } else {
            format!(r"\\?\{text}")
        };
        std::ffi::OsStr::new(&text).encode_wide().chain(std::iter::once(0)).collect()
    }

    pub fn replace_file(from: &Path, to: &Path, durable: bool) -> io::Result<()> {
        let (from, to) = (wide(from), wide(to));
        let flags =
            if durable { MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH } else { MOVEFILE_REPLACE_EXISTING };
        // SAFETY: both are NUL-terminated wide strings that live across the call.
        let ok = unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), flags) };
        if ok == 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    pub fn is_sharing_violation(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error().map(|c| c as u32),
            Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION | ERROR_USER_MAPPED_FILE)
        )
    }

    /// The programs holding a file open, by the Restart Manager (empty when it cannot tell).
    /// A rename is written through (`MOVEFILE_WRITE_THROUGH`): there is no folder to sync.
    pub fn device(_: &Path) -> Option<u64> {
        None
    }

    pub fn ordered_device(_: &Path) -> Option<u64> {
        None
    }

    pub fn holders(path: &Path) -> Vec<String> {
        let mut session = 0u32;
        let mut key = [0u16; CCH_RM_SESSION_KEY as usize + 1];
        // SAFETY: `session` and `key` are ours to write; the key buffer has the size required.
        if unsafe { RmStartSession(&mut session, 0, key.as_mut_ptr()) } != 0 {
            return Vec::new();
        }
        let name = wide(path);
        let names = [name.as_ptr()];
        let mut out = Vec::new();
        // SAFETY: one valid wide string; the session is open.
        if unsafe { RmRegisterResources(session, 1, names.as_ptr(), 0, std::ptr::null(), 0, std::ptr::null()) } == 0 {
            let mut needed = 0u32;
            // SAFETY: plain data, zeroed is valid.
            let mut infos: [RM_PROCESS_INFO; 8] = unsafe { std::mem::zeroed() };
            let mut count = infos.len() as u32;
            let mut reasons = 0u32;
            // SAFETY: `infos` holds `count` entries; the other pointers are ours to write.
            let rc = unsafe { RmGetList(session, &mut needed, &mut count, infos.as_mut_ptr(), &mut reasons) };
            if rc == 0 {
                for info in &infos[..(count as usize).min(infos.len())] {
                    let end = info.strAppName.iter().position(|&c| c == 0).unwrap_or(info.strAppName.len());
                    let app = String::from_utf16_lossy(&info.strAppName[..end]);
                    out.push(format!("{app} (pid {})", info.Process.dwProcessId));
                }
            }
        }
        // SAFETY: ending the session opened above.
        unsafe {
            RmEndSession(session);
        }
        out
    }
}
/// The suffix of every temporary file runbook puts beside a target.
const TEMP_SUFFIX: &str = ".runbook-tmp";

/// Creates a new temporary file beside `target`, for a copy or write that then replaces the
/// target: created exclusively (`O_CREAT|O_EXCL`, `CREATE_NEW`), so it never follows a symlink
/// planted at its name nor truncates a file someone else put there, under a name with 64 random
/// bits no one can guess in advance (`.NAME.<16 hex digits>.runbook-tmp`).
pub fn create_temp_beside(target: &Path) -> io::Result<(PathBuf, File)> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = crate::os::path::parent_dir(target);
    let mut last = None;
    for _ in 0..16 {
        let temp = dir.join(format!(".{name}.{:016x}{TEMP_SUFFIX}", random_u64()));
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Removes the temporary files an interrupted copy or write left in `dir` (a killed engine
/// cannot clean up after itself): only files named as [`create_temp_beside`] names them, and
/// only those last written before `before` (the start of this process), so another run's copy
/// in progress is left alone. A symlink with such a name is removed itself, never followed.
pub fn remove_stale_temps(dir: &Path, before: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_temp_name(name) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        if !meta.is_dir() && meta.modified().is_ok_and(|m| m < before) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a file name is one [`create_temp_beside`] makes.
fn is_temp_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(TEMP_SUFFIX) else { return false };
    let Some((head, token)) = stem.rsplit_once('.') else { return false };
    head.starts_with('.') && head.len() > 1 && token.len() == 16 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 64 bits no other process can predict: std's hasher keys come from the system's random source.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

#[cfg(test)]
mod temp_tests {
    use super::*;

    #[test]
    fn temporary_names_are_new_unguessable_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        let (a, _) = create_temp_beside(&target).unwrap();
        let (b, _) = create_temp_beside(&target).unwrap();
        assert_ne!(a, b);
        for t in [&a, &b] {
            let name = t.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(".out.txt.") && is_temp_name(name), "{name}");
        }
        for other in [
            ".out.txt.runbook-tmp",
            "out.txt.0123456789abcdef.runbook-tmp",
            ".x.0123456789abcdeg.runbook-tmp",
            ".x.12.runbook-tmp",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
    }

    #[test]
    fn only_stale_temporary_files_are_swept_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (stale, _) = create_temp_beside(&dir.path().join("a")).unwrap();
        let kept = dir.path().join(".a.runbook-tmp");
        std::fs::write(&kept, "not ours").unwrap();
        let cutoff = SystemTime::now() + Duration::from_secs(5);
        #[cfg(unix)]
        let (victim, link) = {
            let victim = tempfile::NamedTempFile::new().unwrap();
            let link = dir.path().join(".b.00000000000000ff.runbook-tmp");
            std::os::unix::fs::symlink(victim.path(), &link).unwrap();
            (victim, link)
        };
        remove_stale_temps(dir.path(), cutoff);
        assert!(!stale.exists());
        assert!(kept.exists());
        #[cfg(unix)]
        {
            assert!(link.symlink_metadata().is_err(), "the planted link itself goes");
            assert!(victim.path().exists(), "what it pointed at stays");
        }
        // One written after the cut-off (another run's copy in progress) stays.
        let (fresh, _) = create_temp_beside(&dir.path().join("c")).unwrap();
        remove_stale_temps(dir.path(), SystemTime::now() - Duration::from_secs(60));
        assert!(fresh.exists());
    }
}
