//! Command-line arguments (clap derive), turned into a checked configuration per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cli::exit::Failure;
use crate::format::diagnostic::Diagnostic;
use crate::os::args::{EXPANDS_WILDCARDS, expand, has_wildcard};

#[derive(Debug, Parser)]
#[command(
    name = "runbook",
    version = crate::format::version::LONG,
    about = "Declarative runbooks: validate, predict (dry run), run with a crash-safe journal, resume.",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Print only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail: each step's rendered action and how long it took.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks without running anything; report every problem.
    Validate {
        /// Runbook files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// The dry run: render every step and predict what it would do. Touches nothing.
    Plan(PlanArgs),
    /// Run a runbook, journaling every step.
    Run(RunArgs),
    /// Continue the newest unfinished run of a runbook where it stopped.
    Resume(ResumeArgs),
    /// Back out the newest run of a runbook: undo the steps it did, newest first.
    Rollback(RollbackArgs),
    /// Show the runs in the state folder and where each one stopped.
    Status(StatusArgs),
    /// Show a runbook's title, description, inputs and steps.
    Show(ShowArgs),
    /// Print a saved plan for review, with the approvals found beside it.
    ShowPlan {
        /// A plan written by `plan --out`.
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// Text, the saved JSON, Markdown (for a ticket) or one self-contained HTML page.
        #[arg(long, value_enum, default_value_t)]
        format: DocFormat,
        /// Say whose each approval is, from this OpenSSH allowed_signers file.
        #[arg(long, value_name = "FILE", env = "RUNBOOK_ALLOWED_SIGNERS")]
        allowed_signers: Option<PathBuf>,
    },
    /// Test runbooks with their test files (`*.test.yaml`): each case in its own sandbox, with
    /// fake programs, in parallel.
    Test(TestArgs),
    /// Approve a saved plan: sign the plan file's bytes with an SSH key (namespace
    /// `runbook-plan`), into `PLAN.approvals/` beside it.
    Approve(ApproveArgs),
    /// Bundle a run's evidence for the change ticket: the reviewed plan and its approvals, the
    /// runbook files, the journal, the run's record and JUnit report, each step's output, and a
    /// manifest of their SHA-256 digests.
    Evidence(EvidenceArgs),
    /// Check an evidence bundle offline: every member against its manifest, the approvals
    /// against the plan, the run against the plan's steps; list every deviation.
    Verify(VerifyArgs),
    /// What this binary is: version, the commit it was built from, target and build date.
    Version {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print a JSON Schema: of the runbook format (the default), or of the JSON events that
    /// `--format json` prints.
    Schema {
        #[arg(value_enum, default_value_t)]
        of: SchemaOf,
    },
    /// Run the language server (stdio): validate's diagnostics, hover, completion and go to
    /// definition for runbooks, in any editor with an LSP client.
    Lsp,
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// A plan saved by `plan --out`.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// The key to sign with: an OpenSSH private key file (ed25519, ecdsa, rsa; an encrypted one's
    /// passphrase is asked), or the `.pub` of a key the SSH agent holds. Default: the agent's
    /// first key, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A note kept beside the approval (not signed), shown with it.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test files, or folders searched for `*.test.yaml` (default: the current folder).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write a JUnit XML report: a test suite per test file, a test case per case.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// A summary as text, or one JSON document.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Run only the cases whose `FILE::case name` contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// List, per runbook, each step seen run and failed, each `when` seen true and false, each
    /// check seen passing and failing, each undo exercised.
    #[arg(long)]
    pub coverage: bool,
    /// Fail when a runbook's coverage is below this percentage.
    #[arg(long, value_name = "PCT")]
    pub min_coverage: Option<f64>,
}

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// The run (its id, or the start of it); default: the newest run.
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// The bundle to write (a .zip file).
    #[arg(long, value_name = "FILE.zip")]
    pub out: PathBuf,
    /// Sign the manifest with this SSH key (namespace `runbook-evidence`), as the operator.
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateFlags,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An evidence bundle written by `runbook evidence`.
    #[arg(value_name = "FILE.zip")]
    pub bundle: PathBuf,
    /// Whose approvals (and manifest signature) count: an OpenSSH allowed_signers file.
    #[arg(long, value_name = "FILE", env = "RUNBOOK_ALLOWED_SIGNERS")]
    pub allowed_signers: Option<PathBuf>,
    /// Not verified unless this many distinct allowed principals approved the plan.
    #[arg(long, value_name = "N", env = "RUNBOOK_REQUIRE_APPROVALS")]
    pub require_approvals: Option<usize>,
    /// A verdict table as text, one JSON document, or Markdown.
    #[arg(long, value_enum, default_value_t)]
    pub format: VerdictFormat,
}

