#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    runbook::run(std::env::args_os())
}
