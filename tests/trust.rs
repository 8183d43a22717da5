//! Approvals and evidence: plans signed with SSH keys (by runbook and by OpenSSH's ssh-keygen),
//! runs that refuse without enough approvals, and evidence bundles checked by `verify`.
//!
//! The keys in `tests/fixtures/trust/` were made by ssh-keygen for these tests only (`dana`'s
//! passphrase is `correct horse`), with signatures ssh-keygen made of the fixture plan: so on
//! Windows, where no ssh-keygen runs, runbook's approvals are still checked against OpenSSH's.
//! On Linux the tests also run the real ssh-keygen (and ssh-agent) when installed; CI requires
//! them (`RUNBOOK_TEST_REQUIRE_OPENSSH=1`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Test, crate_path, sha256_hex};

const SECRET: &str = "S3cret-Pa55word";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate_path("tests/fixtures/trust").join(name)).unwrap()
}

/// A test folder with the fixture runbook, plan, keys and allowed signers.
fn change() -> Test {
    let mut t = Test::new();
    for name in ["rb.yaml", "change.plan.json", "allowed_signers", "alice", "bob", "carol", "dana", "eve"] {
        t = t.file(name, fixture(name));
    }
    t.file("secrets.json", format!("{{\"password\": \"{SECRET}\"}}"))
}

/// A runbook that changes files (its plan made in the test's folder), with a step that fails
/// until `go` exists.
const CHANGING: &str = r#"runbook: 1
name: changing
inputs:
  password:
    secret: true
steps:
  - id: stage
    mkdir: stage
  - id: write
    write: { path: stage/config.txt, content: "password={{ password }}\n" }
  - id: gate
    assert: { file: go, message: the gate is closed }
  - id: done
    write: { path: stage/done.txt, content: "done\n" }
"#;

fn approve(t: &Test, key: &str) {
    let out = t_then(t).args(["approve", "change.plan.json", "--key", key]).any_stderr().any_files().run();
    assert!(out.stderr.contains("approved change.plan.json with SHA256:"), "{}", out.stderr);
}

fn t_then(t: &Test) -> Test {
    t.again()
}

/// ssh-keygen, when this machine has it (required in CI on Linux).
fn ssh_keygen() -> Option<&'static str> {
    let found = Command::new("ssh-keygen").arg("-?").output().is_ok();
    if !found && cfg!(unix) && std::env::var_os("RUNBOOK_TEST_REQUIRE_OPENSSH").is_some() {
        panic!("ssh-keygen is required (RUNBOOK_TEST_REQUIRE_OPENSSH is set): install openssh-client");
    }
    found.then_some("ssh-keygen")
}

/// A private key copied where ssh-keygen accepts it (owner-only permissions).
fn private_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, fixture(name)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

