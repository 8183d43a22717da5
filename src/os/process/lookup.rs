//! Finding a program as the Windows command prompt finds it, on every system.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The extensions a bare program name is tried with, in order (`PATHEXT` on Windows, where a
/// name without an extension is never run as is); empty elsewhere.
fn program_extensions() -> &'static [String] {
    static EXTENSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
        if !cfg!(windows) {
            return Vec::new();
        }
        let raw = std::env::var("PATHEXT").ok().filter(|v| !v.trim().is_empty());
        pathext_list(raw.as_deref().unwrap_or(".COM;.EXE;.BAT;.CMD"))
    });
    &EXTENSIONS
}

fn pathext_list(raw: &str) -> Vec<String> {
    raw.split(';').map(str::trim).filter(|e| e.starts_with('.') && e.len() > 1).map(str::to_owned).collect()
}

/// The names tried for `program`, as cmd.exe tries them: with `extensions` (PATHEXT), a name
/// that has an extension is tried as is first, then with each one appended; a name without one
/// only with each one appended. Without extensions (Unix), just the name.
fn candidate_names(program: &str, extensions: &[String]) -> Vec<String> {
    if extensions.is_empty() {
        return vec![program.to_owned()];
    }
    let has_extension = Path::new(program).extension().is_some();
    let mut names = Vec::with_capacity(extensions.len() + 1);
    if has_extension {
        names.push(program.to_owned());
    }
    names.extend(extensions.iter().map(|e| format!("{program}{e}")));
    names
}

/// Finds the program as the Windows command prompt would: a bare name in `cwd` first, then on
/// `PATH`, each with the `PATHEXT` extensions on Windows; a name with a separator relative to
/// `cwd`. `exists` says whether a file is there (the plan asks its overlay, a run the disk), so
/// a plan and a run find the same program.
pub fn resolve_program(program: &str, cwd: &Path, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let extensions = program_extensions();
    let p = Path::new(program);
    let first_in = |dir: Option<&Path>| {
        candidate_names(program, extensions)
            .into_iter()
            .map(|n| dir.map_or_else(|| PathBuf::from(&n), |d| d.join(&n)))
            .find(|c| exists(c))
    };
    if p.is_absolute() {
        return first_in(None);
    }
    if program.contains(['/', '\\']) {
        return first_in(Some(cwd)).map(|c| crate::os::path::native(&c.to_string_lossy()));
    }
    first_in(Some(cwd)).or_else(|| search_path(program, extensions))
}

/// A bare name on `PATH`, looked up once per process: PATH does not change during a run,
/// and a runbook of many steps runs the same few programs again and again.
fn search_path(program: &str, extensions: &[String]) -> Option<PathBuf> {
    static CACHE: LazyLock<std::sync::Mutex<std::collections::HashMap<String, Option<PathBuf>>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(program.to_owned())
        .or_insert_with(|| {
            let path = std::env::var_os("PATH")?;
            let names = candidate_names(program, extensions);
            std::env::split_paths(&path).find_map(|dir| names.iter().map(|n| dir.join(n)).find(|c| is_executable(c)))
        })
        .clone()
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tried_follow_pathext() {
        let ext = pathext_list(".COM;.EXE; .BAT;;.CMD;bad");
        assert_eq!(ext, [".COM", ".EXE", ".BAT", ".CMD"]);
        assert_eq!(
            candidate_names("CertificateManager", &ext),
            ["CertificateManager.COM", "CertificateManager.EXE", "CertificateManager.BAT", "CertificateManager.CMD"]
        );
        assert_eq!(candidate_names("tool.exe", &ext)[..2], ["tool.exe".to_string(), "tool.exe.COM".to_string()]);
        assert_eq!(candidate_names("tool", &[]), ["tool"]);
    }
}
