//! A simulated Apex One server, for the demo and the tests, on Linux and Windows alike.
//!
//! `simulated-server make ROOT [fresh|upgraded] [PASSWORD] [BUILD]` builds a server's folders
//! under ROOT, shaped like the real install folders, and prints the install folder:
//!
//! ```text
//! ROOT/Program Files (x86)/Trend Micro/Apex One     (layout "fresh")
//! ROOT/Program Files (x86)/Trend Micro/OfficeScan   (layout "upgraded": from Virus Buster Corp. 11 / XG)
//!   AuthCertBackup/OfficeScanAuth.dat               the certificate backup
//!   PCCSRV/Admin/Utility/CertificateManager/CertificateManager.exe
//! ROOT/C                                            where a backup is staged, as `C:\` on the server
//! ```
//!
//! The `CertificateManager.exe` placed there is this program again; called by that name it
//! behaves like the vendor's tool as DOMAIN.md describes it:
//!
//! ```text
//! CertificateManager.exe -ine <password> <full path of OfficeScanAuth.pfx>   import
//! CertificateManager.exe -b <password> <export path>                        legacy export
//! ```
//!
//! It checks its arguments, the full path and the password set at install (kept beside it in
//! `.password`, with the build in `.build`), prints the vendor's success line or an error, and
//! exits non-zero on failure. A successful import leaves the certificate in `.imported`. With
//! `SIMULATED_LOCALE=ja` it first prints a Japanese line in Shift_JIS (CP932), as on a Japanese
//! Windows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const TOOL: &str = "CertificateManager";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let me = std::env::current_exe().expect("the program knows where it is");
    let called_as_tool = me.file_stem().is_some_and(|s| s.to_string_lossy().eq_ignore_ascii_case(TOOL));
    if called_as_tool {
        return certificate_manager(&me, &args);
    }
    match args.first().map(String::as_str) {
        Some("make") if args.len() >= 2 => make(&me, &args[1..]),
        _ => {
            eprintln!("usage: simulated-server make ROOT [fresh|upgraded] [PASSWORD] [BUILD]");
            ExitCode::from(2)
        }
    }
}

fn make(me: &Path, args: &[String]) -> ExitCode {
    let root = PathBuf::from(&args[0]);
    let layout = args.get(1).map_or("fresh", String::as_str);
    let password = args.get(2).map_or("apex-demo-password", String::as_str);
    let build = args.get(3).map_or("8378", String::as_str);
    let name = match layout {
        "fresh" => "Apex One",
        "upgraded" => "OfficeScan",
        _ => {
            eprintln!("layout must be fresh or upgraded");
            return ExitCode::from(2);
        }
    };
    let install = root.join("Program Files (x86)").join("Trend Micro").join(name);
    let tool = install.join("PCCSRV").join("Admin").join("Utility").join(TOOL);
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(install.join("AuthCertBackup"))?;
        std::fs::create_dir_all(&tool)?;
        std::fs::create_dir_all(root.join("C"))?;
        std::fs::write(
            install.join("AuthCertBackup").join("OfficeScanAuth.dat"),
            format!("SIMULATED-APEX-ONE-AUTH-CERT {layout}\nissued-to: apex-one.example.invalid\n"),
        )?;
        std::fs::copy(me, tool.join(format!("{TOOL}.exe")))?;
        std::fs::write(tool.join(".password"), password)?;
        std::fs::write(tool.join(".build"), format!("{build}\n"))?;
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("cannot build the simulated server under {}: {e}", root.display());
        return ExitCode::from(1);
    }
    println!("{}", install.display());
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("Usage: CertificateManager.exe -ine <password> <pfx file (full path)>");
    eprintln!("       CertificateManager.exe -b <password> <export path>");
    ExitCode::from(2)
}

fn failed(code: u8, message: &str) -> ExitCode {
    eprintln!("Certificate Authentication Manager {message}");
    ExitCode::from(code)
}

/// The full path the vendor's tool insists on: `C:\...`, `C:/...`, `\\server\...` or `/...`.
fn is_full_path(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with('/')
        || p.starts_with(r"\\")
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'/' || b[2] == b'\\'))
}

fn japanese() {
    if std::env::var("SIMULATED_LOCALE").is_ok_and(|v| v == "ja") {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("証明書の処理を開始します\r\n");
        let _ = std::io::stdout().write_all(&bytes);
    }
}

fn certificate_manager(me: &Path, args: &[String]) -> ExitCode {
    let here = me.parent().expect("the tool is in a folder");
    let password = std::fs::read_to_string(here.join(".password")).unwrap_or_default();
    let build: u32 =
        std::fs::read_to_string(here.join(".build")).ok().and_then(|b| b.trim().parse().ok()).unwrap_or(8378);
    // CertificateManager/Utility/Admin/PCCSRV/<install>
    let install = here.ancestors().nth(4).expect("the tool sits four folders below the install folder");
    let [flag, given_password, file] = args else { return usage() };
    match flag.as_str() {
        "-ine" => {
            japanese();
            if !is_full_path(file) {
                return failed(3, "failed: the certificate file must be given as a full path.");
            }
            let pfx = Path::new(file);
            if !pfx.is_file() {
                return failed(4, "failed: the certificate file was not found.");
            }
            if !pfx.extension().is_some_and(|e| e.eq_ignore_ascii_case("pfx")) {
                return failed(5, "failed: the certificate file must be a .pfx file.");
            }
            if *given_password != password {
                return failed(6, "failed to import the certificate: the password is incorrect.");
            }
            let content = std::fs::read(pfx).unwrap_or_default();
            if !content.starts_with(b"SIMULATED-APEX-ONE-AUTH-CERT") {
                return failed(7, "failed: the file is not a server authentication certificate.");
            }
            if let Err(e) = std::fs::write(here.join(".imported"), content) {
                return failed(9, &format!("failed: {e}"));
            }
            println!("Certificate Authentication Manager has successfully imported the certificate.");
            ExitCode::SUCCESS
        }
        "-b" => {
            japanese();
            if build >= 8378 {
                return failed(
                    8,
                    ": the -b export is disabled from Apex One Patch 3 (build 8378) for security reasons.",
                );
            }
            if *given_password != password {
                return failed(6, "failed to export the certificate: the password is incorrect.");
            }
            let cert = install.join("AuthCertBackup").join("OfficeScanAuth.dat");
            if let Err(e) = std::fs::copy(cert, file) {
                return failed(9, &format!("failed to export the certificate: {e}"));
            }
            println!("Certificate Authentication Manager has successfully exported the certificate.");
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}
