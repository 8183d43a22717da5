//! Approvals of a saved plan: SSH signatures (the `ssh-keygen -Y sign` format, SSHSIG) of the
//! plan file's bytes in the namespace `runbook-plan`, kept as `*.sig` files in the folder
//! `PLAN.approvals/` beside the plan. Signing (with a key file or the SSH agent) and checking
//! (against an OpenSSH `allowed_signers` file) are done here, in-process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, Signature, SshSig};

use crate::format::allowed_signers::{AllowedSigners, Validity};
use crate::format::diagnostic::Diagnostic;
use crate::os::agent::{self, Agent};

/// The namespace of a plan's approvals.
pub const PLAN_NAMESPACE: &str = "runbook-plan";
/// The namespace of an evidence bundle's manifest signature.
pub const EVIDENCE_NAMESPACE: &str = "runbook-evidence";

/// `PLAN.approvals/`, beside the plan.
pub fn folder_of(plan: &Path) -> PathBuf {
    let mut name = plan.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".approvals");
    plan.with_file_name(name)
}

/// One `*.sig` file, as found.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The approvals beside a plan, by file name (none when the folder does not exist).
pub fn read_folder(plan: &Path) -> Result<Vec<Found>, Diagnostic> {
    let folder = folder_of(plan);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Diagnostic::error(format!(
                "cannot read the approvals {}: {}",
                folder.display(),
                crate::os::fs::io_reason(&e)
            )));
        }
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "sig") || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            Diagnostic::error(format!("cannot read the approval {}: {}", path.display(), crate::os::fs::io_reason(&e)))
        })?;
        found.push(Found { name: entry.file_name().to_string_lossy().into_owned(), bytes });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// What checking one approval found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// A good signature of this plan by an allowed principal, valid now: it counts.
    Valid { principal: String },
    /// A good signature of this plan; no allowed signers were given to say whose.
    Signed,
    /// By the operator running the plan, who may not approve it (`--no-self-approval`).
    SelfApproval { principal: String },
    /// A principal (or key) that approved already.
    Duplicate { principal: String },
    /// The key is in no line of the allowed signers (for this namespace).
    UnknownKey,
    /// The signature does not verify: not made by that key over this plan's bytes.
    BadSignature,
    /// A good signature, of another plan (named when it was found beside this one).
    OtherPlan { plan: Option<String> },
    /// An allowed principal whose `valid-after`/`valid-before` excludes now.
    NotValidNow { principal: String, why: String },
    /// Signed in another namespace than `runbook-plan` (a git or file signature).
    WrongNamespace { namespace: String },
    /// Not an SSH signature at all.
    Unreadable { reason: String },
}

impl Status {
    pub fn counts(&self) -> bool {
        matches!(self, Status::Valid { .. })
    }

    pub fn label(&self) -> String {
        match self {
            Status::Valid { principal } => format!("valid: approved by {principal}"),
            Status::Signed => "signed (no allowed signers given to say by whom)".into(),
            Status::SelfApproval { principal } => {
                format!("does not count: {principal} is the operator running it (--no-self-approval)")
            }
            Status::Duplicate { principal } => format!("does not count again: {principal} approved already"),
            Status::UnknownKey => "unknown key: not in the allowed signers".into(),
            Status::BadSignature => "bad signature: not this plan's bytes signed by this key".into(),
            Status::OtherPlan { plan: Some(p) } => format!("other plan: it approves {p}, not this plan"),
            Status::OtherPlan { plan: None } => "other plan: it approves other bytes than this plan's".into(),
            Status::NotValidNow { principal, why } => format!("principal not valid now: {principal} ({why})"),
            Status::WrongNamespace { namespace } => {
                format!("wrong namespace: signed for `{namespace}`, not `{PLAN_NAMESPACE}`")
            }
            Status::Unreadable { reason } => format!("unreadable: {reason}"),
        }
    }
}

/// One approval, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// The `*.sig` file's name.
    pub file: String,
    /// The signing key's fingerprint (`SHA256:…`), when the signature could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(flatten)]
    pub status: Status,
}

/// An approval that counted, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    pub principal: String,
    /// The key's fingerprint, `SHA256:…` as ssh-keygen prints it.
    pub key: String,
    /// The approval's file name in `PLAN.approvals/`.
    pub file: String,
    /// When it was checked.
    pub checked: String,
}

