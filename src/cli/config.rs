//! What the environment and the terminal say, read once when the command starts (as ripgrep
//! turns its flags into `HiArgs`): the commands ask this, never the process.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::args::InputFlags;
use crate::cli::exit::Failure;
use crate::cli::ui::{self, Ui};
use crate::compile::inputs::InputArgs;
use crate::format::diagnostic::Diagnostic;

pub struct Config {
    pub ui: Ui,
    /// A terminal on stdin and stderr, and not in CI: inputs, confirmations and questions can
    /// be asked.
    pub can_ask: bool,
    /// The environment's `RUNBOOK_INPUT_*` variables.
    pub input_env: Vec<(String, String)>,
    /// The folder the command was started in.
    pub cwd: PathBuf,
    /// Standard input, once read for `--secrets-from -`.
    stdin: std::sync::OnceLock<Result<String, String>>,
}

impl Config {
    pub fn new(quiet: bool, verbose: u8) -> Result<Config, Failure> {
        let in_ci = std::env::var_os("CI").is_some();
        let cwd =
            std::env::current_dir().map_err(|e| Diagnostic::error(format!("cannot read the current folder: {e}")))?;
        Ok(Config {
            ui: Ui::new(quiet, verbose),
            can_ask: std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && !in_ci,
            input_env: InputArgs::environment_of_process(),
            cwd,
            stdin: std::sync::OnceLock::new(),
        })
    }

    /// Where a command's inputs come from: its flags, the environment, and the terminal when
    /// one can be asked.
    pub fn input_args(&self, flags: &InputFlags) -> InputArgs {
        let secrets = flags.secrets_from.as_ref().map(|from| {
            if from.as_os_str() == "-" {
                let text = self.stdin.get_or_init(|| {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .map(|_| text)
                        .map_err(|e| format!("cannot read standard input: {e}"))
                });
                (PathBuf::from("<stdin>"), text.clone())
            } else {
                let text = crate::format::file::read_text(from).map_err(|d| d.message);
                (from.clone(), text)
            }
        });
        InputArgs {
            secrets,
            vars_files: flags.vars_files.clone(),
            vars: flags.vars.clone(),
            environment: self.input_env.clone(),
            recorded: None,
            prompt: self.can_ask.then_some(ui::prompt_input as _),
            secrets_at_run_time: false,
        }
    }
}
