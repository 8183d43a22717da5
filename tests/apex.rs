//! The shipped Apex One runbooks, end to end, on the simulated server of
//! `examples/simulated-server` (a stand-in CertificateManager.exe that checks its arguments and
//! the password the way the vendor's tool does), on Linux and Windows alike.

use std::path::Path;

use crate::support::{Test, crate_path, helper, tree};

const PASSWORD: &str = "Apex-Install-2019!";

fn book(name: &str) -> String {
    crate_path(&format!("runbooks/apex-one/{name}.yaml")).display().to_string()
}

/// Builds a simulated server under `root` in the test folder; returns its install folder.
fn server(t: &Test, root: &str, layout: &str, build: u32) -> String {
    let out = crate::support::output(std::process::Command::new(helper("simulated-server")).args([
        "make",
        t.path().join(root).to_str().unwrap(),
        layout,
        PASSWORD,
        &build.to_string(),
    ]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const CERT_FRESH: &str = "SIMULATED-APEX-ONE-AUTH-CERT fresh\nissued-to: apex-one.example.invalid\n";
const CERT_UPGRADED: &str = "SIMULATED-APEX-ONE-AUTH-CERT upgraded\nissued-to: apex-one.example.invalid\n";

fn sha256(s: &str) -> String {
    crate::support::sha256_hex(s.as_bytes())
}

fn backup(t: Test) -> Test {
    let fresh = t.path().join("old/Program Files (x86)/Trend Micro/Apex One").display().to_string();
    let upgraded = t.path().join("old/Program Files (x86)/Trend Micro/OfficeScan").display().to_string();
    t.args(["run", &book("backup-auth-cert")]).args([
        "--var",
        "backup_dir=backup",
        "--var",
        &format!("fresh_install_dir={fresh}"),
        "--var",
        &format!("upgraded_install_dir={upgraded}"),
    ])
}

#[test]
fn backup_detects_a_fresh_install() {
    let t = Test::new();
    server(&t, "old", "fresh", 8378);
    backup(t)
        .creates("backup/OfficeScanAuth.dat", CERT_FRESH)
        .creates("backup/OfficeScanAuth.dat.sha256", format!("{}  OfficeScanAuth.dat\n", sha256(CERT_FRESH)))
        .stderr_contains([
            "[2/6] check_source: Check that the certificate backup exists\n",
            "[4/6] copy_backup: Copy OfficeScanAuth.dat to the backup folder\n      done\n",
            &format!("Backed up [TMP]/old/Program Files (x86)/Trend Micro/Apex One/AuthCertBackup/OfficeScanAuth.dat to backup/OfficeScanAuth.dat (SHA-256 {})", sha256(CERT_FRESH)),
            "Run succeeded (3 done, 2 unchanged, 1 skipped).\n",
        ])
        .run();
}

#[test]
fn backup_detects_an_upgraded_install() {
    let t = Test::new();
    server(&t, "old", "upgraded", 8000);
    backup(t)
        .creates("backup/OfficeScanAuth.dat", CERT_UPGRADED)
        .creates("backup/OfficeScanAuth.dat.sha256", format!("{}  OfficeScanAuth.dat\n", sha256(CERT_UPGRADED)))
        .stderr_contains([
            "Trend Micro/OfficeScan/AuthCertBackup/OfficeScanAuth.dat to backup/OfficeScanAuth.dat",
            "Run succeeded",
        ])
        .run();
}

#[test]
fn backup_stops_clearly_when_no_install_folder_holds_the_file() {
    backup(Test::new().mkdir("old"))
        .code(1)
        .stderr_contains([
            "[1/6] no_install_found: Stop when no install folder holds the certificate backup\n      failed\n",
            "      No OfficeScanAuth.dat was found in [TMP]/old/Program Files (x86)/Trend Micro/Apex One/AuthCertBackup (fresh install)\n",
            "      Give the server's install folder with --var install_dir=...\n",
        ])
        .run();
}

fn restore(t: Test, install: &str) -> Test {
    let staging = t.path().join("new/C").display().to_string();
    t.args(["run", &book("restore-auth-cert")])
        .args(["--var", "backup_file=backup/OfficeScanAuth.dat", "--var", &format!("install_dir={install}")])
        .args(["--var", &format!("staging_dir={staging}")])
}

fn tool_dir(install: &str) -> String {
    format!("{install}/PCCSRV/Admin/Utility/CertificateManager")
}

#[test]
fn restore_imports_the_certificate() {
    let t = Test::new().file("backup/OfficeScanAuth.dat", CERT_FRESH);
    let install = server(&t, "new", "fresh", 8378);
    let out = restore(t, &install)
        .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
        .creates("new/C/OfficeScanAuth.pfx", CERT_FRESH)
        .ignore("new/Program Files (x86)")
        .stderr_contains([
            "[2/6] stage_backup: Copy the backup onto the server\n      done\n",
            "[3/6] rename_to_pfx: Rename OfficeScanAuth.dat to OfficeScanAuth.pfx\n      done\n",
            "[4/6] enter_tool_dir: Go to the CertificateManager folder\n      unchanged\n",
            "[5/6] import: Import the certificate\n      | Certificate Authentication Manager has successfully imported the certificate.\n      done\n",
            "[6/6] confirm_import: Check that the tool reports success\n      unchanged\n",
            "Run succeeded (3 done, 2 unchanged, 1 skipped).\n",
        ])
        .run();
    assert_eq!(std::fs::read_to_string(Path::new(&tool_dir(&install)).join(".imported")).unwrap(), CERT_FRESH);
    assert!(!out.stderr.contains(PASSWORD));
}

#[test]
fn restore_with_a_wrong_password_fails_at_the_import_and_resumes_after_the_fix() {
    let t = Test::new().file("backup/OfficeScanAuth.dat", CERT_FRESH);
    let install = server(&t, "new", "fresh", 8378);
    let first = restore(t, &install)
        .env("RUNBOOK_INPUT_PASSWORD", "wrong-password")
        .creates("new/C/OfficeScanAuth.pfx", CERT_FRESH)
        .ignore("new/Program Files (x86)")
        .code(1)
        .stderr_contains([
            "[5/6] import: Import the certificate\n",
            "      `CertificateManager.exe` exited with code 6\n",
            "the password is incorrect.",
            "Run failed (2 done, 1 unchanged, 1 skipped, 1 failed).",
        ])
        .run();
    assert!(!Path::new(&tool_dir(&install)).join(".imported").exists());
    first
        .then()
        .args(["resume", &book("restore-auth-cert")])
        .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
        .ignore("new/Program Files (x86)")
        .stderr_contains([
            "Resuming apex-one-restore-auth-cert",
            "[5/6] import: Import the certificate\n      | Certificate Authentication Manager has successfully imported the certificate.\n      done\n",
            "Run succeeded (1 done, 1 unchanged).\n",
        ])
        .run();
    assert_eq!(std::fs::read_to_string(Path::new(&tool_dir(&install)).join(".imported")).unwrap(), CERT_FRESH);
    // The password is in no output, no journal, no file the tool wrote.
    let out = first.then().args(["status", "--format", "json"]).any_stdout().run();
    for (path, bytes) in tree(out.path()) {
        if path.ends_with("/.password") {
            continue; // the simulated server's own record of its install password
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(PASSWORD) && !text.contains("wrong-password"), "{path}");
    }
    assert!(!out.stdout.contains(PASSWORD));
}

#[test]
fn a_plan_predicts_a_missing_backup_file_without_touching_anything() {
    let t = Test::new();
    let install = server(&t, "new", "fresh", 8378);
    let before = tree(t.path());
    let staging = t.path().join("new/C").display().to_string();
    let out = t
        .args(["plan", &book("restore-auth-cert"), "--var", "backup_file=backup/OfficeScanAuth.dat"])
        .args(["--var", &format!("install_dir={install}"), "--var", &format!("staging_dir={staging}")])
        .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
        .code(1)
        .any_stdout()
        .run();
    assert!(out.stdout.contains("2. stage_backup: Copy the backup onto the server\n   copy [TMP]/backup/OfficeScanAuth.dat → [TMP]/new/C/OfficeScanAuth.dat (overwrite)\n   => would fail: the source [TMP]/backup/OfficeScanAuth.dat does not exist\n"), "{}", out.stdout);
    assert!(out.stdout.contains("3. rename_to_pfx: Rename OfficeScanAuth.dat to OfficeScanAuth.pfx\n   rename [TMP]/new/C/OfficeScanAuth.dat → [TMP]/new/C/OfficeScanAuth.pfx (overwrite)\n   => would fail: [TMP]/new/C/OfficeScanAuth.dat does not exist\n"), "{}", out.stdout);
    assert!(out.stdout.contains("The run would stop at step 2 (stage_backup).\n"));
    assert!(
        out.stdout.contains("exec CertificateManager.exe -ine **** [TMP]/new/C/OfficeScanAuth.pfx"),
        "{}",
        out.stdout
    );
    assert_eq!(tree(out.path()), before);
}

#[test]
fn an_unknown_password_stops_with_the_vendors_advice() {
    let t = Test::new().file("backup/OfficeScanAuth.dat", CERT_FRESH);
    let install = server(&t, "new", "fresh", 8378);
    restore(t, &install)
        .args(["--var", "password_unknown=true"])
        .env("RUNBOOK_INPUT_PASSWORD", "")
        .code(1)
        .stderr_contains([
            "[1/6] password_is_unknown: Stop when the install password is unknown\n      failed\n",
            "the existing server authentication certificate cannot be reused",
            "Contact Trend Micro's support centre.",
        ])
        .run();
}

#[test]
fn the_legacy_export_refuses_on_build_8378_and_later() {
    let t = Test::new();
    let install = server(&t, "srv", "fresh", 8378);
    t.args([
        "run",
        &book("export-auth-cert-legacy"),
        "--var",
        &format!("install_dir={install}"),
        "--var",
        "build=8378",
    ])
    .args(["--var", "export_file=/nonexistent/export.pfx"])
    .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
    .code(1)
    .stderr_contains([
        "[1/5] refuse_new_builds: Refuse on build 8378 or later\n      failed\n",
        "Build 8378 is Apex One Patch 3 (build 8378) or later: the `CertificateManager.exe -b`",
        "export is disabled there for security reasons.",
    ])
    .run();
}

#[test]
fn the_legacy_export_works_before_build_8378() {
    let t = Test::new();
    let install = server(&t, "srv", "fresh", 8000);
    let export = t.path().join("export.pfx").display().to_string();
    t.args([
        "run",
        &book("export-auth-cert-legacy"),
        "--var",
        &format!("install_dir={install}"),
        "--var",
        "build=8000",
    ])
    .args(["--var", &format!("export_file={export}")])
    .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
    .creates("export.pfx", CERT_FRESH)
    .stderr_contains([
        "      | Certificate Authentication Manager has successfully exported the certificate.\n",
        "Run succeeded (1 done, 3 unchanged, 1 skipped).\n",
    ])
    .run();
}

#[test]
fn the_install_time_import_renames_and_guides_the_operator() {
    Test::new()
        .file("backup/OfficeScanAuth.dat", CERT_FRESH)
        .args(["run", &book("prepare-install-import"), "--var", "backup_file=backup/OfficeScanAuth.dat", "--yes"])
        .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
        .removes("backup/OfficeScanAuth.dat")
        .creates("backup/OfficeScanAuth.pfx", CERT_FRESH)
        .stderr_contains([
            "[2/4] rename_to_pfx: Rename OfficeScanAuth.dat to OfficeScanAuth.pfx\n      done\n",
            "      Manual step:\n",
            "1. Choose [Import existing certificate] (既存の証明書をインポートする).",
            "2. Give the certificate file: backup/OfficeScanAuth.pfx",
            "Run succeeded (2 done, 1 unchanged, 1 skipped).\n",
        ])
        .run();
}

#[test]
fn the_install_time_import_needs_a_confirmation() {
    Test::new()
        .file("backup/OfficeScanAuth.dat", CERT_FRESH)
        .args(["run", &book("prepare-install-import"), "--var", "backup_file=backup/OfficeScanAuth.dat"])
        .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
        .removes("backup/OfficeScanAuth.dat")
        .creates("backup/OfficeScanAuth.pfx", CERT_FRESH)
        .code(1)
        .stderr_contains(["this manual step needs an operator's confirmation, and there is no terminal to ask on"])
        .run();
}

#[test]
fn a_japanese_windows_site_decodes_the_tools_shift_jis_output() {
    let t = Test::new().file("backup/OfficeScanAuth.dat", CERT_FRESH);
    let install = server(&t, "new", "fresh", 8378);
    let site = crate_path("examples/sites/japanese-windows.yaml");
    assert!(std::fs::read_to_string(&site).unwrap().contains("tool_encoding: console"));
    // The site's own paths are overridden by the test's `--var`s; its `tool_encoding` stays.
    crate::support::japanese_console(restore(t, &install))
        .args(["--vars", site.to_str().unwrap()])
        .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
        .env("SIMULATED_LOCALE", "ja")
        .creates("new/C/OfficeScanAuth.pfx", CERT_FRESH)
        .ignore("new/Program Files (x86)")
        .stderr_contains(["      | 証明書の処理を開始します\n      | Certificate Authentication Manager has successfully imported the certificate.\n", "Run succeeded"])
        .run();
}

#[test]
fn the_site_files_fit_the_runbooks() {
    for site in ["fresh-install", "upgraded", "japanese-windows"] {
        let path = crate_path(&format!("examples/sites/{site}.yaml"));
        Test::new()
            .args(["show", &book("restore-auth-cert"), "--explain-inputs", "--vars", path.to_str().unwrap()])
            .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
            .stdout_contains([
                "Input values:\n",
                "  install_dir       C:/Program Files (x86)/Trend Micro/",
                "  password          ****  (environment RUNBOOK_INPUT_PASSWORD)\n",
            ])
            .run();
    }
}

#[test]
fn a_relative_staging_folder_is_refused_because_the_tool_needs_a_full_path() {
    Test::new()
        .args(["plan", &book("restore-auth-cert"), "--var", "backup_file=b.dat", "--var", "staging_dir=stage"])
        .env("RUNBOOK_INPUT_PASSWORD", PASSWORD)
        .code(2)
        .stderr_contains([
            "error: invalid value \"stage\" for input `staging_dir` (from --var): does not match the input's pattern\n",
            "hint: the value must match the pattern ([A-Za-z]:[/\\\\]|/).*",
        ])
        .run();
}
