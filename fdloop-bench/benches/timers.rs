//! `cargo bench -p fdloop-bench --bench timers`: the report's timers group alone
//! (see `groups/timers.rs` and `examples/report.rs`); takes the report's
//! flags except `--only`.

#[path = "../groups/mod.rs"]
mod groups;

fn main() -> std::process::ExitCode {
    groups::main_with("timers", Some("timers"))
}
