//! `cargo bench -p fdloop-bench --bench dispatch`: the report's dispatch group alone,
//! with the report's flags except `--only`.
fn main() -> std::process::ExitCode {
    fdloop_bench::cli::main_with(Some("dispatch"))
}
