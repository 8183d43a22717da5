//! The JSON Schema: generated from the model, checked in, and satisfied by every shipped runbook.

use crate::support::{Test, crate_path};

#[test]
fn the_checked_in_schema_matches_the_generated_one() {
    let checked_in = std::fs::read_to_string(crate_path("schemas/runbook.schema.json")).unwrap();
    Test::new().args(["schema"]).stdout(&checked_in).run();
}

fn yaml_files(dir: &str, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(crate_path(dir)) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().is_dir() {
            yaml_files(&e.path().strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string(), out);
        } else if e.path().extension().is_some_and(|x| x == "yaml") {
            out.push(e.path());
        }
    }
}

#[test]
fn every_shipped_runbook_satisfies_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate_path("schemas/runbook.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is valid");
    let mut files = Vec::new();
    yaml_files("runbooks", &mut files);
    yaml_files("examples/runbooks", &mut files);
    assert!(files.len() >= 4);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let node = runbook::format::yaml::parse(&text).unwrap();
        let instance = node.to_json();
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn the_schema_rejects_what_validate_rejects() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate_path("schemas/runbook.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for bad in [
        "runbook: 1\nname: x\nsteps:\n  - id: a\n    cpy: {from: a, to: b}\n",
        "runbook: 1\nname: x\nsteps:\n  - id: a\n    copy: {form: a, to: b}\n",
        "runbook: 1\nname: Bad Name\nsteps: []\n",
        "runbook: 2\nname: x\nsteps: []\n",
    ] {
        let instance = runbook::format::yaml::parse(bad).unwrap().to_json();
        assert!(!validator.is_valid(&instance), "schema accepts {bad}");
    }
}

#[test]
fn the_schema_knows_every_top_level_key_the_loader_knows() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate_path("schemas/runbook.schema.json")).unwrap()).unwrap();
    let props: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(props, runbook::format::model::TOP_LEVEL_KEYS);
}