/// What approvals are checked against.
pub struct Check<'a> {
    pub plan: &'a [u8],
    /// Other plans' bytes, by name, to tell "approves another plan" from "bad signature".
    pub others: &'a [(String, Vec<u8>)],
    pub signers: Option<&'a AllowedSigners>,
    /// The operator's account name, whose own approval does not count.
    pub operator: Option<&'a str>,
    pub at: SystemTime,
}

pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Whether an allowed principal is the operator `account`: the name itself, or the name before
/// an `@` (`alice@example.com` is `alice`); letter case is ignored on Windows.
pub fn is_operator(principal: &str, account: &str) -> bool {
    let same = |a: &str, b: &str| if cfg!(windows) { a.eq_ignore_ascii_case(b) } else { a == b };
    principal
        .split(',')
        .map(str::trim)
        .any(|p| same(p, account) || p.split_once('@').is_some_and(|(n, _)| same(n, account)))
}

/// Checks every approval; the distinct valid ones are `Status::Valid`, in file order.
pub fn check(found: &[Found], check: &Check) -> Vec<Checked> {
    let mut principals = HashSet::new();
    let mut keys = HashSet::new();
    found
        .iter()
        .map(|f| {
            let (key, status) = check_one(f, check);
            let status = match status {
                Status::Valid { principal } => {
                    let key_seen = key.as_ref().is_some_and(|k| !keys.insert(k.clone()));
                    if !principals.insert(principal.clone()) || key_seen {
                        Status::Duplicate { principal }
                    } else {
                        Status::Valid { principal }
                    }
                }
                other => other,
            };
            Checked { file: f.name.clone(), key, status }
        })
        .collect()
}

fn check_one(found: &Found, check: &Check) -> (Option<String>, Status) {
    let sig = match SshSig::from_pem(&found.bytes) {
        Ok(sig) => sig,
        Err(e) => return (None, Status::Unreadable { reason: format!("not an SSH signature ({e})") }),
    };
    let key = sig.public_key().clone();
    let print = Some(fingerprint(&key));
    if sig.namespace() != PLAN_NAMESPACE {
        return (print, Status::WrongNamespace { namespace: sig.namespace().to_owned() });
    }
    let public = PublicKey::new(key.clone(), "");
    if public.verify(PLAN_NAMESPACE, check.plan, &sig).is_err() {
        let other = check.others.iter().find(|(_, bytes)| public.verify(PLAN_NAMESPACE, bytes, &sig).is_ok());
        return match other {
            Some((name, _)) => (print, Status::OtherPlan { plan: Some(name.clone()) }),
            None => (print, Status::BadSignature),
        };
    }
    let Some(signers) = check.signers else { return (print, Status::Signed) };
    let lines: Vec<_> = signers.for_key(&key).filter(|s| s.allows_namespace(PLAN_NAMESPACE)).collect();
    if lines.is_empty() {
        return (print, Status::UnknownKey);
    }
    let mut not_now = None;
    for line in &lines {
        match line.validity(check.at) {
            Validity::Valid => {
                let principal = line.principals.clone();
                if let Some(operator) = check.operator
                    && is_operator(&principal, operator)
                {
                    return (print, Status::SelfApproval { principal });
                }
                return (print, Status::Valid { principal });
            }
            Validity::NotYet(why) | Validity::Expired(why) => {
                not_now.get_or_insert(Status::NotValidNow { principal: line.principals.clone(), why });
            }
        }
    }
    (print, not_now.expect("a line was found"))
}

/// The approvers among the checked approvals, as the journal records them.
pub fn approvers(checked: &[Checked], at: &str) -> Vec<Approver> {
    checked
        .iter()
        .filter_map(|c| match &c.status {
            Status::Valid { principal } => Some(Approver {
                principal: principal.clone(),
                key: c.key.clone().unwrap_or_default(),
                file: c.file.clone(),
                checked: at.to_owned(),
            }),
            _ => None,
        })
        .collect()
}

/// A key to sign with: a private key file, or a key the SSH agent holds.
pub enum SigningKey {
    File(Box<PrivateKey>),
    Agent { agent: Box<Agent>, key: KeyData, comment: String },
}

