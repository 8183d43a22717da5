//! A run's evidence bundle: one zip file for the change ticket, with `manifest.json` listing
//! every member's SHA-256 (schema: `schemas/evidence.schema.json`), optionally signed by the
//! operator (`manifest.json.sig`, SSHSIG namespace `runbook-evidence`). Written by
//! `runbook evidence`, checked offline by `runbook verify`.

use std::io::{Read, Write};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::digest::sha256_hex;

pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SIGNATURE: &str = "manifest.json.sig";
/// The plan as approved (its bytes), and its approvals beside it.
pub const PLAN: &str = "plan/plan.json";
pub const APPROVALS: &str = "plan/approvals/";
pub const JOURNAL: &str = "journal.jsonl";
pub const RUNBOOK: &str = "runbook/";

/// What the bundle holds and where it comes from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "runbook evidence manifest",
    description = "manifest.json of an evidence bundle written by `runbook evidence`: every other member's SHA-256, and what the bundle is the evidence of."
)]
pub struct Manifest {
    /// The manifest's format version (1).
    pub format: u32,
    /// The runbook build that made the bundle (`runbook --version`).
    pub tool_version: String,
    /// When the bundle was made (RFC 3339, UTC).
    pub created: String,
    /// Where and by whom the bundle was made.
    pub host: String,
    pub user: String,
    pub run: RunFacts,
    /// What the bundle says of itself: a run without a reviewed plan, a file that could not be
    /// included as it ran.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Every member but `manifest.json` and `manifest.json.sig`, sorted by path.
    pub members: Vec<Member>,
}

/// The run the bundle is the evidence of, as its journal tells.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFacts {
    pub run_id: String,
    pub runbook: String,
    /// `succeeded`, `failed`, `interrupted`, `abandoned`, `rolled back`, or `unfinished`.
    pub outcome: String,
    pub started: String,
    pub finished: Option<String>,
    /// Who started it, where.
    pub host: String,
    pub user: String,
    /// The SHA-256 of the reviewed plan it ran (`run --plan`), if any.
    pub plan_sha256: Option<String>,
    /// The build of runbook that ran it.
    pub tool_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The path in the bundle (`/`-separated).
    pub path: String,
    /// Lowercase hex.
    pub sha256: String,
    pub size: u64,
}

/// The manifest's JSON Schema (`runbook schema evidence`, `schemas/evidence.schema.json`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Manifest)).expect("a schema serializes")
}

/// The bundle as members, before it is written.
#[derive(Default)]
pub struct Bundle {
    pub members: Vec<(String, Vec<u8>)>,
}

impl Bundle {
    pub fn add(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.members.push((path.into(), bytes.into()));
    }

    /// Every member, with its digest, sorted by path.
    pub fn listing(&self) -> Vec<Member> {
        let mut list: Vec<Member> = self
            .members
            .iter()
            .map(|(path, bytes)| Member { path: path.clone(), sha256: sha256_hex(bytes), size: bytes.len() as u64 })
            .collect();
        list.sort_by(|a, b| a.path.cmp(&b.path));
        list
    }

    /// The zip's bytes: the manifest first, its signature, then the members by path.
    pub fn zip(mut self, manifest: &[u8], signature: Option<&[u8]>) -> Result<Vec<u8>, String> {
        self.members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        let mut put = |name: &str, bytes: &[u8]| -> Result<(), String> {
            zip.start_file(name, options).map_err(|e| e.to_string())?;
            zip.write_all(bytes).map_err(|e| e.to_string())
        };
        put(MANIFEST, manifest)?;
        if let Some(sig) = signature {
            put(MANIFEST_SIGNATURE, sig)?;
        }
        for (name, bytes) in &self.members {
            put(name, bytes)?;
        }
        zip.finish().map_err(|e| e.to_string())?;
        Ok(out.into_inner())
    }
}

/// A bundle read back: every member's bytes, by path, in the zip's order.
pub struct Opened {
    pub members: Vec<(String, Vec<u8>)>,
}

impl Opened {
    pub fn read(path: &Path) -> Result<Opened, String> {
        let file = std::fs::File::open(path).map_err(|e| crate::os::fs::io_reason(&e))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a zip file ({e})"))?;
        let mut members = Vec::new();
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| format!("member {i} cannot be read ({e})"))?;
            if entry.is_dir() {
                continue;
            }
            let name =
                entry.name().map_err(|e| format!("member {i} has a name that cannot be read ({e})"))?.into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| format!("{name} cannot be read ({e})"))?;
            members.push((name, bytes));
        }
        Ok(Opened { members })
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.members.iter().find(|(p, _)| p == path).map(|(_, b)| b.as_slice())
    }

    /// The members under a folder (`plan/approvals/`), by their name in it.
    pub fn under<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        self.members.iter().filter_map(move |(p, b)| p.strip_prefix(folder).map(|n| (n, b.as_slice())))
    }
}
