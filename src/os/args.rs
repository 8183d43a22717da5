//! FILE arguments with `*` and `?`. The Windows command prompt hands them to a program as
//! typed, and programs there expand them themselves (`runbook validate runbooks\apex-one\*.yaml`);
//! a Unix shell has already expanded them, and a `*` that reaches us there is part of a name.

use std::path::{Path, PathBuf};

/// Whether this system leaves wildcards in FILE arguments for the program to expand.
pub const EXPANDS_WILDCARDS: bool = cfg!(windows);

/// Names matched case-insensitively, as Windows compares names.
const FOLD_CASE: bool = cfg!(windows);

/// A word as this system's command prompt needs it in a command the user is told to type:
/// single quotes for a Unix shell, double quotes for cmd.
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:".contains(c) || (cfg!(windows) && c == '\\');
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else if cfg!(windows) {
        format!("\"{word}\"")
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

pub fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Every existing path `pattern` matches, in order, spelled as the pattern was (its folders
/// and separators kept); `*` and `?` may appear in any part of it.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut results = vec![String::new()];
    let mut rest = pattern;
    loop {
        let (part, sep, tail) = match rest.find(['/', '\\']) {
            Some(i) => (&rest[..i], Some(&rest[i..=i]), &rest[i + 1..]),
            None => (rest, None, ""),
        };
        if has_wildcard(part) {
            let mut next = Vec::new();
            for base in &results {
                let dir = if base.is_empty() { Path::new(".") } else { Path::new(base.as_str()) };
                let Ok(entries) = std::fs::read_dir(dir) else { continue };
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| wildcard_match(part, name, FOLD_CASE))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| format!("{base}{n}")));
            }
            results = next;
        } else {
            results.iter_mut().for_each(|r| r.push_str(part));
        }
        match sep {
            Some(sep) => {
                results.iter_mut().for_each(|r| r.push_str(sep));
                rest = tail;
            }
            None => break,
        }
    }
    results.into_iter().map(PathBuf::from).filter(|p| p.exists()).collect()
}

/// `*` matches any run of characters, `?` exactly one.
fn wildcard_match(pattern: &str, name: &str, fold_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if fold_case { s.chars().flat_map(char::to_lowercase).collect() } else { s.chars().collect() }
    };
    let (p, n) = (fold(pattern), fold(name));
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and where in the name it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_cmd_does() {
        assert!(wildcard_match("*.yaml", "restore-auth-cert.yaml", false));
        assert!(!wildcard_match("*.yaml", "restore.yml", false));
        assert!(wildcard_match("b?ckup*", "backup-auth-cert.yaml", false));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("a*b*c", "aXXbYYbc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYYbd", false));
        assert!(wildcard_match("*.YAML", "x.yaml", true));
        assert!(!wildcard_match("*.YAML", "x.yaml", false));
    }

    #[test]
    fn patterns_expand_to_existing_paths_in_their_own_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("runbooks").join("apex-one");
        std::fs::create_dir_all(&base).unwrap();
        for name in ["b.yaml", "a.yaml", "notes.txt"] {
            std::fs::write(base.join(name), "").unwrap();
        }
        let root = dir.path().display().to_string();
        let got = expand(&format!("{root}/runbooks/apex-one/*.yaml"));
        assert_eq!(
            got,
            [format!("{root}/runbooks/apex-one/a.yaml"), format!("{root}/runbooks/apex-one/b.yaml")].map(PathBuf::from)
        );
        assert_eq!(expand(&format!("{root}/*/apex-one/n?tes.txt")).len(), 1);
        assert!(expand(&format!("{root}/runbooks/*.yaml")).is_empty());
    }
}
