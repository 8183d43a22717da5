use crate::cli::exit::{CmdResult, ExitCode};

/// The JSON Schema of the runbook format, generated from [`crate::format::model::RawRunbook`].
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(crate::format::model::RawRunbook);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

pub fn run() -> CmdResult {
    print!("{}", schema_json());
    Ok(ExitCode::Success)
}
