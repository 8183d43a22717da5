//! A small language-server client for the tests: messages framed over a child's stdin/stdout,
//! the server's own requests (configuration, registrations) answered, a deadline on every wait
//! so that a silent server fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    /// What the server is told when it asks for its configuration.
    pub settings: Value,
    /// Notifications received while waiting for something else.
    pub notifications: Vec<Value>,
}

impl Client {
    pub fn start(mut command: Command) -> Client {
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = crate::support::spawn(&mut command);
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = n.trim().parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                if tx.send(serde_json::from_slice(&body).expect("a JSON message")).is_err() {
                    return;
                }
            }
        });
        Client { child, stdin, incoming, next_id: 1, settings: Value::Null, notifications: Vec::new() }
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message, answering the server's own requests on the way.
    fn receive(&mut self) -> Value {
        loop {
            let message = self.incoming.recv_timeout(DEADLINE).expect("the server answers within a minute");
            if let Some(message) = self.answer_or_keep(message) {
                return message;
            }
        }
    }

    /// Waits until the server has asked for `method` (and been answered).
    pub fn wait_for_request(&mut self, method: &str) {
        loop {
            let message = self.incoming.recv_timeout(DEADLINE).expect("the server asks within a minute");
            let asked = message.get("id").is_some() && message["method"] == method;
            if let Some(other) = self.answer_or_keep(message) {
                self.notifications.push(other);
            }
            if asked {
                return;
            }
        }
    }

    /// Answers a server request; returns any other message.
    fn answer_or_keep(&mut self, message: Value) -> Option<Value> {
        let (Some(id), Some(method)) = (message.get("id"), message.get("method").and_then(Value::as_str)) else {
            return Some(message);
        };
        let result = match method {
            "workspace/configuration" => {
                let n = message["params"]["items"].as_array().map_or(1, Vec::len);
                Value::Array(vec![self.settings.clone(); n])
            }
            _ => Value::Null,
        };
        let id = id.clone();
        self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
        None
    }

    /// Sends a request and returns its result (notifications meanwhile are kept).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.receive();
            if message.get("id") == Some(&json!(id)) {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            self.notifications.push(message);
        }
    }

    /// The next diagnostics published for `uri`.
    pub fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        if let Some(i) = self.notifications.iter().position(|n| is_diagnostics_for(n, uri)) {
            return self.notifications.remove(i)["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let message = self.receive();
            if is_diagnostics_for(&message, uri) {
                return message["params"]["diagnostics"].as_array().unwrap().clone();
            }
            self.notifications.push(message);
        }
    }

    pub fn initialize(&mut self) -> Value {
        let result = self.request(
            "initialize",
            json!({"processId": null, "rootUri": null, "capabilities": {"workspace": {"configuration": true}}}),
        );
        self.notify("initialized", json!({}));
        result
    }

    pub fn open(&mut self, uri: &str, text: &str) {
        let doc = json!({"uri": uri, "languageId": "yaml", "version": 1, "text": text});
        self.notify("textDocument/didOpen", json!({"textDocument": doc}));
    }

    /// `shutdown`, `exit`, and the server's exit status.
    pub fn finish(mut self) -> std::process::ExitStatus {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        drop(self.stdin);
        self.child.wait().unwrap()
    }
}

fn is_diagnostics_for(message: &Value, uri: &str) -> bool {
    message["method"] == "textDocument/publishDiagnostics" && message["params"]["uri"] == uri
}

/// A `file:` URI for a path.
pub fn uri(path: &std::path::Path) -> String {
    let text = path.display().to_string().replace('\\', "/");
    let text = text.replace(' ', "%20");
    if text.starts_with('/') { format!("file://{text}") } else { format!("file:///{text}") }
}
