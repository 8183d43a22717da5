//! `runbook lsp`: a language server over stdio. It publishes `validate`'s diagnostics for each
//! open runbook (on open and on every change), and offers hover (actions and fields from the
//! schema's descriptions; inputs, vars and steps from the file), completion of names inside
//! `{{ }}` and in `when`/`that`, and go to definition of a name.

mod document;

use std::collections::HashMap;
use std::sync::LazyLock;

use lsp_server::{Connection, Message, Notification, Request, Response};
use serde_json::{Value, json};

use document::{CompletionKind, Document, Target, uri_to_path};

/// The schema, for the descriptions of keys.
static SCHEMA: LazyLock<Value> = LazyLock::new(crate::format::schema::json_schema);

/// Serves one editor session on stdin/stdout until it exits.
pub fn serve() -> Result<(), String> {
    let (connection, io_threads) = Connection::stdio();
    let capabilities = json!({
        "textDocumentSync": 1,
        "hoverProvider": true,
        "completionProvider": { "triggerCharacters": ["{", ".", " ", "|"] },
        "definitionProvider": true,
    });
    connection.initialize(capabilities).map_err(|e| format!("the editor did not start the session: {e}"))?;
    let mut server = Server { connection: &connection, documents: HashMap::new() };
    server.run()?;
    drop(connection);
    io_threads.join().map_err(|e| format!("the connection ended badly: {e}"))
}

struct Server<'c> {
    connection: &'c Connection,
    /// Open documents by URI.
    documents: HashMap<String, Document>,
}

