//! `cargo bench -p fdloop-bench --bench channel`: the report's channel group alone
//! (see `groups/channel.rs` and `examples/report.rs`); takes the report's
//! flags except `--only`.

#[path = "../groups/mod.rs"]
mod groups;

fn main() -> std::process::ExitCode {
    groups::main_with("channel", Some("channel"))
}
