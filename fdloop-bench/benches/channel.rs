//! `cargo bench -p fdloop-bench --bench channel`: the report's channel group alone,
//! with the report's flags except `--only`.
fn main() -> std::process::ExitCode {
    fdloop_bench::cli::main_with(Some("channel"))
}