impl Server<'_> {
    fn run(&mut self) -> Result<(), String> {
        for message in &self.connection.receiver {
            match message {
                Message::Request(request) => {
                    if self.connection.handle_shutdown(&request).map_err(|e| e.to_string())? {
                        return Ok(());
                    }
                    let result = self.answer(&request);
                    self.send(Response::new_ok(request.id, result).into());
                }
                Message::Notification(n) => self.notified(n),
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    fn send(&self, message: Message) {
        // The editor has gone when this fails; the loop ends with the connection.
        let _ = self.connection.sender.send(message);
    }

    fn notified(&mut self, n: Notification) {
        let uri = n.params["textDocument"]["uri"].as_str().unwrap_or_default().to_owned();
        match n.method.as_str() {
            "textDocument/didOpen" => {
                let text = n.params["textDocument"]["text"].as_str().unwrap_or_default().to_owned();
                self.update(uri, text);
            }
            "textDocument/didChange" => {
                // Full synchronisation: the last change is the whole text.
                if let Some(text) =
                    n.params["contentChanges"].as_array().and_then(|c| c.last()).and_then(|c| c["text"].as_str())
                {
                    self.update(uri, text.to_owned());
                }
            }
            "textDocument/didClose" => {
                self.documents.remove(&uri);
                self.publish(&uri, Vec::new());
            }
            _ => {}
        }
    }

    fn update(&mut self, uri: String, text: String) {
        let previous = self.documents.remove(&uri).map(|d| d.outline);
        let document = Document::new(uri_to_path(&uri), text, previous);
        let diagnostics = document.lsp_diagnostics();
        self.documents.insert(uri.clone(), document);
        self.publish(&uri, diagnostics);
    }

    fn publish(&self, uri: &str, diagnostics: Vec<Value>) {
        let params = json!({"uri": uri, "diagnostics": diagnostics});
        self.send(Notification::new("textDocument/publishDiagnostics".into(), params).into());
    }

    fn answer(&self, request: &Request) -> Value {
        let uri = request.params["textDocument"]["uri"].as_str().unwrap_or_default();
        let Some(doc) = self.documents.get(uri) else { return Value::Null };
        let position = &request.params["position"];
        let line = position["line"].as_u64().unwrap_or(0) as usize;
        let character = position["character"].as_u64().unwrap_or(0) as usize;
        let offset = doc.lines.offset(&doc.text, line, character);
        match request.method.as_str() {
            "textDocument/hover" => hover(doc, offset),
            "textDocument/completion" => completion(doc, offset),
            "textDocument/definition" => definition(doc, uri, offset),
            _ => Value::Null,
        }
    }
}

fn hover(doc: &Document, offset: usize) -> Value {
    let text = match doc.target(offset) {
        Target::Name { dotted, .. } => doc.hover_name(&dotted),
        Target::Key(path) => match path.as_slice() {
            [section, name] if section == "inputs" => doc.hover_name(name),
            [section, name] if section == "vars" => doc.hover_name(name),
            _ => key_description(&path),
        },
        Target::Nothing => None,
    };
    match text {
        Some(value) => json!({"contents": {"kind": "markdown", "value": value}}),
        None => Value::Null,
    }
}

fn completion(doc: &Document, offset: usize) -> Value {
    let items: Vec<Value> = doc
        .completions(offset)
        .into_iter()
        .map(|c| {
            // The protocol's CompletionItemKind: Variable, Constant, Module, Field, Function.
            let kind = match c.kind {
                CompletionKind::Input => 6,
                CompletionKind::Var => 21,
                CompletionKind::Step => 9,
                CompletionKind::Field => 5,
                CompletionKind::Function => 3,
            };
            json!({"label": c.label, "kind": kind, "detail": c.detail})
        })
        .collect();
    json!({"isIncomplete": false, "items": items})
}

fn definition(doc: &Document, uri: &str, offset: usize) -> Value {
    let Target::Name { dotted, .. } = doc.target(offset) else { return Value::Null };
    match doc.definition(&dotted) {
        Some(span) => json!({"uri": uri, "range": doc.range(span.offset, span.offset + span.len)}),
        None => Value::Null,
    }
}

/// The schema's description of the key at `path` (`steps`, `0`, `copy`, `from`).
fn key_description(path: &[String]) -> Option<String> {
    let mut schema = &*SCHEMA;
    let mut described = None;
    for segment in path {
        let here = resolve(schema);
        let next = if segment.parse::<usize>().is_ok() { items(here) } else { property(here, segment) }?;
        described = text_of(next).or_else(|| text_of(resolve(next)));
        schema = next;
    }
    let key = path.last()?;
    described.map(|d| format!("**`{key}`**\n\n{d}"))
}

fn text_of(schema: &Value) -> Option<String> {
    schema.get("markdownDescription").or_else(|| schema.get("description")).and_then(Value::as_str).map(str::to_owned)
}

/// A schema with its `$ref` followed.
fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => &SCHEMA["$defs"][name],
        None => schema,
    }
}

/// The alternatives of a schema (itself, and each of `anyOf` / `oneOf`).
fn alternatives(schema: &Value) -> Vec<&Value> {
    let mut out = vec![schema];
    for key in ["anyOf", "oneOf"] {
        out.extend(schema.get(key).and_then(Value::as_array).into_iter().flatten().map(resolve));
    }
    out
}

fn property<'s>(schema: &'s Value, key: &str) -> Option<&'s Value> {
    alternatives(schema).into_iter().find_map(|s| {
        s.get("properties").and_then(|p| p.get(key)).or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
    })
}

fn items(schema: &Value) -> Option<&Value> {
    alternatives(schema).into_iter().find_map(|s| s.get("items"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_described_from_the_schema() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let copy = key_description(&path(&["steps", "0", "copy"])).unwrap();
        assert!(copy.contains("Copy a file"), "{copy}");
        let from = key_description(&path(&["steps", "0", "copy", "from"])).unwrap();
        assert!(from.contains("The source path"), "{from}");
        let program = key_description(&path(&["steps", "2", "exec", "program"])).unwrap();
        assert!(program.contains("The program"), "{program}");
        let ty = key_description(&path(&["inputs", "build", "type"])).unwrap();
        assert!(ty.contains("`string` (default)"), "{ty}");
        assert!(key_description(&path(&["steps", "0", "nonsense"])).is_none());
    }
}
