//! Replaces every secret value (and every line of a multi-line one) with `****`.
//!
//! Everything that leaves the process passes through a [`Masker`]: terminal lines, JSON events,
//! journal records, plans, reports and error messages.

#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so a value is masked before any of its lines.
    needles: Vec<String>,
}

pub const MASK: &str = "****";

/// Keys whose values are words of a record's structure, never free text.
const STRUCTURE: &[&str] = &[
    "type",
    "event",
    "outcome",
    "step",
    "state",
    "undo",
    "op",
    "kind",
    "durability",
    "decision",
    "time",
    "run_id",
    "sha256",
    "fingerprint",
    "boot",
    "verdict",
    "attempt",
    "started",
    "finished",
];

impl Masker {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                continue;
            }
            needles.push(secret.to_owned());
            if secret.contains('\n') {
                needles.extend(
                    secret
                        .lines()
                        .map(|l| l.trim_end_matches('\r'))
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_owned),
                );
            }
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Masker { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out.into_owned()
    }

    /// Masks every string inside a JSON value, but the words of its structure (a record's type,
    /// an outcome, a step id, a time, a digest): a short secret that happens to be part of
    /// such a word must not make the record unreadable, and none of them holds a secret.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) if self.needles.iter().any(|n| s.contains(n.as_str())) => *s = self.mask(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.mask_json(v)),
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if !STRUCTURE.contains(&k.as_str()) {
                        self.mask_json(v);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_values_and_lines() {
        let m = Masker::new(["s3cr3t", "line-one\nline-two\n"]);
        assert_eq!(m.mask("pw=s3cr3t!"), "pw=****!");
        assert_eq!(m.mask("a line-two b"), "a **** b");
        assert_eq!(m.mask("line-one\nline-two"), "****");
        assert_eq!(m.mask("nothing"), "nothing");
    }

    #[test]
    fn empty_secrets_mask_nothing() {
        let m = Masker::new(["", "\n"]);
        assert!(m.is_empty());
        assert_eq!(m.mask("abc"), "abc");
    }

    #[test]
    fn masks_json() {
        let m = Masker::new(["pw"]);
        let mut v = serde_json::json!({"a": ["x pw y", {"b": "pw"}], "c": 1});
        m.mask_json(&mut v);
        let mut record = serde_json::json!({"type": "step_started", "step": "start", "error": "bad t"});
        Masker::new(["t"]).mask_json(&mut record);
        assert_eq!(record, serde_json::json!({"type": "step_started", "step": "start", "error": "bad ****"}));
        assert_eq!(v, serde_json::json!({"a": ["x **** y", {"b": "****"}], "c": 1}));
    }
}
