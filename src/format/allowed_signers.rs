//! OpenSSH's `allowed_signers` file (ssh-keygen(1), "ALLOWED SIGNERS"): who may sign, with which
//! key, in which namespaces and when. One entry per line:
//!
//! ```text
//! alice@example.com,alice namespaces="runbook-plan",valid-before="20271231Z" ssh-ed25519 AAAA… laptop
//! ```
//!
//! Read strictly: a line this reader does not understand is an error at its line and column,
//! never skipped (a skipped line would silently drop a signer or, worse, a restriction).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ssh_key::PublicKey;
use ssh_key::public::KeyData;

use crate::format::diagnostic::Diagnostic;
use crate::format::source::{Located, Source, Span};

/// One line of the file.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The principals field as written (comma-separated patterns), which is how the signer is
    /// named in every report.
    pub principals: String,
    pub key: KeyData,
    /// `namespaces="…"`: the namespaces the key may sign in (all when absent).
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<SystemTime>,
    pub valid_before: Option<SystemTime>,
}

#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub signers: Vec<Signer>,
}

/// Whether a signer may sign now, and if not why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    Valid,
    NotYet(String),
    Expired(String),
}

impl Signer {
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|list| list.iter().any(|n| pattern_matches(n, namespace)))
    }

    pub fn validity(&self, at: SystemTime) -> Validity {
        if let Some(after) = self.valid_after
            && at < after
        {
            return Validity::NotYet(format!("valid after {}", humantime::format_rfc3339_seconds(after)));
        }
        if let Some(before) = self.valid_before
            && at >= before
        {
            return Validity::Expired(format!("valid before {}", humantime::format_rfc3339_seconds(before)));
        }
        Validity::Valid
    }
}

impl AllowedSigners {
    /// The lines whose key is `key`, in file order.
    pub fn for_key<'a>(&'a self, key: &'a KeyData) -> impl Iterator<Item = &'a Signer> + 'a {
        self.signers.iter().filter(move |s| s.key == *key)
    }

    /// Parses the file's text; `source` names it in errors.
    pub fn parse(source: &Arc<Source>) -> Result<AllowedSigners, Diagnostic> {
        let mut signers = Vec::new();
        let mut offset = 0;
        for raw in source.text.split_inclusive('\n') {
            let line_start = offset;
            offset += raw.len();
            let line = raw.trim_end_matches(['\n', '\r']);
            let lead = line.len() - line.trim_start().len();
            let body = line.trim();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let at = |from: usize, len: usize| Located::new(source, Span::new(line_start + lead + from, len));
            let signer = parse_line(body).map_err(|(from, len, message, hint)| {
                Diagnostic::error(format!("allowed signers: {message}")).at(at(from, len)).hint(hint)
            })?;
            signers.push(signer);
        }
        Ok(AllowedSigners { signers })
    }
}

type LineError = (usize, usize, String, String);

