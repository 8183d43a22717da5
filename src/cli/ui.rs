//! How the tool talks to a person: stderr text, colour per `NO_COLOR`, verbosity.

use std::io::{IsTerminal, Write};

use crate::compile::runbook::InputDef;
use crate::format::diagnostic::{Diagnostic, render_all};

#[derive(Debug, Clone)]
pub struct Ui {
    pub quiet: bool,
    pub verbose: u8,
    pub color: bool,
    /// Progress bars and spinners: only on a terminal, and never in CI.
    pub interactive: bool,
}

impl Ui {
    pub fn new(quiet: bool, verbose: u8) -> Ui {
        let terminal = std::io::stderr().is_terminal();
        // Escape sequences need turning on in a Windows console (conhost); without them, no colour.
        let escapes = terminal && crate::os::console::enable_escape_sequences();
        let color = escapes && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        console::set_colors_enabled_stderr(color);
        console::set_colors_enabled(color);
        Ui { quiet, verbose, color, interactive: terminal && std::env::var_os("CI").is_none() }
    }

    /// Plain, for tests and non-terminal use.
    pub fn plain() -> Ui {
        Ui { quiet: false, verbose: 0, color: false, interactive: false }
    }

    pub fn diagnostics(&self, diagnostics: &[Diagnostic]) {
        if diagnostics.is_empty() {
            return;
        }
        let mut text = render_all(diagnostics);
        if self.color {
            text = text
                .lines()
                .map(|l| {
                    if let Some(rest) = l.strip_prefix("error:") {
                        format!("{}{rest}", console::style("error:").red().bold())
                    } else if let Some(rest) = l.strip_prefix("warning:") {
                        format!("{}{rest}", console::style("warning:").yellow().bold())
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    /// A status line on stderr (suppressed by `-q`).
    pub fn info(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    pub fn style_ok(&self, s: &str) -> String {
        if self.color { console::style(s).green().to_string() } else { s.to_string() }
    }

    pub fn style_bad(&self, s: &str) -> String {
        if self.color { console::style(s).red().bold().to_string() } else { s.to_string() }
    }

    pub fn style_dim(&self, s: &str) -> String {
        if self.color { console::style(s).dim().to_string() } else { s.to_string() }
    }
}

/// Asks for an input's value on the terminal (a secret without echo).
pub fn prompt_input(def: &InputDef) -> std::io::Result<String> {
    let term = console::Term::stderr();
    let label = match &def.description {
        Some(d) => format!("{} ({d}): ", def.name),
        None => format!("{}: ", def.name),
    };
    term.write_str(&label)?;
    if def.secret { term.read_secure_line() } else { term.read_line() }
}

/// Asks a question whose only yes is `y` or `yes`; anything else, or no answer, is no.
pub fn ask_once(question: &str) -> std::io::Result<bool> {
    let term = console::Term::stderr();
    term.write_str(question)?;
    let answer = term.read_line()?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// Asks a yes/no question on the terminal until it gets an answer.
pub fn ask(question: &str) -> std::io::Result<bool> {
    let term = console::Term::stderr();
    loop {
        term.write_str(question)?;
        let answer = term.read_line()?;
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => {}
        }
    }
}

/// A duration for people: milliseconds under a second (a step that took 4 ms is not `0s`),
/// tenths of a second under a minute, then minutes and seconds.
pub fn duration(d: std::time::Duration) -> String {
    match d.as_secs() {
        0 => format!("{} ms", d.as_millis()),
        1..60 => format!("{:.1} s", d.as_secs_f64()),
        _ => humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_read_as_people_expect() {
        assert_eq!(super::duration(Duration::from_micros(300)), "0 ms");
        assert_eq!(super::duration(Duration::from_millis(4)), "4 ms");
        assert_eq!(super::duration(Duration::from_millis(999)), "999 ms");
        assert_eq!(super::duration(Duration::from_millis(1250)), "1.2 s");
        assert_eq!(super::duration(Duration::from_millis(125_400)), "2m 5s");
    }
}
