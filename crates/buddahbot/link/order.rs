//! Build-script module (both packages' `build.rs` include it): in release builds, lay out the
//! machine code of the functions a running server executes (start, a chat turn, the common
//! reads) together, first in `.text`, in the order `link/hot.order` lists them (written by
//! `scripts/link-order`).
//!
//! Why: the kernel maps an executable's code into a process a page-cache folio (64–128 KiB
//! here) at a time, so the few thousand functions a server runs, scattered by default over
//! 11 MB of code, made 7–8 MB of it resident; packed together they make 2.5 MB (idle RSS of
//! `dev` after a turn: 14.5 → 9 MiB). The hot path also shares fewer cache lines and TLB
//! entries with cold code.
//!
//! Only a linker that takes `--symbol-ordering-file` (LLD: Rust's default linker for
//! x86_64-unknown-linux-gnu since 1.90) is given it: the script first links an empty program
//! with the same flags, so another linker (or none of this) simply leaves the default layout.
//! A function the list names that the build no longer has is skipped; one it does not name
//! goes after the listed ones. `BUDDAHBOT_LINK_ORDER=0` turns it off.

use std::{
    env,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Emits the link arguments for `order_file` when the build is a release build and the
/// linker takes them.
pub fn emit(order_file: &Path) {
    directive(&format!("rerun-if-changed={}", order_file.display()));
    directive("rerun-if-env-changed=BUDDAHBOT_LINK_ORDER");
    if env::var("PROFILE").as_deref() != Ok("release")
        || env::var("BUDDAHBOT_LINK_ORDER").as_deref() == Ok("0")
        || !order_file.is_file()
    {
        return;
    }
    let args = [
        format!("-Wl,--symbol-ordering-file={}", order_file.display()),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
    ];
    if links_with(&args) {
        for arg in &args {
            directive(&format!("rustc-link-arg={arg}"));
        }
    }
}

/// Whether an empty program links with `args` added, built as this package's targets are
/// (same compiler, target, flags and configured linker).
fn links_with(args: &[String]) -> bool {
    let Some(out_dir) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut command = Command::new(rustc);
    command
        .args([
            "--crate-type=bin",
            "--crate-name=link_order_probe",
            "--edition=2021",
        ])
        .arg("-o")
        .arg(out_dir.join("link-order-probe"));
    if let Ok(target) = env::var("TARGET") {
        command.arg("--target").arg(target);
    }
    if let Ok(flags) = env::var("CARGO_ENCODED_RUSTFLAGS") {
        command.args(flags.split('\x1f').filter(|flag| !flag.is_empty()));
    }
    if let Ok(linker) = env::var("RUSTC_LINKER") {
        command.arg(format!("-Clinker={linker}"));
    }
    for arg in args {
        command.arg(format!("-Clink-arg={arg}"));
    }
    command
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let Ok(mut child) = command.spawn() else {
        return false;
    };
    let written = child
        .stdin
        .take()
        .is_some_and(|mut stdin| stdin.write_all(b"fn main() {}\n").is_ok());
    child.wait().is_ok_and(|status| status.success()) && written
}

fn directive(line: &str) {
    // A failed write to cargo is the build's failure to report, not this script's.
    let _ = writeln!(std::io::stdout().lock(), "cargo:{line}");
}
