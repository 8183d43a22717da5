//! `exec` (no shell) and `shell`, and the read-only probes a plan runs. All spawning goes
//! through [`crate::os::process`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Context, StepError, StepResult};
use crate::engine::render::{RenderedExec, RenderedExpect};
use crate::os::process::{self, Captured, Spec};
use crate::state::outcome::{Outcome, StepData};

fn data(c: &Captured) -> StepData {
    StepData {
        stdout: Some(c.stdout.clone()),
        stderr: Some(c.stderr.clone()),
        exit_code: c.exit_code,
        captures: Default::default(),
    }
}

/// Judges a finished command: its expectation, or exit code 0.
fn judge(c: &Captured, expect: Option<&RenderedExpect>, what: &str, timeout: Option<Duration>) -> StepResult {
    if c.interrupted {
        return Err(StepError::Interrupted);
    }
    let mut d = data(c);
    if c.timed_out {
        let t = timeout.map(|t| humantime::format_duration(t).to_string()).unwrap_or_default();
        return Err(StepError::Command {
            message: format!("{what} timed out after {t} and was stopped"),
            data: Box::new(d),
        });
    }
    match expect {
        Some(x) => match x.check(&d) {
            Ok(captures) => {
                d.captures = captures;
                Ok((Outcome::Done, d))
            }
            Err(why) => Err(StepError::Command { message: format!("{what}: {why}"), data: Box::new(d) }),
        },
        None if c.exit_code == Some(0) => Ok((Outcome::Done, d)),
        None => {
            let how = match (c.exit_code, c.signal) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(sig)) => format!("was killed by signal {sig}"),
                (None, None) => "ended abnormally".into(),
            };
            let tail = crate::state::outcome::tail(&d.text(crate::format::model::Stream::Any), 10);
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("\nlast lines of the output:\n{}", crate::state::outcome::indent(&tail))
            };
            Err(StepError::Command { message: format!("{what} {how}{tail}"), data: Box::new(d) })
        }
    }
}

fn resolve(program: &str, cwd: &Path) -> Result<PathBuf, StepError> {
    process::resolve_program(program, cwd, |p| p.is_file())
        .ok_or_else(|| StepError::Failed(format!("program `{program}` not found in {} or on PATH", cwd.display())))
}

fn spawn_error(program: &Path, e: &std::io::Error) -> StepError {
    StepError::Failed(format!("cannot start {}: {}", program.display(), crate::os::fs::io_reason(e)))
}

pub fn exec(e: &RenderedExec, cx: &mut Context) -> StepResult {
    let cwd = cx.scope.shared.cwd();
    let program = resolve(&e.program, &cwd)?;
    let spec = Spec {
        program: program.clone(),
        args: e.args.clone(),
        raw_tail: None,
        env: e.env.clone(),
        cwd,
        stdin: e.stdin.clone(),
        encoding: e.encoding,
        timeout: cx.timeout,
    };
    let captured = process::run(&spec, cx.on_line).map_err(|err| spawn_error(&program, &err))?;
    judge(&captured, e.expect.as_ref(), &format!("`{}`", e.program), cx.timeout)
}

pub fn shell(script: &str, shell: &str, expect: Option<&RenderedExpect>, cx: &mut Context) -> StepResult {
    let cwd = cx.scope.shared.cwd();
    let program = resolve(shell, &cwd)?;
    let (args, raw_tail) = shell_invocation(shell, script);
    let spec = Spec {
        program: program.clone(),
        args,
        raw_tail,
        env: Vec::new(),
        cwd,
        stdin: None,
        encoding: encoding_rs::UTF_8,
        timeout: cx.timeout,
    };
    let captured = process::run(&spec, cx.on_line).map_err(|err| spawn_error(&program, &err))?;
    judge(&captured, expect, "the script", cx.timeout)
}

/// How a script reaches its shell, so it behaves as typed at that shell's prompt: cmd gets
/// `/D /S /C "script"` with the script on the command line untouched (cmd does not read the C
/// runtime's quoting, so quotes, `&&`, `|` and `%VAR%` must arrive as written); PowerShell gets
/// `-NoProfile -NonInteractive -Command script`; any other shell `-c script`.
fn shell_invocation(shell: &str, script: &str) -> (Vec<String>, Option<String>) {
    // Named as written, with either separator, whatever system reads the runbook.
    let name = crate::compile::template::stem(shell).to_ascii_lowercase();
    let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match name.as_str() {
        "cmd" => (words(&["/D", "/S", "/C"]), Some(format!("\"{script}\""))),
        "powershell" | "pwsh" => {
            let mut args = words(&["-NoProfile", "-NonInteractive", "-Command"]);
            args.push(script.to_owned());
            (args, None)
        }
        _ => (vec!["-c".to_owned(), script.to_owned()], None),
    }
}

/// Runs a `read-only` probe for a plan; its output is kept for later predictions.
pub fn probe(program: &Path, e: &RenderedExec, cwd: &Path, timeout: Option<Duration>) -> Result<StepData, String> {
    let spec = Spec {
        program: program.to_path_buf(),
        args: e.args.clone(),
        raw_tail: None,
        env: e.env.clone(),
        cwd: cwd.to_path_buf(),
        stdin: e.stdin.clone(),
        encoding: e.encoding,
        timeout: timeout.or(Some(Duration::from_secs(60))),
    };
    let captured = process::run(&spec, &mut |_, _| {})
        .map_err(|err| format!("cannot start {}: {}", program.display(), crate::os::fs::io_reason(&err)))?;
    if captured.timed_out {
        return Err("the probe timed out".into());
    }
    Ok(data(&captured))
}

#[cfg(test)]
mod tests {
    use super::shell_invocation;

    #[test]
    fn each_shell_gets_the_script_its_own_way() {
        let (args, raw) = shell_invocation("cmd", r#"echo one && echo "two words""#);
        assert_eq!((args.join(" "), raw.as_deref()), ("/D /S /C".into(), Some(r#""echo one && echo "two words"""#)));
        let (args, raw) = shell_invocation(r"C:\Windows\System32\CMD.EXE", "ver");
        assert_eq!((args.len(), raw.as_deref()), (3, Some("\"ver\"")));
        let (args, raw) = shell_invocation("pwsh", "Get-Date");
        assert_eq!((args.join(" "), raw), ("-NoProfile -NonInteractive -Command Get-Date".into(), None));
        let (args, raw) = shell_invocation("/bin/bash", "echo $0");
        assert_eq!((args, raw), (vec!["-c".to_string(), "echo $0".to_string()], None));
    }
}
