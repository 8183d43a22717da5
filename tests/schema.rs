//! The JSON Schema: generated from the model, checked in, and satisfied by every shipped runbook.

use crate::support::{Test, crate_path};

#[test]
fn the_checked_in_schema_matches_the_generated_one() {
    let checked_in = std::fs::read_to_string(crate_path("schemas/runbook.schema.json")).unwrap();
    // Compared as written: the schema's regexes hold backslashes that are not paths.
    let out = Test::new().args(["schema"]).any_stdout().run();
    assert!(out.stdout_raw == checked_in, "`runbook schema` differs from schemas/runbook.schema.json: regenerate it");
}

/// The evidence manifest's schema is generated from the manifest's type.
#[test]
fn the_checked_in_evidence_schema_matches_the_generated_one() {
    let checked_in = std::fs::read_to_string(crate_path("schemas/evidence.schema.json")).unwrap();
    let out = Test::new().args(["schema", "evidence"]).any_stdout().run();
    assert!(
        out.stdout_raw == checked_in,
        "`runbook schema evidence` differs from schemas/evidence.schema.json: regenerate it"
    );
}

/// The events' schema is generated from the events themselves (one typed enum).
#[test]
fn the_checked_in_events_schema_matches_the_generated_one() {
    let checked_in = std::fs::read_to_string(crate_path("schemas/events.schema.json")).unwrap();
    let out = Test::new().args(["schema", "events"]).any_stdout().run();
    assert!(
        out.stdout_raw == checked_in,
        "`runbook schema events` differs from schemas/events.schema.json: regenerate it"
    );
}

fn yaml_files(dir: &str, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(crate_path(dir)) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().is_dir() {
            yaml_files(&e.path().strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string(), out);
        } else if e.path().extension().is_some_and(|x| x == "yaml")
            && !e.path().to_string_lossy().ends_with(".test.yaml")
        {
            // Test files have their own schema (tests/testing.rs checks them against it).
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
    files.sort();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "backup-auth-cert.yaml",
            "export-auth-cert-legacy.yaml",
            "prepare-install-import.yaml",
            "restore-auth-cert.yaml"
        ]
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let instance = yaml_to_json(&text);
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
        let instance = yaml_to_json(bad);
        assert!(!validator.is_valid(&instance), "schema accepts {bad}");
    }
}

fn yaml_to_json(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("the YAML parses")
}

#[test]
fn the_schema_knows_every_top_level_key_the_loader_knows() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate_path("schemas/runbook.schema.json")).unwrap()).unwrap();
    let props: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    // The loader names the keys it knows when it meets one it does not.
    let out = Test::new()
        .file("rb.yaml", "runbook: 1\nname: x\nzzzzzz: 1\nsteps:\n  - id: a\n    log: hi\n")
        .args(["validate", "rb.yaml"])
        .code(2)
        .any_stderr()
        .run();
    let known = regex::Regex::new(r"the top-level keys are: ([a-z, -]+)").unwrap();
    let listed = &known.captures(&out.stderr).unwrap_or_else(|| panic!("{}", out.stderr))[1];
    let loader_keys: Vec<&str> = listed.trim_end().split(", ").collect();
    assert_eq!(props, loader_keys);
    assert!(out.stderr.contains("(and keys starting with `x-`, which are ignored)"), "{}", out.stderr);
    assert!(schema["patternProperties"]["^x-"].is_object(), "the schema allows `x-` keys too");
}
