//! `manual`: instructions for the operator, confirmed on a terminal or by `--yes`.

use super::{Context, StepError, StepResult, fail};
use crate::state::outcome::{Outcome, StepData};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// `--yes`: confirmations are given in advance.
    Yes,
    /// Ask on the terminal.
    Ask,
    /// No terminal and no `--yes`.
    Impossible,
}

pub fn manual(instructions: &str, confirm: bool, cx: &mut Context) -> StepResult {
    (cx.say)(&format!("Manual step:\n{}", crate::state::outcome::indent(instructions.trim_end())));
    if !confirm {
        return Ok((Outcome::Done, StepData::default()));
    }
    match cx.manual {
        Confirm::Yes => Ok((Outcome::Done, StepData::default())),
        Confirm::Impossible => fail(
            "this manual step needs an operator's confirmation, and there is no terminal to ask on; run it on a terminal, or pass --yes once it is done",
        ),
        Confirm::Ask => match (cx.ask)("Done? Type yes to continue, no to stop: ") {
            Ok(true) => Ok((Outcome::Done, StepData::default())),
            Ok(false) => fail("the operator did not confirm the manual step"),
            Err(e) if crate::os::signals::interrupted() => {
                let _ = e;
                Err(StepError::Interrupted)
            }
            Err(e) => fail(format!("could not read the confirmation: {e}")),
        },
    }
}

/// Asks a yes/no question on the terminal.
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