#[test]
fn runbook_makes_the_same_ed25519_approval_as_ssh_keygen() {
    // Ed25519 signatures are deterministic: the same key over the same bytes in the same
    // namespace gives the same signature, byte for byte, whoever makes it.
    let t = change();
    approve(&t, "alice");
    let folder = t.path().join("change.plan.json.approvals");
    let made: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(std::fs::read(&made[0]).unwrap(), fixture("alice.ssh-keygen.sig"));
    // Approving again with the same key is the same approval.
    let out = t_then(&t).args(["approve", "change.plan.json", "--key", "alice"]).any_stderr().run();
    assert!(out.stderr.contains("is approved by this key"), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
}

#[test]
fn approvals_by_ssh_keygen_and_by_runbook_verify_both_ways() {
    let t = change();
    for key in ["alice", "bob", "carol"] {
        approve(&t, key);
    }
    let out =
        t_then(&t).args(["show-plan", "change.plan.json", "--allowed-signers", "allowed_signers"]).any_stdout().run();
    for who in ["alice@example.com", "bob@example.com", "carol@example.com"] {
        assert!(out.stdout.contains(&format!("valid: approved by {who}")), "{}", out.stdout);
    }
    // ssh-keygen's own signatures (made of the fixture plan) count the same.
    std::fs::remove_dir_all(t.path().join("change.plan.json.approvals")).unwrap();
    let approvals = t.path().join("change.plan.json.approvals");
    std::fs::create_dir(&approvals).unwrap();
    std::fs::write(approvals.join("bob.sig"), fixture("bob.ssh-keygen.sig")).unwrap();
    std::fs::write(approvals.join("alice.sig"), fixture("alice.ssh-keygen.sig")).unwrap();
    let out =
        t_then(&t).args(["show-plan", "change.plan.json", "--allowed-signers", "allowed_signers"]).any_stdout().run();
    assert!(
        out.stdout.contains("bob.sig") && out.stdout.contains("valid: approved by bob@example.com"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("valid: approved by alice@example.com"), "{}", out.stdout);
    let Some(keygen) = ssh_keygen() else { return };
    // And ssh-keygen verifies what runbook signs, for each kind of key.
    std::fs::remove_dir_all(&approvals).unwrap();
    for (key, principal) in [("alice", "alice@example.com"), ("bob", "bob@example.com"), ("carol", "carol@example.com")]
    {
        approve(&t, key);
        let sig = std::fs::read_dir(&approvals)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(principal))
            .unwrap();
        let status = Command::new(keygen)
            .current_dir(t.path())
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", principal, "-n", "runbook-plan", "-s"])
            .arg(&sig)
            .stdin(std::fs::File::open(t.path().join("change.plan.json")).unwrap())
            .output()
            .unwrap();
        assert!(status.status.success(), "ssh-keygen -Y verify of {key}'s approval: {status:?}");
    }
    // A fresh key and a signature ssh-keygen makes now.
    let key = private_key(t.path(), "carol");
    let made = Command::new(keygen)
        .current_dir(t.path())
        .args(["-Y", "sign", "-n", "runbook-plan", "-f"])
        .arg(&key)
        .arg("change.plan.json")
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    std::fs::remove_dir_all(&approvals).unwrap();
    std::fs::create_dir(&approvals).unwrap();
    std::fs::rename(t.path().join("change.plan.json.sig"), approvals.join("change.plan.json.sig")).unwrap();
    let out = t_then(&t)
        .args(["show-plan", "change.plan.json", "--allowed-signers", "allowed_signers"])
        .any_stdout()
        .any_files()
        .run();
    assert!(out.stdout.contains("valid: approved by carol@example.com"), "{}", out.stdout);
}

#[test]
fn one_approval_of_two_required_is_refused_before_anything_is_touched() {
    let t = change();
    approve(&t, "alice");
    let out = t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--yes", "--secrets-from", "secrets.json"])
        .args(["--require-approvals", "2", "--allowed-signers", "allowed_signers"])
        .code(3)
        .any_stderr()
        .compare_state()
        .run();
    assert!(
        out.stderr.contains(
            "the plan change.plan.json has 1 of the 2 approvals required by --require-approvals; nothing was changed"
        ) && out.stderr.contains("valid: approved by alice@example.com"),
        "{}",
        out.stderr
    );
    assert!(!t.path().join(".runbook").exists(), "a refused run leaves no state");
    insta::assert_snapshot!(out.stderr);
}

/// The account running the tests, as the system names it.
fn account() -> String {
    if cfg!(windows) {
        return std::env::var("USERNAME").unwrap();
    }
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn every_approval_that_does_not_count_says_why() {
    let t = change();
    let me = account();
    let signers = format!(
        "{}{me}@example.com {}\nfrank@example.com valid-before=\"20200101Z\" {}\n",
        String::from_utf8(fixture("allowed_signers")).unwrap(),
        pub_line("eve"),
        pub_line("dana")
    );
    // dana's key is listed twice: allowed, and expired under another name; the first line wins.
    let signers = signers.replace(&format!("dana@example.com {}\n", pub_line("dana")), "");
    std::fs::write(t.path().join("allowed_signers"), signers).unwrap();
    std::fs::write(t.path().join("old.plan.json"), b"{\"an\": \"older plan\"}\n").unwrap();
    let approvals = t.path().join("change.plan.json.approvals");
    std::fs::create_dir(&approvals).unwrap();
    approve(&t, "alice");
    // Another plan's approval, beside it.
    let sign = |key: &str, bytes: &[u8], namespace: &str| -> Vec<u8> {
        use ssh_key::{HashAlg, LineEnding, PrivateKey};
        let key = PrivateKey::from_openssh(fixture(key)).unwrap();
        let key = if key.is_encrypted() { key.decrypt("correct horse").unwrap() } else { key };
        key.sign(namespace, HashAlg::Sha512, bytes).unwrap().to_pem(LineEnding::LF).unwrap().into_bytes()
    };
    std::fs::write(approvals.join("bob-other.sig"), sign("bob", b"{\"an\": \"older plan\"}\n", "runbook-plan"))
        .unwrap();
    std::fs::write(approvals.join("forged-by-alice.sig"), sign("alice", b"not the plan", "runbook-plan")).unwrap();
    std::fs::write(approvals.join("carol-file.sig"), fixture("carol.wrong-namespace.sig")).unwrap();
    std::fs::write(approvals.join("dana-expired.sig"), sign("dana", &fixture("change.plan.json"), "runbook-plan"))
        .unwrap();
    std::fs::write(approvals.join("eve-self.sig"), sign("eve", &fixture("change.plan.json"), "runbook-plan")).unwrap();
    std::fs::write(approvals.join("garbage.sig"), b"not a signature").unwrap();
    std::fs::write(approvals.join("zz-alice-again.sig"), fixture("alice.ssh-keygen.sig")).unwrap();
    let out = t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--yes", "--secrets-from", "secrets.json"])
        .args(["--require-approvals", "2", "--allowed-signers", "allowed_signers", "--no-self-approval"])
        .code(3)
        .any_stderr()
        .any_files()
        .run();
    let lines = [
        ("alice@", "valid: approved by alice@example.com"),
        ("bob-other.sig", "other plan: it approves old.plan.json, not this plan"),
        ("forged-by-alice.sig", "bad signature"),
        ("carol-file.sig", "wrong namespace: signed for `file`, not `runbook-plan`"),
        ("dana-expired.sig", "principal not valid now: frank@example.com (valid before 2020-01-01T00:00:00Z)"),
        ("eve-self.sig", &format!("does not count: {me}@example.com is the operator running it (--no-self-approval)")),
        ("garbage.sig", "unreadable: not an SSH signature"),
        ("zz-alice-again.sig", "does not count again: alice@example.com approved already"),
    ];
    for (file, status) in lines {
        let line = out
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with(file))
            .unwrap_or_else(|| panic!("{file}:\n{}", out.stderr));
        assert!(line.contains(status), "{file}: {line}\n{}", out.stderr);
    }
    assert!(out.stderr.contains("has 1 of the 2 approvals"), "{}", out.stderr);
    // A key in no line of the allowed signers.
    std::fs::write(t.path().join("allowed_signers"), fixture("allowed_signers")).unwrap();
    let out = t_then(&t)
        .args(["show-plan", "change.plan.json", "--allowed-signers", "allowed_signers"])
        .any_stdout()
        .any_files()
        .run();
    let eve = out.stdout.lines().find(|l| l.contains("eve-self.sig")).unwrap();
    assert!(eve.contains("unknown key: not in the allowed signers"), "{}", out.stdout);
}

/// `TYPE KEY` of a fixture key's `.pub` file.
fn pub_line(name: &str) -> String {
    let text = String::from_utf8(fixture(&format!("{name}.pub"))).unwrap();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn two_valid_approvals_run_and_every_record_names_the_approvers() {
    let t = change();
    approve(&t, "alice");
    let approvals = t.path().join("change.plan.json.approvals");
    std::fs::write(approvals.join("change.plan.json.sig"), fixture("bob.ssh-keygen.sig")).unwrap();
    approve(&t, "eve");
    let out = t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--yes", "--secrets-from", "secrets.json"])
        .args(["--require-approvals", "2", "--allowed-signers", "allowed_signers"])
        .any_stderr()
        .run();
    assert!(out.stderr.contains("is approved by alice@example.com, bob@example.com"), "{}", out.stderr);
    let out = t_then(&t).args(["status", "--format", "json"]).any_stdout().run();
    let runs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let principals: Vec<&str> =
        runs[0]["approvals"].as_array().unwrap().iter().map(|a| a["principal"].as_str().unwrap()).collect();
    assert_eq!(principals, ["alice@example.com", "bob@example.com"]);
    assert!(runs[0]["approvals"][1]["key"].as_str().unwrap().starts_with("SHA256:"));
    for format in ["text", "markdown", "html"] {
        let out = t_then(&t).args(["status", "--format", format]).any_stdout().run();
        assert!(
            out.stdout.contains("alice@example.com") && out.stdout.contains("bob@example.com"),
            "{format}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn the_servers_policy_file_holds_every_run_to_it() {
    let t = change().file("policy/policy.yaml", "require-approvals: 1\nallowed-signers: ../allowed_signers\n");
    // Not a reviewed plan: refused.
    let out = t_then(&t)
        .args(["run", "rb.yaml", "--yes", "--secrets-from", "secrets.json"])
        .env("RUNBOOK_POLICY", "policy/policy.yaml")
        .code(3)
        .any_stderr()
        .compare_state()
        .run();
    assert!(
        out.stderr
            .contains("1 approved approval required by the policy policy/policy.yaml, and this is not a reviewed plan"),
        "{}",
        out.stderr
    );
    // Another allowed signers file cannot replace the policy's.
    let out = t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--allowed-signers", "rb.yaml"])
        .env("RUNBOOK_POLICY", "policy/policy.yaml")
        .code(2)
        .any_stderr()
        .run();
    assert!(out.stderr.contains("cannot replace them"), "{}", out.stderr);
    // A flag cannot lower the policy's count.
    t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--yes", "--require-approvals", "0"])
        .env("RUNBOOK_POLICY", "policy/policy.yaml")
        .code(3)
        .stderr_contains(["has 0 of the 1 approvals required by the policy policy/policy.yaml"])
        .run();
    approve(&t, "bob");
    t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--yes", "--secrets-from", "secrets.json"])
        .env("RUNBOOK_POLICY", "policy/policy.yaml")
        .stderr_contains(["is approved by bob@example.com"])
        .run();
    // A policy file that cannot be read is an error at its place.
    let out = t_then(&t)
        .file("policy/bad.yaml", "require-approval: 1\n")
        .args(["run", "rb.yaml"])
        .env("RUNBOOK_POLICY", "policy/bad.yaml")
        .code(2)
        .any_stderr()
        .run();
    assert!(out.stderr.contains("policy/bad.yaml") && out.stderr.contains("require-approval"), "{}", out.stderr);
}

/// A plan of the changing runbook made and approved by alice and bob in the test folder.
fn approved_changing_plan() -> Test {
    let t = change().file("changing.yaml", CHANGING);
    t_then(&t)
        .args(["plan", "changing.yaml", "--out", "change.plan.json"])
        .code(1)
        .any_stdout()
        .any_stderr()
        .any_files()
        .run();
    approve(&t, "alice");
    approve(&t, "bob");
    t
}

const POLICY: [&str; 4] = ["--require-approvals", "2", "--allowed-signers", "allowed_signers"];

#[test]
fn a_resumed_plan_is_approved_again_before_it_goes_on() {
    let t = approved_changing_plan();
    t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--secrets-from", "secrets.json"])
        .args(POLICY)
        .code(1)
        .any_stderr()
        .any_files()
        .run();
    // bob's approval withdrawn: the run does not go on.
    let approvals = t.path().join("change.plan.json.approvals");
    let bob = std::fs::read_dir(&approvals)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("bob"))
        .unwrap();
    let kept = std::fs::read(&bob).unwrap();
    std::fs::remove_file(&bob).unwrap();
    std::fs::write(t.path().join("go"), "").unwrap();
    t_then(&t)
        .args(["resume", "changing.yaml", "--secrets-from", "secrets.json"])
        .args(POLICY)
        .code(3)
        .stderr_contains(["has 1 of the 2 approvals"])
        .run();
    std::fs::write(&bob, kept).unwrap();
    t_then(&t)
        .args(["resume", "changing.yaml", "--secrets-from", "secrets.json"])
        .args(POLICY)
        .any_stderr()
        .any_files()
        .run();
    let out = t_then(&t).args(["status", "--format", "json"]).any_stdout().run();
    assert!(out.stdout.contains("bob@example.com"), "{}", out.stdout);
}

/// Every member of a bundle.
fn members(zip: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (entry.name().unwrap().to_string(), bytes)
        })
        .collect()
}

fn write_bundle(zip: &Path, members: &[(String, Vec<u8>)]) {
    let mut out = zip::ZipWriter::new(std::fs::File::create(zip).unwrap());
    for (name, bytes) in members {
        out.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap();
}

fn assert_no_secret(zip: &Path) {
    for (name, bytes) in members(zip) {
        assert!(!String::from_utf8_lossy(&bytes).contains(SECRET), "the secret is in {name}");
    }
}

#[test]
fn evidence_of_an_approved_run_verifies_and_any_change_is_caught() {
    let t = approved_changing_plan();
    std::fs::write(t.path().join("go"), "").unwrap();
    t_then(&t)
        .args(["run", "--plan", "change.plan.json", "--secrets-from", "secrets.json"])
        .args(POLICY)
        .any_stderr()
        .any_files()
        .run();
    let out = t_then(&t).args(["evidence", "--out", "ev.zip", "--sign", "carol"]).any_stderr().any_files().run();
    assert!(out.stderr.contains("manifest signed with SHA256:"), "{}", out.stderr);
    let zip = t.path().join("ev.zip");
    assert_no_secret(&zip);
    let names: Vec<String> = members(&zip).into_iter().map(|(n, _)| n).collect();
    for want in [
        "manifest.json",
        "manifest.json.sig",
        "plan/plan.json",
        "plan/plan.md",
        "plan/plan.html",
        "journal.jsonl",
        "record/run.md",
        "record/run.html",
        "record/run.json",
        "junit.xml",
        "runbook/changing.yaml",
    ] {
        assert!(names.contains(&want.to_string()), "{want} missing from {names:?}");
    }
    assert_eq!(names.iter().filter(|n| n.starts_with("plan/approvals/") && n.ends_with(".sig")).count(), 2);
    let out = t_then(&t).args(["verify", "ev.zip"]).args(POLICY).any_stdout().run();
    assert!(out.stdout.starts_with("VERIFIED: ev.zip"), "{}", out.stdout);
    assert!(out.stdout.contains("2 valid: alice@example.com, bob@example.com"), "{}", out.stdout);
    assert!(out.stdout.contains("signed by carol@example.com"), "{}", out.stdout);
    let out = t_then(&t).args(["verify", "ev.zip", "--format", "json"]).args(POLICY).any_stdout().run();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    // One changed byte in any member is caught and named.
    let original = members(&zip);
    for (i, (name, bytes)) in original.iter().enumerate() {
        let mut changed = original.clone();
        let mut bytes = bytes.clone();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        changed[i] = (name.clone(), bytes);
        let bad = t.path().join("bad.zip");
        write_bundle(&bad, &changed);
        let out =
            t_then(&t).args(["verify", "bad.zip"]).args(POLICY).code_any().any_stdout().any_stderr().any_files().run();
        assert!(out.code == 1 || (out.code == 2 && name == "manifest.json"), "{name}: {}\n{}", out.code, out.stdout);
        if name != "manifest.json" && name != "manifest.json.sig" {
            assert!(out.stdout.contains(&format!("{name} changed")), "{name}:\n{}", out.stdout);
        }
    }
    // A swapped plan, with the manifest made to match: the journal's digest still names it.
    let mut swapped = original.clone();
    let other = format!("{}\n", String::from_utf8(fixture("change.plan.json")).unwrap().trim_end());
    let manifest_at = swapped.iter().position(|(n, _)| n == "manifest.json").unwrap();
    let plan_at = swapped.iter().position(|(n, _)| n == "plan/plan.json").unwrap();
    let old_digest = sha256_hex(&swapped[plan_at].1);
    swapped[plan_at].1 = other.clone().into_bytes();
    let manifest = String::from_utf8(swapped[manifest_at].1.clone()).unwrap();
    let manifest = manifest
        .replace(&old_digest, &sha256_hex(other.as_bytes()))
        .replace(&format!("\"size\": {}", original[plan_at].1.len()), &format!("\"size\": {}", other.len()));
    swapped[manifest_at].1 = manifest.into_bytes();
    swapped.retain(|(n, _)| n != "manifest.json.sig");
    write_bundle(&t.path().join("swapped.zip"), &swapped);
    let out = t_then(&t).args(["verify", "swapped.zip"]).args(POLICY).code(1).any_stdout().any_files().run();
    assert!(
        out.stdout.contains("fail  plan") && out.stdout.contains("is not the one the run recorded"),
        "{}",
        out.stdout
    );
    // An approval dropped (member and manifest line): two are required, and the journal says
    // bob approved.
    let mut dropped = original.clone();
    let bob = dropped.iter().position(|(n, _)| n.starts_with("plan/approvals/bob")).unwrap();
    let bob_name = dropped.remove(bob).0;
    let manifest: serde_json::Value = serde_json::from_slice(&dropped[manifest_at].1).unwrap();
    let mut manifest = manifest;
    manifest["members"].as_array_mut().unwrap().retain(|m| m["path"] != bob_name.as_str());
    dropped[manifest_at].1 = serde_json::to_vec_pretty(&manifest).unwrap();
    dropped.retain(|(n, _)| n != "manifest.json.sig");
    write_bundle(&t.path().join("dropped.zip"), &dropped);
    let out = t_then(&t).args(["verify", "dropped.zip"]).args(POLICY).code(1).any_stdout().any_files().run();
    assert!(out.stdout.contains("fail  approvals") && out.stdout.contains("bob@example.com"), "{}", out.stdout);
    // Not a bundle at all.
    std::fs::write(t.path().join("not.zip"), "text").unwrap();
    t_then(&t)
        .args(["verify", "not.zip"])
        .code(2)
        .stderr_contains(["not.zip cannot be verified: not a zip file"])
        .any_files()
        .run();
}

#[test]
fn evidence_of_failed_resumed_and_rolled_back_runs_lists_every_deviation() {
    let t = change().file("changing.yaml", CHANGING);
    t_then(&t)
        .args(["run", "changing.yaml", "--yes", "--secrets-from", "secrets.json"])
        .code(1)
        .any_stderr()
        .any_files()
        .run();
    t_then(&t).args(["evidence", "--out", "failed.zip"]).any_stderr().any_files().run();
    let out = t_then(&t).args(["verify", "failed.zip"]).any_stdout().any_files().run();
    assert!(out.stdout.contains("(run") && out.stdout.contains("failed)"), "{}", out.stdout);
    assert!(out.stdout.contains("the run was not of a reviewed plan"), "{}", out.stdout);
    assert!(out.stdout.contains("not run: done"), "{}", out.stdout);
    // Without a plan, required approvals cannot be there.
    t_then(&t).args(["verify", "failed.zip"]).args(POLICY).code(1).any_stdout().any_files().run();
    std::fs::write(t.path().join("go"), "").unwrap();
    t_then(&t).args(["resume", "changing.yaml", "--secrets-from", "secrets.json"]).any_stderr().any_files().run();
    t_then(&t)
        .args(["rollback", "changing.yaml", "--yes", "--secrets-from", "secrets.json"])
        .any_stderr()
        .any_files()
        .run();
    t_then(&t).args(["evidence", "--out", "rolled.zip"]).any_stderr().any_files().run();
    assert_no_secret(&t.path().join("rolled.zip"));
    assert_no_secret(&t.path().join("failed.zip"));
    let out = t_then(&t).args(["verify", "rolled.zip", "--format", "markdown"]).any_stdout().any_files().run();
    for want in [
        "# Verified: evidence of run",
        "rolled back",
        "- resumed ",
        "- rollback started",
        "- step write: undone",
        "- rollback complete",
    ] {
        assert!(out.stdout.contains(want), "{want}:\n{}", out.stdout);
    }
    let names: Vec<String> = members(&t.path().join("rolled.zip")).into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.starts_with("plan/")), "{names:?}");
}

