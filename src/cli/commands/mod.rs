//! One module per subcommand; each `run` returns the exit code or a failure. Commands never use
//! each other: what they share lives in `cli::session` and the layers below.

pub mod approve;
pub mod evidence;
pub mod plan;
pub mod resume;
pub mod rollback;
pub mod run;
pub mod schema;
pub mod show;
pub mod show_plan;
pub mod status;
pub mod test;
pub mod validate;
pub mod verify;
