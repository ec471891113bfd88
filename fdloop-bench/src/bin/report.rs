//! `cargo run --release -p fdloop-bench --bin report [-- FLAGS]`: builds and
//! runs the head-to-head report (`examples/report.rs`), passing the flags
//! on (`--help` lists them).
//!
//! The report itself is an example because the Rust peers it measures
//! (mio, calloop, tokio, crossbeam-channel, flume) are dev-dependencies of
//! fdloop-bench — the project keeps peers out of every normal dependency
//! list — and a binary cannot see dev-dependencies. This launcher replaces
//! itself (`exec`) with `cargo run --release --example report`, with
//! feature `c-peers` when it was built with it, so exit status and signals
//! are the report's own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "run",
        "--release",
        "--manifest-path",
        manifest,
        "--example",
        "report",
    ]);
    if cfg!(feature = "c-peers") {
        cmd.args(["--features", "c-peers"]);
    }
    cmd.arg("--").args(std::env::args_os().skip(1));
    // Only returns on failure.
    let err = cmd.exec();
    eprintln!(
        "report: could not run {} (needed to build the report example): {err}",
        cargo.to_string_lossy()
    );
    ExitCode::FAILURE
}
