//! The approval policy a run is held to: how many distinct allowed principals must have approved
//! the reviewed plan, whose keys count (an `allowed_signers` file), and whether the operator's
//! own approval counts. It comes from the flags (or `RUNBOOK_REQUIRE_APPROVALS`,
//! `RUNBOOK_ALLOWED_SIGNERS`, `RUNBOOK_NO_SELF_APPROVAL`), from the server's policy file
//! ([`system_policy_file`]) and from `RUNBOOK_POLICY`; where they differ, the stricter wins.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::cli::args::ApprovalFlags;
use crate::cli::exit::Failure;
use crate::format::allowed_signers::AllowedSigners;
use crate::format::diagnostic::{Diagnostic, plural};
use crate::format::source::Source;
use crate::os::args::quote;
use crate::state::approvals::{self, Approver, Check, Checked};

/// The server's policy file: `/etc/runbook/policy.yaml`, or on Windows
/// `%ProgramData%\runbook\policy.yaml`. Set up once by whoever runs the server; it applies to
/// every run there, whatever the flags say (they can only make it stricter).
pub fn system_policy_file() -> PathBuf {
    #[cfg(windows)]
    {
        let data = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(data).join("runbook").join("policy.yaml")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/etc/runbook/policy.yaml")
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyFile {
    #[serde(default)]
    require_approvals: usize,
    /// Relative to the policy file's folder.
    #[serde(default)]
    allowed_signers: Option<PathBuf>,
    #[serde(default)]
    no_self_approval: bool,
}

/// The policy in force.
#[derive(Debug, Default)]
pub struct Policy {
    pub require: usize,
    pub signers: Option<(PathBuf, AllowedSigners)>,
    pub no_self_approval: bool,
    /// The policy files that set it, for messages.
    pub files: Vec<PathBuf>,
}

impl Policy {
    /// The flags, the server's policy file and `RUNBOOK_POLICY`, the stricter of each.
    pub fn resolve(flags: &ApprovalFlags) -> Result<Policy, Failure> {
        let mut policy = Policy {
            require: flags.require_approvals.unwrap_or(0),
            signers: None,
            no_self_approval: flags.no_self_approval,
            files: Vec::new(),
        };
        let mut signers_file = flags.allowed_signers.clone();
        let named = std::env::var_os("RUNBOOK_POLICY").filter(|p| !p.is_empty()).map(PathBuf::from);
        let system = system_policy_file();
        for (path, must_exist) in [(Some(system), false), (named, true)] {
            let Some(path) = path else { continue };
            let Some(file) = read_policy(&path, must_exist)? else { continue };
            policy.require = policy.require.max(file.require_approvals);
            policy.no_self_approval |= file.no_self_approval;
            if let Some(signers) = file.allowed_signers {
                let signers = crate::os::path::parent_dir(&path).join(signers);
                match &signers_file {
                    Some(given) if !same_file(given, &signers) => {
                        return Err(Failure::from(
                            Diagnostic::error(format!(
                                "the policy {} names the allowed signers {}; {} cannot replace them",
                                path.display(),
                                signers.display(),
                                given.display()
                            ))
                            .hint("leave out --allowed-signers (and RUNBOOK_ALLOWED_SIGNERS): the server's policy decides whose approvals count"),
                        ));
                    }
                    _ => signers_file = Some(signers),
                }
            }
            policy.files.push(path);
        }
        if let Some(path) = signers_file {
            let text = crate::format::file::read_text(&path)
                .map_err(|d| Failure::from(d.hint("--allowed-signers names an OpenSSH allowed_signers file")))?;
            let parsed = AllowedSigners::parse(&Source::new(path.clone(), text)).map_err(Failure::from)?;
            policy.signers = Some((path, parsed));
        }
        if policy.require > 0 && policy.signers.is_none() {
            return Err(Failure::from(
                Diagnostic::error(format!(
                    "{} approvals are required, but no allowed signers say whose count",
                    policy.require
                ))
                .hint("give the OpenSSH allowed_signers file with `--allowed-signers FILE` (or RUNBOOK_ALLOWED_SIGNERS, or `allowed-signers:` in the policy file)"),
            ));
        }
        Ok(policy)
    }

    pub fn requires_approval(&self) -> bool {
        self.require > 0
    }

    /// Where the requirement comes from, for messages.
    fn source(&self) -> String {
        match self.files.first() {
            Some(f) => format!("the policy {}", f.display()),
            None => "--require-approvals".into(),
        }
    }

    /// A run that is not of a reviewed plan cannot have been approved: refused (exit 3) when
    /// approvals are required.
    pub fn refuse_unreviewed(&self, what: &str) -> Result<(), Failure> {
        if !self.requires_approval() {
            return Ok(());
        }
        Err(Failure::refused(
            Diagnostic::error(format!(
                "{what}: {} approved {} required by {}, and this is not a reviewed plan; nothing was changed",
                self.require,
                plural(self.require, "approval", "approvals"),
                self.source()
            ))
            .hint("save the plan with `runbook plan FILE --out change.plan.json`, have it approved (`runbook approve change.plan.json`), then `runbook run --plan change.plan.json`"),
        ))
    }

    /// Checks the plan's approvals against the policy: the approvers that count, or a refusal
    /// (exit 3) listing every approval with its status.
    pub fn check_plan(&self, plan_path: &Path, plan_bytes: &[u8]) -> Result<Vec<Approver>, Failure> {
        if !self.requires_approval() {
            return Ok(Vec::new());
        }
        let checked = check_folder(plan_path, plan_bytes, self.signers.as_ref().map(|(_, s)| s), self.operator())?;
        let approvers = approvals::approvers(&checked, &crate::state::journal::now());
        if approvers.len() >= self.require {
            return Ok(approvers);
        }
        let (signers_path, _) = self.signers.as_ref().expect("required approvals have signers");
        let list = if checked.is_empty() {
            format!("\n  no approvals in {}", approvals::folder_of(plan_path).display())
        } else {
            listing(&checked)
        };
        let plan_word = quote(&plan_path.display().to_string());
        Err(Failure::refused(
            Diagnostic::error(format!(
                "the plan {} has {} of the {} approvals required by {}; nothing was changed:{list}",
                plan_path.display(),
                approvers.len(),
                self.require,
                self.source()
            ))
            .hint(format!(
                "each approver signs the plan with `runbook approve {plan_word}` (or `ssh-keygen -Y sign -n {} -f KEY {plan_word}`, the .sig moved into {}); whose approvals count: {}{}",
                approvals::PLAN_NAMESPACE,
                quote(&approvals::folder_of(plan_path).display().to_string()),
                signers_path.display(),
                if self.no_self_approval { "; the operator's own approval does not count" } else { "" }
            )),
        ))
    }

    /// The operator's account, when their own approval must not count.
    fn operator(&self) -> Option<String> {
        self.no_self_approval.then(crate::os::sys::account)
    }
}

/// Every approval beside the plan, checked (other plans in the plan's folder are tried, to
/// name an approval of one of them).
pub fn check_folder(
    plan_path: &Path,
    plan_bytes: &[u8],
    signers: Option<&AllowedSigners>,
    operator: Option<String>,
) -> Result<Vec<Checked>, Failure> {
    let found = approvals::read_folder(plan_path)?;
    let others = if found.is_empty() { Vec::new() } else { neighbours(plan_path) };
    let check =
        Check { plan: plan_bytes, others: &others, signers, operator: operator.as_deref(), at: SystemTime::now() };
    Ok(approvals::check(&found, &check))
}

/// The other `*.json` files beside a plan (a few, and small ones only).
fn neighbours(plan_path: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = crate::os::path::parent_dir(plan_path);
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let own = plan_path.file_name();
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json") && Some(e.file_name().as_os_str()) != own)
        .filter(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() < 16 << 20))
        .take(64)
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).ok()?)))
        .collect()
}

/// One line per approval: its file, key and status.
pub fn listing(checked: &[Checked]) -> String {
    let width = checked.iter().map(|c| c.file.len()).max().unwrap_or(0);
    checked
        .iter()
        .map(|c| format!("\n  {:<width$}  {}  {}", c.file, c.key.as_deref().unwrap_or("-"), c.status.label()))
        .collect()
}

fn read_policy(path: &Path, must_exist: bool) -> Result<Option<PolicyFile>, Failure> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(None),
        Err(e) => {
            return Err(Failure::from(Diagnostic::error(format!(
                "cannot read the policy {}: {}",
                path.display(),
                crate::os::fs::io_reason(&e)
            ))));
        }
    };
    if text.trim().is_empty() {
        return Ok(Some(PolicyFile::default()));
    }
    serde_saphyr::from_str::<PolicyFile>(&text).map(Some).map_err(|e| {
        Failure::from(
            Diagnostic::error(format!("the policy {} cannot be read: {e}", path.display())).hint(
                "it is YAML with `require-approvals: N`, `allowed-signers: FILE` and `no-self-approval: true|false`",
            ),
        )
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
