//! The JSON Schema of the runbook format, for editors (`runbook schema`,
//! `schemas/runbook.schema.json`). Generated from [`crate::format::model`], whose `///` comments
//! are every description, then given what the types alone cannot say: a step's `id` is required
//! and exactly one action is allowed, durations have a pattern, a `choice` input needs `choices`,
//! `x-` keys at the top hold anchors. Editors show `markdownDescription`; yaml-language-server
//! shows `errorMessage` and `patternErrorMessage` in place of its generic messages.

use serde_json::{Map, Value, json};

use crate::format::model::{ACTION_KEYS, RawRunbook};

/// A duration as `humantime` reads it: `30s`, `5m`, `1h 30m`, `250ms`.
const DURATION: &str = r"^\s*([0-9]+\s*(nsec|ns|usec|us|µs|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w)\s*)+$";

/// The schema, as the editor reads it.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(RawRunbook).to_value();
    without_nulls(&mut schema);
    let defs = &mut schema["$defs"];
    step_rules(&mut defs["RawStep"]);
    defs["RawUndo"] = undo_schema(&defs["RawStep"]);
    let described = defs["RawStep"]["properties"]["undo"]["description"].clone();
    defs["RawStep"]["properties"]["undo"] = json!({"$ref": "#/$defs/RawUndo", "description": described});
    input_rules(&mut defs["RawInput"]);
    schema["patternProperties"] = json!({
        "^x-": {
            "description": "Ignored: a place for YAML anchors used elsewhere in the file. Example: `x-defaults: &slow { timeout: 10m, retries: 2 }`, then `<<: *slow` in a step."
        }
    });
    markdown_descriptions(&mut schema);
    schema
}

/// A field that is left out is written as nothing, not as `null`: `id: ~` is flagged.
fn without_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alternatives)) = map.get("anyOf") {
                let kept: Vec<Value> =
                    alternatives.iter().filter(|a| **a != json!({"type": "null"})).cloned().collect();
                if kept.len() == 1 {
                    map.remove("anyOf");
                    if let Value::Object(only) = &kept[0] {
                        for (k, v) in only {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                } else {
                    map.insert("anyOf".into(), Value::Array(kept));
                }
            }
            map.values_mut().for_each(without_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(without_nulls),
        _ => {}
    }
}

fn step_rules(step: &mut Value) {
    let listed = ACTION_KEYS.join(", ");
    step["required"] = json!(["id"]);
    step["properties"]["id"]["patternErrorMessage"] =
        json!("a step id is lowercase letters, digits and `_`, starting with a letter: `copy_backup`");
    // At least one action, said plainly when there is none.
    step["anyOf"] = Value::Array(
        ACTION_KEYS
            .iter()
            .map(|k| json!({"required": [k], "errorMessage": format!("a step needs exactly one action: {listed}")}))
            .collect(),
    );
    // At most one: with an action, any other action key is flagged where it is.
    let mut dependent = Map::new();
    for action in ACTION_KEYS {
        let others: Map<String, Value> =
            ACTION_KEYS.iter().filter(|k| *k != action).map(|k| ((*k).to_string(), Value::Bool(false))).collect();
        let message = format!("a step does exactly one thing: it already has `{action}`; split it into two steps");
        dependent.insert((*action).to_string(), json!({"properties": others, "errorMessage": message}));
    }
    step["dependentSchemas"] = Value::Object(dependent);
    for key in ["timeout", "retry-delay"] {
        step["properties"][key]["pattern"] = json!(DURATION);
        step["properties"][key]["patternErrorMessage"] = json!("a duration such as `30s`, `5m` or `1h 30m`");
    }
}

/// A step's `undo:`: one of the step's actions (and an optional `timeout`), without an id.
fn undo_schema(step: &Value) -> Value {
    let mut properties = Map::new();
    for key in ACTION_KEYS.iter().filter(|k| !matches!(**k, "include" | "expect-output")).chain(&["timeout"]) {
        properties.insert((*key).to_string(), step["properties"][key].clone());
    }
    let actions: Vec<&str> = ACTION_KEYS.iter().copied().filter(|k| properties.contains_key(*k)).collect();
    let listed = actions.join(", ");
    json!({
        "description": "How a step is backed out: one action (rendered with the step's inputs and `steps.*`), and optionally a `timeout`. Example: `{ exec: [net, start, ofcservice] }`",
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "anyOf": actions.iter().map(|k| json!({"required": [k], "errorMessage": format!("an undo needs exactly one action: {listed}")})).collect::<Vec<_>>(),
        "dependentSchemas": step["dependentSchemas"].clone(),
    })
}

fn input_rules(input: &mut Value) {
    input["if"] = json!({"properties": {"type": {"const": "choice"}}, "required": ["type"]});
    input["then"] = json!({
        "required": ["choices"],
        "errorMessage": "a `choice` input needs `choices`: the values it may take, e.g. `choices: [apex-one, officescan]`"
    });
    input["properties"]["choices"]["minItems"] = json!(1);
}

/// Editors render `markdownDescription` (the descriptions are Markdown: `code`, examples).
fn markdown_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(d)) = map.get("description") {
                // Doc comments wrap lines; a description is one paragraph.
                let d = d.split("\n\n").map(|p| p.replace('\n', " ")).collect::<Vec<_>>().join("\n\n");
                map.insert("description".into(), Value::String(d.clone()));
                map.insert("markdownDescription".into(), Value::String(d));
            }
            for (k, v) in map.iter_mut() {
                // A property named `description` is not a description.
                if k != "properties" || v.is_object() {
                    markdown_descriptions(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(markdown_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_what_the_loader_reads() {
        let re = regex::Regex::new(DURATION).unwrap();
        for ok in ["30s", "5m", "1h 30m", "250ms", " 2 hours ", "1d"] {
            assert!(re.is_match(ok), "{ok}");
            assert!(humantime::parse_duration(ok.trim()).is_ok(), "{ok}");
        }
        for bad in ["5 minutes please", "soon", "", "-1s", "1.5h"] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn every_action_and_field_is_described() {
        let schema = json_schema();
        let mut undescribed = Vec::new();
        for (name, def) in schema["$defs"].as_object().unwrap() {
            for (field, prop) in def["properties"].as_object().into_iter().flatten() {
                if prop.get("description").is_none() {
                    undescribed.push(format!("{name}.{field}"));
                }
            }
        }
        for (field, prop) in schema["properties"].as_object().unwrap() {
            if prop.get("description").is_none() {
                undescribed.push(field.clone());
            }
        }
        assert!(undescribed.is_empty(), "fields without a description: {undescribed:?}");
        for action in ACTION_KEYS {
            let d = schema["$defs"]["RawStep"]["properties"][action]["description"].as_str().unwrap();
            assert!(d.contains("Example: `") && !d.contains('\n'), "{action}: {d}");
        }
    }
}
