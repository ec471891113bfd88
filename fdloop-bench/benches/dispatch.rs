//! `cargo bench -p fdloop-bench --bench dispatch`: the report's dispatch group alone
//! (see `groups/dispatch.rs` and `examples/report.rs`); takes the report's
//! flags except `--only`.

#[path = "../groups/mod.rs"]
mod groups;

fn main() -> std::process::ExitCode {
    groups::main_with("dispatch", Some("dispatch"))
}
