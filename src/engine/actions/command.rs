//! `exec` (no shell) and `shell`: the program found as the command prompt finds it (over the
//! filesystem view, so a plan finds what the run will), started through the world (which a plan
//! answers only for read-only probes), and judged by its expectation or its exit code.

use std::path::PathBuf;
use std::time::Duration;

use super::{Context, Done, StepError, StepResult, fail};
use crate::engine::fs::Kind;
use crate::engine::render::{RenderedExec, RenderedExpect};
use crate::format::diagnostic::{indent, tail};
use crate::format::model::Stream;
use crate::os::process::{self, Captured, Spec};
use crate::state::outcome::{Outcome, StepData};

/// How long a read-only probe may run in a plan when its step sets no timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

fn data(c: &Captured) -> StepData {
    StepData {
        stdout: Some(c.stdout.clone()),
        stderr: Some(c.stderr.clone()),
        exit_code: c.exit_code,
        captures: Default::default(),
    }
}

/// Judges a finished command: its expectation, or exit code 0. A read-only probe changed
/// nothing, so it ends `unchanged`.
fn judge(
    c: &Captured,
    expect: Option<&RenderedExpect>,
    what: &str,
    timeout: Option<Duration>,
    read_only: bool,
) -> StepResult {
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
    let outcome = if read_only { Outcome::Unchanged } else { Outcome::Done };
    match expect {
        Some(x) => match x.check(&d) {
            Ok(captures) => {
                d.captures = captures;
                Ok(Done { outcome, data: Some(d) })
            }
            Err(why) => Err(StepError::Command { message: format!("{what}: {why}"), data: Box::new(d) }),
        },
        None if c.exit_code == Some(0) => Ok(Done { outcome, data: Some(d) }),
        None => {
            let how = match (c.exit_code, c.signal) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(sig)) => format!("was killed by signal {sig}"),
                (None, None) => "ended abnormally".into(),
            };
            let tail = tail(&d.text(Stream::Any), 10);
            let tail =
                if tail.is_empty() { String::new() } else { format!("\nlast lines of the output:\n{}", indent(&tail)) };
            Err(StepError::Command { message: format!("{what} {how}{tail}"), data: Box::new(d) })
        }
    }
}

fn resolve(program: &str, cx: &Context) -> Result<(PathBuf, PathBuf), StepError> {
    let cwd = cx.scope.shared.cwd();
    let fs = cx.fs;
    match process::resolve_program(program, &cwd, |p| fs.stat(p).is_some_and(|s| s.kind == Kind::File)) {
        Some(found) => Ok((found, cwd)),
        None => fail(format!("program `{program}` not found in {} or on PATH", cwd.display())),
    }
}

fn run(spec: &Spec, probe: bool, cx: &mut Context) -> Option<Result<Captured, StepError>> {
    let result = cx.world.command(spec, probe)?;
    Some(result.map_err(|e| {
        StepError::Failed(format!("cannot run {}: {}", spec.program.display(), crate::os::fs::io_reason(&e)))
    }))
}

pub fn exec(e: &RenderedExec, cx: &mut Context) -> StepResult {
    let (program, cwd) = resolve(&e.program, cx)?;
    let spec = Spec {
        program,
        args: e.args.clone(),
        raw_tail: None,
        env: e.env.clone(),
        cwd,
        stdin: e.stdin.clone(),
        encoding: e.encoding,
        timeout: cx.timeout,
    };
    match run(&spec, e.read_only, cx) {
        None => Ok(Done { outcome: Outcome::Done, data: None }),
        Some(captured) => {
            // A plan gives a probe without a time limit this one.
            let limit = cx.timeout.or(e.read_only.then_some(PROBE_TIMEOUT));
            judge(&captured?, e.expect.as_ref(), &format!("`{}`", e.program), limit, e.read_only)
        }
    }
}

pub fn shell(script: &str, shell: &str, expect: Option<&RenderedExpect>, cx: &mut Context) -> StepResult {
    let (program, cwd) = resolve(shell, cx)?;
    let (args, raw_tail) = shell_invocation(shell, script);
    let spec = Spec {
        program,
        args,
        raw_tail,
        env: Vec::new(),
        cwd,
        stdin: None,
        encoding: encoding_rs::UTF_8,
        timeout: cx.timeout,
    };
    match run(&spec, false, cx) {
        None => Ok(Done { outcome: Outcome::Done, data: None }),
        Some(captured) => judge(&captured?, expect, "the script", cx.timeout, false),
    }
}

/// How a script reaches its shell, so it behaves as typed at that shell's prompt: cmd gets
/// `/D /S /C "script"` with the script on the command line untouched (cmd does not read the C
/// runtime's quoting, so quotes, `&&`, `|` and `%VAR%` must arrive as written); PowerShell gets
/// `-NoProfile -NonInteractive -Command script`; any other shell `-c script`.
pub fn shell_invocation(shell: &str, script: &str) -> (Vec<String>, Option<String>) {
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
