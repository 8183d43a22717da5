//! The command line on top of everything: arguments, the configuration they make, one module per
//! command, and what the user sees (text, JSON events, JUnit, diagnostics).

pub mod args;
pub mod commands;
pub mod config;
mod continuing;
pub mod documents;
pub mod event;
pub mod exit;
pub mod fake;
pub mod junit;
mod lsp;
pub mod page;
pub mod policy;
pub mod reporter;
pub mod session;
pub mod ui;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::args::{Cli, Command, PlanArgs};
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::format::diagnostic::Diagnostic;

/// The stack the command runs on. Nested YAML (up to its 64-level budget) and templates
/// recurse; Windows gives a program's main thread only 1 MiB, so every system gets the same
/// generous stack instead.
const STACK_BYTES: usize = 16 << 20;

/// Runs the command line and returns the process exit code.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> std::process::ExitCode {
    // Started under a fake program's name by `runbook test`: answer as that program.
    if let Some(code) = fake::run_if_fake() {
        return code;
    }
    let args: Vec<OsString> = args.into_iter().collect();
    let worker =
        std::thread::Builder::new().name("runbook".into()).stack_size(STACK_BYTES).spawn(move || command(args));
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        // A panic (already reported by the panic hook) or a thread that could not start.
        _ => std::process::ExitCode::from(101),
    }
}

fn command(args: Vec<OsString>) -> std::process::ExitCode {
    let mut cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::Success,
                _ => ExitCode::Invalid,
            }
            .into();
        }
    };
    let config = match Config::new(cli.quiet, cli.verbose) {
        Ok(config) => config,
        Err(failure) => return report(&ui::Ui::plain(), failure),
    };
    match cli.expand_wildcards().and_then(|()| dispatch(&config, cli.command)) {
        Ok(code) => code.into(),
        Err(failure) => report(&config.ui, failure),
    }
}

fn report(ui: &ui::Ui, failure: exit::Failure) -> std::process::ExitCode {
    ui.diagnostics(&failure.diagnostics);
    failure.code.into()
}

fn dispatch(config: &Config, command: Command) -> CmdResult {
    match command {
        Command::Validate { files } => commands::validate::run(config, &files),
        Command::Show(args) => commands::show::run(config, &args),
        Command::Schema { of } => commands::schema::run(of),
        Command::Version { format } => {
            match format {
                args::Format::Text => println!("runbook {}", crate::format::version::LONG),
                args::Format::Json => {
                    println!("{}", serde_json::to_string(&crate::format::version::BUILD).expect("the build serializes"))
                }
            }
            Ok(ExitCode::Success)
        }
        Command::Lsp => match lsp::serve() {
            Ok(()) => Ok(ExitCode::Success),
            Err(e) => Err(crate::format::diagnostic::Diagnostic::error(e).into()),
        },
        Command::ShowPlan { plan, format, allowed_signers } => {
            commands::show_plan::run(&plan, format, allowed_signers.as_deref())
        }
        Command::Approve(args) => commands::approve::run(config, &args),
        Command::Evidence(args) => commands::evidence::run(config, &args),
        Command::Verify(args) => commands::verify::run(config, &args),
        Command::Test(args) => commands::test::run(config, &args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "runbook", &mut std::io::stdout());
            Ok(ExitCode::Success)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map(|()| ExitCode::Success)
                .map_err(|e| Diagnostic::error(e.to_string()).into())
        }
        Command::Plan(args) => commands::plan::run(config, &args),
        // `run --dry-run` is `plan`.
        Command::Run(args) if args.dry_run => {
            let file = args.file.clone().expect("clap requires FILE without --plan");
            let plan = PlanArgs {
                file,
                inputs: args.inputs,
                format: args.run.format.into(),
                out: None,
                report: args.run.report,
                backout: args.run.backout,
                skip_if_succeeded_in: args.skip_if_succeeded.then_some(args.run.state.state_dir),
            };
            commands::plan::run(config, &plan)
        }
        Command::Run(args) => commands::run::run(config, &args),
        Command::Resume(args) => commands::resume::run(config, &args),
        Command::Rollback(args) => commands::rollback::run(config, &args),
        Command::Status(args) => commands::status::run(config, &args),
    }
}
