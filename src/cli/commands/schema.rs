use crate::cli::args::SchemaOf;
use crate::cli::exit::{CmdResult, ExitCode};

/// The JSON Schema of the runbook format (see [`crate::format::schema`]).
pub fn schema_json() -> String {
    pretty(&crate::format::schema::json_schema())
}

fn pretty(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema serializes");
    text.push('\n');
    text
}

pub fn run(of: SchemaOf) -> CmdResult {
    match of {
        SchemaOf::Runbook => print!("{}", schema_json()),
        SchemaOf::Events => print!("{}", pretty(&crate::cli::event::schema())),
        SchemaOf::Evidence => print!("{}", pretty(&crate::state::evidence::schema())),
        SchemaOf::Test => print!("{}", pretty(&crate::compile::testfile::schema())),
    }
    Ok(ExitCode::Success)
}
