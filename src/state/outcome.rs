//! What a step left behind: its outcome and, for commands, output and captures. The same record
//! feeds templates (`steps.<id>`), the journal and reports.

use indexmap::IndexMap;
use minijinja::value::Value;
use serde::{Deserialize, Serialize};

use crate::engine::render::RenderedExpect;
use crate::format::model::Stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Changed something.
    Done,
    Unchanged,
    Skipped,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// A step's results as templates and the journal see them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub captures: IndexMap<String, String>,
}

impl StepData {
    /// A copy's result: `steps.<id>.captures.sha256` is the verified digest of the file.
    pub fn with_sha256(sha: Option<String>) -> StepData {
        let mut data = StepData::default();
        if let Some(sha) = sha {
            data.captures.insert("sha256".into(), sha);
        }
        data
    }

    pub fn to_value(&self, outcome: Outcome) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("status".into(), outcome.as_str().into());
        if let Some(s) = &self.stdout {
            map.insert("stdout".into(), s.clone().into());
        }
        if let Some(s) = &self.stderr {
            map.insert("stderr".into(), s.clone().into());
        }
        if let Some(c) = self.exit_code {
            map.insert("exit_code".into(), c.into());
        }
        map.insert(
            "captures".into(),
            serde_json::Value::Object(self.captures.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect()),
        );
        Value::from(minijinja::value::Serde(serde_json::Value::Object(map)))
    }

    pub fn text(&self, stream: Stream) -> String {
        let out = self.stdout.as_deref().unwrap_or("");
        let err = self.stderr.as_deref().unwrap_or("");
        match stream {
            Stream::Stdout => out.to_owned(),
            Stream::Stderr => err.to_owned(),
            Stream::Any if err.is_empty() => out.to_owned(),
            Stream::Any if out.is_empty() => err.to_owned(),
            Stream::Any if out.ends_with('\n') => format!("{out}{err}"),
            Stream::Any => format!("{out}\n{err}"),
        }
    }
}

/// The last lines of a text, for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl RenderedExpect {
    /// Checks a command's results; on success returns the named captures of `matches`.
    pub fn check(&self, data: &StepData) -> Result<IndexMap<String, String>, String> {
        let text = data.text(self.stream);
        let code = data.exit_code;
        let mut problems = Vec::new();
        if let Some(codes) = &self.exit_codes
            && !code.is_some_and(|c| codes.contains(&c))
        {
            let expected = codes.iter().map(i32::to_string).collect::<Vec<_>>().join(" or ");
            let got = code.map_or_else(|| "none (killed by a signal)".to_string(), |c| c.to_string());
            problems.push(format!("expected exit code {expected}, got {got}"));
        }
        for c in &self.contains {
            if !text.contains(c.as_str()) {
                problems.push(format!("expected the output to contain {c:?}"));
            }
        }
        for c in &self.not_contains {
            if text.contains(c.as_str()) {
                problems.push(format!("expected the output not to contain {c:?}"));
            }
        }
        let mut captures = IndexMap::new();
        if let Some(re) = &self.matches {
            match re.captures(&text) {
                Some(caps) => {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            captures.insert(name.to_owned(), m.as_str().to_owned());
                        }
                    }
                }
                None => problems.push(format!("expected the output to match /{}/", re.as_str())),
            }
        }
        if problems.is_empty() {
            return Ok(captures);
        }
        let seen = tail(&text, 10);
        let seen = if seen.is_empty() { "(no output)".to_string() } else { seen };
        Err(format!("{}\nlast lines of {}:\n{}", problems.join("; "), stream_name(self.stream), indent(&seen)))
    }
}

fn stream_name(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
        Stream::Any => "the output",
    }
}

pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}