/// Splits a line into fields at spaces outside double quotes: (start, text).
fn fields(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            ' ' | '\t' if !quoted => {
                if let Some(s) = start.take() {
                    out.push((s, &line[s..i]));
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

fn parse_line(line: &str) -> Result<Signer, LineError> {
    let fields = fields(line);
    let Some(&(_, principals)) = fields.first() else {
        return Err((0, 0, "an empty entry".into(), "write `PRINCIPALS [OPTIONS] KEYTYPE KEY`".into()));
    };
    let mut signer = Signer {
        principals: principals.to_owned(),
        key: placeholder_key(),
        namespaces: None,
        valid_after: None,
        valid_before: None,
    };
    let mut rest = &fields[1..];
    // Options come before the key type; a key type is a known algorithm name.
    if let Some(&(start, options)) = rest.first()
        && !looks_like_key_type(options)
    {
        for (from, option) in split_options(options) {
            apply_option(&mut signer, option).map_err(|(message, hint)| (start + from, option.len(), message, hint))?;
        }
        rest = &rest[1..];
    }
    let Some(&(type_at, key_type)) = rest.first() else {
        return Err((
            line.len(),
            0,
            format!("the entry for `{principals}` has no key"),
            "after the principals (and options) comes the key as in a `.pub` file: `ssh-ed25519 AAAA…`".into(),
        ));
    };
    let Some(&(_, blob)) = rest.get(1) else {
        return Err((type_at, key_type.len(), format!("`{key_type}` is not followed by a key"), pub_hint()));
    };
    let key = PublicKey::from_openssh(&format!("{key_type} {blob}")).map_err(|e| {
        (type_at, key_type.len() + 1 + blob.len(), format!("this key cannot be read ({e})"), pub_hint())
    })?;
    signer.key = key.key_data().clone();
    Ok(signer)
}

fn pub_hint() -> String {
    "copy the key's line from its `.pub` file (`ssh-ed25519 AAAA… comment`)".into()
}

fn placeholder_key() -> KeyData {
    KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([0; 32]))
}

fn looks_like_key_type(word: &str) -> bool {
    word.starts_with("ssh-")
        || word.starts_with("ecdsa-sha2-")
        || word.starts_with("sk-")
        || word.starts_with("rsa-sha2-")
        || word.contains("-cert-v01@openssh.com")
}

/// `a,b="x,y",c` → each option with its offset.
fn split_options(options: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in options.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push((start, &options[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, &options[start..]));
    out
}

fn apply_option(signer: &mut Signer, option: &str) -> Result<(), (String, String)> {
    let (name, value) = match option.split_once('=') {
        Some((n, v)) => (n, Some(v.trim_matches('"'))),
        None => (option, None),
    };
    let value_of =
        |what: &str| value.ok_or_else(|| (format!("`{name}` needs a value"), format!("write `{name}=\"{what}\"`")));
    match name.to_ascii_lowercase().as_str() {
        "namespaces" => {
            let list = value_of("runbook-plan")?;
            signer.namespaces = Some(list.split(',').map(|n| n.trim().to_owned()).collect());
        }
        "valid-after" => signer.valid_after = Some(parse_time(value_of("20260101")?)?),
        "valid-before" => signer.valid_before = Some(parse_time(value_of("20271231Z")?)?),
        "cert-authority" => {
            return Err((
                "`cert-authority` entries (SSH certificates) are not supported".into(),
                "list each approver's own key instead".into(),
            ));
        }
        other => {
            let known = ["namespaces", "valid-after", "valid-before", "cert-authority"];
            let hint = match crate::format::diagnostic::did_you_mean(other, known) {
                Some(m) => format!("did you mean `{m}`?"),
                None => "the options are namespaces=, valid-after=, valid-before=".into(),
            };
            return Err((format!("unknown option `{other}`"), hint));
        }
    }
    Ok(())
}

/// `YYYYMMDD[HHMM[SS]][Z]`, as ssh-keygen writes them. Without `Z` OpenSSH reads local time;
/// this reader takes every time as UTC, so write the `Z` to mean exactly the same thing to both.
fn parse_time(text: &str) -> Result<SystemTime, (String, String)> {
    let bad = || {
        (
            format!("`{text}` is not a time"),
            "write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with Z for UTC (e.g. 20271231Z)".into(),
        )
    };
    let digits = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let n = |from: usize, to: usize| digits.get(from..to).map_or(0, |s| s.parse::<u64>().unwrap_or(0));
    let (year, month, day) = (n(0, 4), n(4, 6), n(6, 8));
    let (hour, minute, second) = (n(8, 10), n(10, 12), n(12, 14));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 || year < 1970
    {
        return Err(bad());
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let seconds = days as u64 * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// OpenSSH's wildcard patterns: `*` any run, `?` one character.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUsd5ggHNHFh/Gj2gW9P7TC3UydJNm2nZ8Uiu5YLVkq";

    fn parse(text: &str) -> Result<AllowedSigners, String> {
        AllowedSigners::parse(&Source::new("allowed_signers", text.to_owned())).map_err(|d| d.to_string())
    }

    #[test]
    fn reads_principals_options_and_keys() {
        let text = format!(
            "# approvers\n\nalice@example.com,alice {KEY} laptop\nbob namespaces=\"runbook-plan,git\",valid-after=\"20260101\",valid-before=\"202712312359Z\" {KEY}\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.signers.len(), 2);
        assert_eq!(s.signers[0].principals, "alice@example.com,alice");
        let bob = &s.signers[1];
        assert!(bob.allows_namespace("runbook-plan") && !bob.allows_namespace("file"));
        let t = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(bob.validity(t(1_767_225_600)), Validity::Valid); // 2026-01-01T00:00:00Z
        assert!(matches!(bob.validity(t(1_767_225_599)), Validity::NotYet(_)));
        assert!(matches!(bob.validity(t(1_830_297_540)), Validity::Expired(_))); // 2027-12-31T23:59Z
        assert_eq!(bob.validity(t(1_830_297_539)), Validity::Valid);
    }

    #[test]
    fn every_bad_line_is_an_error_at_its_place() {
        let cases = [
            ("alice\n", "has no key", ":1:"),
            (&format!("alice namespace=\"x\" {KEY}\n") as &str, "did you mean `namespaces`", ":1:7"),
            (&format!("# c\nalice valid-before=\"2027\" {KEY}\n"), "is not a time", ":2:7"),
            ("alice ssh-ed25519 AAAAnotbase64!!\n", "cannot be read", ":1:7"),
            ("alice ssh-ed25519\n", "is not followed by a key", ":1:7"),
            (&format!("alice cert-authority {KEY}\n"), "not supported", ":1:7"),
        ];
        for (text, message, place) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(message) && err.contains(place), "{text:?} gave:\n{err}");
        }
    }

    #[test]
    fn wildcards_match_as_openssh_does() {
        assert!(pattern_matches("runbook-*", "runbook-plan"));
        assert!(pattern_matches("r?nbook-plan", "runbook-plan"));
        assert!(!pattern_matches("git", "runbook-plan"));
        assert!(pattern_matches("*", ""));
    }
}