/// How `verify` prints its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum VerdictFormat {
    #[default]
    Text,
    Json,
    /// A Markdown table for the ticket.
    Markdown,
}

/// The approvals a run of a reviewed plan must have (see also the server's policy file).
#[derive(Debug, Args, Clone, Default)]
pub struct ApprovalFlags {
    /// Refuse unless this many distinct allowed principals approved the plan (`run --plan`).
    #[arg(long, value_name = "N", env = "RUNBOOK_REQUIRE_APPROVALS")]
    pub require_approvals: Option<usize>,
    /// Whose approvals count: an OpenSSH allowed_signers file.
    #[arg(long, value_name = "FILE", env = "RUNBOOK_ALLOWED_SIGNERS")]
    pub allowed_signers: Option<PathBuf>,
    /// The operator's own approval does not count (the operator: the account running runbook,
    /// matched against each principal's name or its part before `@`).
    #[arg(long, env = "RUNBOOK_NO_SELF_APPROVAL")]
    pub no_self_approval: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Which JSON Schema `runbook schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SchemaOf {
    /// The runbook format (`schemas/runbook.schema.json`).
    #[default]
    Runbook,
    /// The JSON events of `--format json` (`schemas/events.schema.json`).
    Events,
    /// The manifest of an evidence bundle (`schemas/evidence.schema.json`).
    Evidence,
    /// Test files of `runbook test` (`schemas/runbook-test.schema.json`).
    Test,
}

/// How a document (a plan, the record of a run) is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DocFormat {
    #[default]
    Text,
    Json,
    /// A Markdown document for a ticket (GitHub, GitLab, Jira).
    Markdown,
    /// One self-contained HTML page (no external files).
    Html,
}

impl From<Format> for DocFormat {
    fn from(f: Format) -> DocFormat {
        match f {
            Format::Text => DocFormat::Text,
            Format::Json => DocFormat::Json,
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct InputFlags {
    /// An input file (YAML mapping of input names to values); later files win.
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_files: Vec<PathBuf>,
    /// Set an input: `--var name=value` (wins over files and the environment).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read inputs (secrets) from this file, or from standard input with `-`: a YAML or JSON
    /// mapping of names to values, so that they never appear on a command line.
    #[arg(long, value_name = "FILE|-")]
    pub secrets_from: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct StateFlags {
    /// Where journals and locks are kept.
    #[arg(long, value_name = "DIR", env = "RUNBOOK_STATE_DIR", default_value = ".runbook")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub inputs: InputFlags,
    /// Text, one JSON document, Markdown (for a ticket) or one self-contained HTML page.
    #[arg(long, value_enum, default_value_t)]
    pub format: DocFormat,
    /// Save the plan (JSON) for review and for `run --plan`.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Write a JUnit XML report: one test case per step.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub backout: BackoutFlags,
    /// `run --dry-run --skip-if-succeeded`: the state folder whose newest run, when it succeeded
    /// with the same runbook files and inputs, means there is nothing to predict.
    #[arg(skip)]
    pub skip_if_succeeded_in: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook file (not needed with --plan).
    #[arg(value_name = "FILE", required_unless_present = "plan")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputFlags,
    /// Predict instead of running (the same as `runbook plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// Start a new run even though an unfinished one exists (it is marked abandoned).
    #[arg(long, conflicts_with = "continue_unfinished")]
    pub fresh: bool,
    /// When an unfinished run of this runbook exists, continue it (as `resume`, with the inputs
    /// given now, as long as the steps that ran render the same with them).
    #[arg(long = "continue")]
    pub continue_unfinished: bool,
    /// Do nothing when the newest run of this runbook succeeded with the same runbook files and
    /// inputs (for automation that applies a runbook until it has succeeded once).
    #[arg(long)]
    pub skip_if_succeeded: bool,
    /// Run exactly the reviewed plan saved by `plan --out`; refuse if anything differs.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["file", "dry_run", "vars_files", "vars"])]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub approval: ApprovalFlags,
    #[command(flatten)]
    pub run: RunFlags,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The runbook file (default: the newest unfinished run's).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputFlags,
    /// Run this interrupted command step again.
    #[arg(long, value_name = "ID", conflicts_with = "mark_done")]
    pub redo: Option<String>,
    /// Record this interrupted command step as done (it was finished by hand) and go on.
    #[arg(long, value_name = "ID")]
    pub mark_done: Option<String>,
    /// Accept a changed runbook when no step before the stopping point changed.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub approval: ApprovalFlags,
    #[command(flatten)]
    pub run: RunFlags,
}

/// What `run` and `resume` share: how steps are confirmed and how the run is reported.
#[derive(Debug, Args)]
pub struct RunFlags {
    /// Confirm manual steps without asking (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Ask before each step.
    #[arg(long)]
    pub step: bool,
    /// Write a JUnit XML report of the steps run: one test case per step.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Progress as text on stderr, or one JSON event per line on stdout.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// `full`: every journal record and copy is synced to the disk before the step counts (a
    /// power cut loses nothing reported). `process`: written in the same order, not synced (a
    /// killed engine resumes exactly; an OS crash may lose the last records).
    #[arg(long, value_enum, env = "RUNBOOK_DURABILITY", default_value_t, value_name = "LEVEL")]
    pub durability: DurabilityArg,
    /// When a step fails: `stop` there (the default, or the runbook's `on-failure:`), or
    /// `rollback`: undo the steps done, newest first (the exit code stays 1).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_failure: Option<OnFailureArg>,
    #[command(flatten)]
    pub backout: BackoutFlags,
    #[command(flatten)]
    pub state: StateFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailureArg {
    Stop,
    Rollback,
}

#[derive(Debug, Args, Clone)]
pub struct BackoutFlags {
    /// The most a run keeps of what its steps replace or remove, to undo them (e.g. `256MiB`,
    /// `1G`); a step past it is not undoable, and the plan says so.
    #[arg(long, value_name = "SIZE", env = "RUNBOOK_BACKUP_LIMIT", default_value = "256MiB", value_parser = parse_size)]
    pub backup_limit: u64,
}

fn parse_size(text: &str) -> Result<u64, String> {
    crate::state::undo::parse_size(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DurabilityArg {
    #[default]
    Full,
    Process,
}

impl From<DurabilityArg> for crate::state::journal::Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Full => Self::Full,
            DurabilityArg::Process => Self::Process,
        }
    }
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The runbook file (default: the newest run's).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputFlags,
    /// Predict the rollback over the disk as it is, touching nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Undo even where a path was changed since the run (the change is lost), or the runbook
    /// changed.
    #[arg(long)]
    pub force: bool,
    /// Run this interrupted undo command again.
    #[arg(long, value_name = "ID", conflicts_with = "mark_done")]
    pub redo: Option<String>,
    /// Take this interrupted undo (or this step's undo) as done and go on.
    #[arg(long, value_name = "ID")]
    pub mark_done: Option<String>,
    #[command(flatten)]
    pub run: RunFlags,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only the runs of this runbook (a runbook file), or only this run (a run id).
    #[arg(value_name = "FILE|RUN")]
    pub file: Option<PathBuf>,
    /// Text, a JSON document, or the record of one run (the newest unless RUN is given) as
    /// Markdown (to attach to a ticket) or one self-contained HTML page.
    #[arg(long, value_enum, default_value_t)]
    pub format: DocFormat,
    #[command(flatten)]
    pub state: StateFlags,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print each input's value and which layer set it.
    #[arg(long)]
    pub explain_inputs: bool,
    #[command(flatten)]
    pub inputs: InputFlags,
}

impl Cli {
    /// FILE arguments as the command means them. On Windows, where the command prompt passes
    /// `*` and `?` through as typed, they are expanded here (as `dir` would); a pattern that
    /// matches nothing, or several files where one is expected, is an error naming it.
    pub fn expand_wildcards(&mut self) -> Result<(), Failure> {
        if !EXPANDS_WILDCARDS {
            return Ok(());
        }
        let mut singles: Vec<&mut PathBuf> = Vec::new();
        let mut inputs: Option<&mut InputFlags> = None;
        match &mut self.command {
            Command::Validate { files } => {
                let mut expanded = Vec::new();
                for f in files.drain(..) {
                    expanded.extend(expand_many(&f)?);
                }
                *files = expanded;
            }
            Command::Plan(a) => {
                singles.push(&mut a.file);
                inputs = Some(&mut a.inputs);
            }
            Command::Run(a) => {
                singles.extend(a.file.as_mut());
                singles.extend(a.plan.as_mut());
                inputs = Some(&mut a.inputs);
            }
            Command::Resume(a) => {
                singles.extend(a.file.as_mut());
                inputs = Some(&mut a.inputs);
            }
            Command::Status(a) => singles.extend(a.file.as_mut()),
            Command::Rollback(a) => {
                singles.extend(a.file.as_mut());
                inputs = Some(&mut a.inputs);
            }
            Command::Show(a) => {
                singles.push(&mut a.file);
                inputs = Some(&mut a.inputs);
            }
            Command::ShowPlan { plan, .. } => singles.push(plan),
            Command::Approve(a) => singles.push(&mut a.plan),
            Command::Verify(a) => singles.push(&mut a.bundle),
            Command::Evidence(_) => {}
            Command::Test(a) => {
                let mut expanded = Vec::new();
                for f in a.paths.drain(..) {
                    expanded.extend(expand_many(&f)?);
                }
                a.paths = expanded;
            }
            Command::Schema { .. }
            | Command::Version { .. }
            | Command::Lsp
            | Command::Completions { .. }
            | Command::Man => {}
        }
        if let Some(inputs) = inputs {
            singles.extend(inputs.vars_files.iter_mut());
        }
        for f in singles {
            *f = expand_one(f)?;
        }
        Ok(())
    }
}

fn expand_many(pattern: &std::path::Path) -> Result<Vec<PathBuf>, Failure> {
    let text = pattern.to_string_lossy();
    if !has_wildcard(&text) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let found = expand(&text);
    if found.is_empty() {
        let d = Diagnostic::error(format!("no file matches `{text}`"));
        return Err(d.hint("check the folder and the pattern (`*` and `?` are wildcards)").into());
    }
    Ok(found)
}

fn expand_one(pattern: &std::path::Path) -> Result<PathBuf, Failure> {
    let mut found = expand_many(pattern)?;
    if found.len() > 1 {
        let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        let d =
            Diagnostic::error(format!("`{}` matches {} files: {}", pattern.display(), found.len(), names.join(", ")));
        return Err(d.hint("this argument takes one file; make the pattern match only it").into());
    }
    Ok(found.remove(0))
}