impl SigningKey {
    pub fn public(&self) -> KeyData {
        match self {
            SigningKey::File(k) => k.public_key().key_data().clone(),
            SigningKey::Agent { key, .. } => key.clone(),
        }
    }

    pub fn comment(&self) -> &str {
        match self {
            SigningKey::File(k) => k.comment(),
            SigningKey::Agent { comment, .. } => comment,
        }
    }

    /// An SSHSIG of `message` in `namespace` (SHA-512, as ssh-keygen makes them), armored.
    pub fn sign(&mut self, namespace: &str, message: &[u8]) -> Result<String, String> {
        let sig = match self {
            SigningKey::File(k) => match k.key_data() {
                KeypairData::Rsa(rsa) => sign_rsa(rsa, namespace, message)?,
                _ => k.sign(namespace, HashAlg::Sha512, message).map_err(|e| e.to_string())?,
            },
            SigningKey::Agent { agent, key, .. } => {
                let data = SshSig::signed_data(namespace, HashAlg::Sha512, message).map_err(|e| e.to_string())?;
                let blob = ssh_key::PublicKey::new(key.clone(), "").to_bytes().map_err(|e| e.to_string())?;
                let flags = if matches!(key, KeyData::Rsa(_)) { agent::RSA_SHA2_512 } else { 0 };
                let answer = agent.sign(&blob, &data, flags).map_err(|e| format!("the SSH agent: {e}"))?;
                let signature = Signature::try_from(answer.as_slice())
                    .map_err(|e| format!("the SSH agent's signature cannot be read: {e}"))?;
                SshSig::new(key.clone(), namespace, HashAlg::Sha512, signature).map_err(|e| e.to_string())?
            }
        };
        sig.to_pem(LineEnding::LF).map_err(|e| e.to_string())
    }
}

/// An `rsa-sha2-512` SSHSIG, as ssh-keygen makes them (PKCS #1 v1.5 over SHA-512).
fn sign_rsa(key: &RsaKeypair, namespace: &str, message: &[u8]) -> Result<SshSig, String> {
    use rsa::signature::{SignatureEncoding, Signer};
    let big = |m: &ssh_key::Mpint| rsa::BigUint::from_bytes_be(m.as_positive_bytes().unwrap_or(&[]));
    let private = rsa::RsaPrivateKey::from_components(
        big(&key.public.n),
        big(&key.public.e),
        big(&key.private.d),
        vec![big(&key.private.p), big(&key.private.q)],
    )
    .map_err(|e| format!("the RSA key cannot be used: {e}"))?;
    let data = SshSig::signed_data(namespace, HashAlg::Sha512, message).map_err(|e| e.to_string())?;
    let signed = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private)
        .try_sign(&data)
        .map_err(|e| format!("the RSA key cannot sign: {e}"))?;
    let signature = Signature::new(ssh_key::Algorithm::Rsa { hash: Some(HashAlg::Sha512) }, signed.to_vec())
        .map_err(|e| e.to_string())?;
    SshSig::new(KeyData::Rsa(key.public.clone()), namespace, HashAlg::Sha512, signature).map_err(|e| e.to_string())
}

/// Asks for a passphrase with this prompt.
pub type AskPassphrase = dyn Fn(&str) -> std::io::Result<String>;

/// How `approve` finds its key.
pub struct KeyChoice<'a> {
    /// `--key FILE`: a private key file, or a public key (`.pub`) the agent holds.
    pub file: Option<&'a Path>,
    /// Asks for an encrypted key's passphrase (on the terminal), when one can be asked.
    pub ask_passphrase: Option<&'a AskPassphrase>,
}

