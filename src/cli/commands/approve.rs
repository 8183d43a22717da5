//! `approve`: an SSH signature of a saved plan's bytes, in `PLAN.approvals/`.

use crate::cli::args::ApproveArgs;
use crate::cli::config::Config;
use crate::cli::exit::{CmdResult, ExitCode};
use crate::cli::session;
use crate::format::diagnostic::Diagnostic;
use crate::state::approvals::{self, KeyChoice, PLAN_NAMESPACE};
use crate::state::saved_plan::SavedPlan;

pub fn run(config: &Config, args: &ApproveArgs) -> CmdResult {
    let ui = &config.ui;
    // A plan, and the bytes the approval signs: exactly the file's.
    SavedPlan::read(&args.plan)?;
    let bytes = std::fs::read(&args.plan).map_err(|e| {
        Diagnostic::error(format!("cannot read {}: {}", args.plan.display(), crate::os::fs::io_reason(&e)))
    })?;
    let ask = |prompt: &str| -> std::io::Result<String> {
        let term = console::Term::stderr();
        term.write_str(prompt)?;
        term.read_secure_line()
    };
    let choice = KeyChoice {
        file: args.key.as_deref(),
        ask_passphrase: config.can_ask.then_some(&ask as &approvals::AskPassphrase),
    };
    let mut key = approvals::signing_key(&choice)?;
    let public = key.public();
    let print = approvals::fingerprint(&public);
    let folder = approvals::folder_of(&args.plan);
    // The same key approving again is the same approval: kept if it still approves these
    // bytes, replaced if it approved other bytes.
    let mut stale = Vec::new();
    for found in approvals::read_folder(&args.plan)? {
        if approvals::key_of(&found.bytes).as_ref() != Some(&public) {
            continue;
        }
        let sig = ssh_key::SshSig::from_pem(&found.bytes).expect("its key was read");
        let good = sig.namespace() == PLAN_NAMESPACE
            && ssh_key::PublicKey::new(public.clone(), "").verify(PLAN_NAMESPACE, &bytes, &sig).is_ok();
        if good {
            ui.info(&format!(
                "{} is approved by this key ({print}) already: {}",
                args.plan.display(),
                folder.join(&found.name).display()
            ));
            save_comment(&folder.join(&found.name), args.comment.as_deref())?;
            return Ok(ExitCode::Success);
        }
        stale.push(folder.join(&found.name));
    }
    let armored = key.sign(PLAN_NAMESPACE, &bytes).map_err(|e| Diagnostic::error(format!("cannot sign: {e}")))?;
    std::fs::create_dir_all(&folder).map_err(|e| {
        Diagnostic::error(format!("cannot create {}: {}", folder.display(), crate::os::fs::io_reason(&e)))
    })?;
    let file = folder.join(approvals::file_name_for(&public, key.comment()));
    session::save(&file, &armored, "the approval")?;
    for old in stale.iter().filter(|p| **p != file) {
        let _ = std::fs::remove_file(old);
        let _ = std::fs::remove_file(comment_path(old));
    }
    save_comment(&file, args.comment.as_deref())?;
    let who = if key.comment().is_empty() { String::new() } else { format!(" ({})", key.comment()) };
    ui.info(&format!("approved {} with {print}{who}: {}", args.plan.display(), file.display()));
    Ok(ExitCode::Success)
}

/// The note beside an approval: `NAME.sig` → `NAME.comment`.
fn comment_path(sig: &std::path::Path) -> std::path::PathBuf {
    sig.with_extension("comment")
}

fn save_comment(sig: &std::path::Path, comment: Option<&str>) -> Result<(), crate::cli::exit::Failure> {
    match comment {
        Some(text) => session::save(&comment_path(sig), &format!("{}\n", text.trim_end()), "the approval's comment"),
        None => Ok(()),
    }
}
