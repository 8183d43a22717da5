//! A fake program for `runbook test`: the runbook binary itself, copied into a case's sandbox
//! under the program's name (`CertificateManager.exe`, `sc.exe`), so the engine finds it as it
//! would the real one (the `cd` folder, `PATH`, `PATHEXT`) on Linux and Windows alike. Started
//! under another name with `RUNBOOK_TEST_FAKES` set, it answers from the case's spec: the first
//! response whose arguments match prints its output (in its encoding), makes its file changes,
//! waits its delay, exits with its code; and every call is logged (arguments, folder, stdin).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::compile::testfile::{Fake, OutputSpec, args_match};

/// The environment variable naming a case's fakes spec.
pub const FAKES_ENV: &str = "RUNBOOK_TEST_FAKES";

/// What the fakes of a case answer, and where calls are logged.
#[derive(Debug, Serialize, Deserialize)]
pub struct Spec {
    pub sandbox: PathBuf,
    pub log: PathBuf,
    pub fakes: IndexMap<String, Fake>,
}

/// One call a fake received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub fake: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub stdin: String,
    /// The response that answered (its index), or none.
    pub response: Option<usize>,
}

/// Runs as a fake when started under a fake's name with a spec; `None` otherwise.
pub fn run_if_fake() -> Option<std::process::ExitCode> {
    let spec_path = std::env::var_os(FAKES_ENV)?;
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?.to_string_lossy().into_owned();
    let stem = Path::new(&name).file_stem()?.to_string_lossy().into_owned();
    if stem.eq_ignore_ascii_case("runbook") {
        return None;
    }
    let code = match answer(Path::new(&spec_path), &name) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fake {name}: {e}");
            127
        }
    };
    Some(std::process::ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)))
}

fn same_name(key: &str, name: &str) -> bool {
    if cfg!(windows) {
        let with_exe = |k: &str| if Path::new(k).extension().is_some() { k.to_owned() } else { format!("{k}.exe") };
        with_exe(key).eq_ignore_ascii_case(&with_exe(name))
    } else {
        key == name
    }
}

fn answer(spec_path: &Path, name: &str) -> Result<i32, String> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| format!("the spec cannot be read: {e}"))?;
    let (key, fake) = spec.fakes.iter().find(|(k, _)| same_name(k, name)).ok_or("not a fake of this case")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let sandbox = spec.sandbox.display().to_string().replace('\\', "/");
    let earlier = calls(&spec.log);
    let used = |i: usize| earlier.iter().any(|c| c.fake == *key && c.response == Some(i));
    let chosen = fake
        .responses
        .iter()
        .enumerate()
        .find(|(i, r)| !(r.once && used(*i)) && r.args.as_ref().is_none_or(|m| args_match(m, &args, &sandbox)));
    let call = Call {
        fake: key.clone(),
        args: args.clone(),
        cwd,
        stdin: String::from_utf8_lossy(&stdin).into_owned(),
        response: chosen.map(|(i, _)| i),
    };
    log(&spec.log, &call)?;
    let Some((_, response)) = chosen else {
        eprintln!("fake {name}: no response of the test answers {args:?}");
        return Ok(127);
    };
    if let Some(ms) = response.delay_ms {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    for (path, content) in &response.writes {
        let path = spec.sandbox.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    for path in &response.removes {
        let _ = std::fs::remove_file(spec.sandbox.join(path));
    }
    let print = |out: &mut dyn Write, spec: &Option<OutputSpec>| -> Result<(), String> {
        let Some(spec) = spec else { return Ok(()) };
        let bytes = encoded(spec)?;
        out.write_all(&bytes).and_then(|()| out.flush()).map_err(|e| e.to_string())
    };
    print(&mut std::io::stdout(), &response.stdout)?;
    print(&mut std::io::stderr(), &response.stderr)?;
    Ok(response.exit)
}

/// The bytes a fake prints: its text in its encoding.
pub fn encoded(spec: &OutputSpec) -> Result<Vec<u8>, String> {
    match spec {
        OutputSpec::Text(text) => Ok(text.clone().into_bytes()),
        OutputSpec::Encoded { text, encoding } => {
            let label = match encoding.to_ascii_lowercase().as_str() {
                "cp932" | "windows-31j" => "shift_jis".to_string(),
                other => other.to_string(),
            };
            let enc = encoding_rs::Encoding::for_label(label.as_bytes())
                .ok_or_else(|| format!("unknown encoding `{encoding}`"))?;
            if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                let units: Vec<u16> = text.encode_utf16().collect();
                let little = enc == encoding_rs::UTF_16LE;
                return Ok(units.iter().flat_map(|u| if little { u.to_le_bytes() } else { u.to_be_bytes() }).collect());
            }
            let (bytes, _, _) = enc.encode(text);
            Ok(bytes.into_owned())
        }
    }
}

fn log(path: &Path, call: &Call) -> Result<(), String> {
    let mut line = serde_json::to_string(call).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot log the call to {}: {e}", path.display()))?;
    file.write_all(line.as_bytes()).map_err(|e| e.to_string())
}

/// Every call logged so far.
pub fn calls(log: &Path) -> Vec<Call> {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}