/// The key to sign with: the file given (through the agent when it holds that key, so an
/// encrypted key needs no passphrase), else the agent's first key, else the first of
/// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
pub fn signing_key(choice: &KeyChoice) -> Result<SigningKey, Diagnostic> {
    let mut agent = Agent::connect().ok().flatten();
    let held = |agent: &mut Option<Agent>| -> Vec<(KeyData, String)> {
        agent
            .as_mut()
            .and_then(|a| a.identities().ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| {
                let key = PublicKey::from_bytes(&i.blob).ok()?.key_data().clone();
                Some((key, i.comment))
            })
            .collect()
    };
    let path = match choice.file {
        Some(path) => path.to_path_buf(),
        None => {
            if let Some((key, comment)) = held(&mut agent).into_iter().next() {
                let agent = Box::new(agent.expect("keys came from the agent"));
                return Ok(SigningKey::Agent { agent, key, comment });
            }
            default_key_file().ok_or_else(|| {
                Diagnostic::error("no key to sign with: no SSH agent holds a key, and there is no ~/.ssh/id_ed25519, id_ecdsa or id_rsa")
                    .hint("give one with `--key FILE` (an OpenSSH private key, or the `.pub` of a key the agent holds)")
            })?
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Diagnostic::error(format!("cannot read the key {}: {}", path.display(), crate::os::fs::io_reason(&e)))
    })?;
    if let Ok(public) = PublicKey::from_openssh(text.trim()) {
        let key = public.key_data().clone();
        if held(&mut agent).iter().any(|(k, _)| *k == key) {
            let agent = Box::new(agent.expect("keys came from the agent"));
            return Ok(SigningKey::Agent { agent, key, comment: public.comment().to_owned() });
        }
        return Err(Diagnostic::error(format!(
            "{} is a public key, and no SSH agent holds its private key",
            path.display()
        ))
        .hint("add it with `ssh-add`, or give the private key file with `--key`"));
    }
    let private = PrivateKey::from_openssh(&text).map_err(|e| {
        Diagnostic::error(format!("{} is not an OpenSSH private key: {e}", path.display()))
            .hint("keys made by `ssh-keygen -t ed25519` (or ecdsa, rsa) are read; a PuTTY .ppk key must be exported to OpenSSH format first")
    })?;
    if !private.is_encrypted() {
        return Ok(SigningKey::File(Box::new(private)));
    }
    let key = private.public_key().key_data().clone();
    if held(&mut agent).iter().any(|(k, _)| *k == key) {
        let agent = Box::new(agent.expect("keys came from the agent"));
        return Ok(SigningKey::Agent { agent, key, comment: private.comment().to_owned() });
    }
    let Some(ask) = choice.ask_passphrase else {
        return Err(Diagnostic::error(format!(
            "the key {} is encrypted, and no terminal can ask for its passphrase",
            path.display()
        ))
        .hint("add it to the SSH agent with `ssh-add` (then `approve` signs through the agent), or run `approve` on a terminal"));
    };
    for _ in 0..3 {
        let passphrase = ask(&format!("Enter passphrase for {}: ", path.display()))
            .map_err(|e| Diagnostic::error(format!("cannot read the passphrase: {e}")))?;
        if let Ok(open) = private.decrypt(passphrase.as_bytes()) {
            return Ok(SigningKey::File(Box::new(open)));
        }
        eprintln!("wrong passphrase");
    }
    Err(Diagnostic::error(format!("wrong passphrase for {}", path.display())))
}

fn default_key_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    let ssh = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"].iter().map(|n| ssh.join(n)).find(|p| p.is_file())
}

/// The file name `approve` gives a key's approval: its comment (made safe), then the start of
/// its fingerprint, so the same key approving again replaces its own file.
pub fn file_name_for(key: &KeyData, comment: &str) -> String {
    let print = fingerprint(key);
    let short: String = print
        .trim_start_matches("SHA256:")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(12)
        .collect();
    let who: String = comment
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "@._-".contains(c) { c } else { '_' })
        .take(40)
        .collect();
    if who.is_empty() { format!("key-{short}.sig") } else { format!("{who}-{short}.sig") }
}

/// The key an armored signature was made with, if it can be read.
pub fn key_of(bytes: &[u8]) -> Option<KeyData> {
    SshSig::from_pem(bytes).ok().map(|s| s.public_key().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_is_the_account_or_the_name_before_the_at() {
        assert!(is_operator("alice", "alice"));
        assert!(is_operator("alice@example.com", "alice"));
        assert!(is_operator("ops,alice@example.com", "alice"));
        assert!(!is_operator("alicia@example.com", "alice"));
        assert!(!is_operator("bob", "alice"));
    }

    #[test]
    fn approvals_folder_is_beside_the_plan() {
        assert_eq!(folder_of(Path::new("x/change.plan.json")), Path::new("x/change.plan.json.approvals"));
    }
}
