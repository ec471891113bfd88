//! `cargo bench -p fdloop-bench --bench timers`: the report's timers group alone,
//! with the report's flags except `--only`.
fn main() -> std::process::ExitCode {
    fdloop_bench::cli::main_with(Some("timers"))
}
