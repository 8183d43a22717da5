use crate::cli::exit::{CmdResult, ExitCode};

/// The JSON Schema of the runbook format (see [`crate::format::schema`]).
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&crate::format::schema::json_schema()).expect("a schema serializes");
    text.push('\n');
    text
}

pub fn run() -> CmdResult {
    print!("{}", schema_json());
    Ok(ExitCode::Success)
}
