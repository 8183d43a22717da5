//! What a step left behind: its outcome and, for commands, output and captures. The same record
//! feeds templates (`steps.<id>`), the journal and reports.

use indexmap::IndexMap;
use minijinja::value::Value;
use serde::{Deserialize, Serialize};

use crate::format::model::Stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Changed something.
    Done,
    Unchanged,
    Skipped,
    Failed,
}

impl Outcome {
    /// Every outcome, in the order summaries list them.
    pub const ALL: [Outcome; 4] = [Outcome::Done, Outcome::Unchanged, Outcome::Skipped, Outcome::Failed];

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