#[test]
fn an_encrypted_key_without_a_terminal_says_what_to_do() {
    let t = change();
    t_then(&t)
        .args(["approve", "change.plan.json", "--key", "dana"])
        .env("SSH_AUTH_SOCK", "")
        .code(2)
        .stderr_contains(["the key dana is encrypted, and no terminal can ask for its passphrase", "ssh-add"])
        .run();
    t_then(&t)
        .args(["approve", "change.plan.json", "--key", "rb.yaml"])
        .code(2)
        .stderr_contains(["rb.yaml is not an OpenSSH private key"])
        .run();
}

/// The SSH agent signs for `approve` (an encrypted key needs no passphrase then).
#[cfg(unix)]
#[test]
fn approve_signs_through_the_ssh_agent() {
    let Some(keygen) = ssh_keygen() else { return };
    let t = change();
    let socket = t.path().join("agent.sock");
    let mut agent =
        Command::new("ssh-agent").arg("-D").arg("-a").arg(&socket).stdout(std::process::Stdio::null()).spawn().unwrap();
    let added = loop {
        if socket.exists() {
            // dana's key is encrypted: ssh-add asks for its passphrase through SSH_ASKPASS.
            let askpass = t.path().join("askpass.sh");
            std::fs::write(&askpass, "#!/bin/sh\necho 'correct horse'\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
            let key = private_key(t.path(), "dana");
            break Command::new("ssh-add")
                .arg(&key)
                .env("SSH_AUTH_SOCK", &socket)
                .env("SSH_ASKPASS", &askpass)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env("DISPLAY", ":0")
                .output()
                .unwrap();
        }
        if let Some(status) = agent.try_wait().unwrap() {
            panic!("ssh-agent exited: {status}");
        }
        std::thread::yield_now();
    };
    assert!(added.status.success(), "{added:?}");
    let out = t_then(&t)
        .args(["approve", "change.plan.json", "--key", "dana"])
        .env("SSH_AUTH_SOCK", socket.to_str().unwrap())
        .any_stderr()
        .any_files()
        .run();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(out.stderr.contains("approved change.plan.json with"), "{}", out.stderr);
    let sig = std::fs::read_dir(t.path().join("change.plan.json.approvals")).unwrap().next().unwrap().unwrap().path();
    let verified = Command::new(keygen)
        .current_dir(t.path())
        .args(["-Y", "verify", "-f", "allowed_signers", "-I", "dana@example.com", "-n", "runbook-plan", "-s"])
        .arg(&sig)
        .stdin(std::fs::File::open(t.path().join("change.plan.json")).unwrap())
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
}
