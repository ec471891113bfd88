//! `cargo bench -p fdloop-bench --bench wake`: the report's wake group alone,
//! with the report's flags except `--only`.
fn main() -> std::process::ExitCode {
    fdloop_bench::cli::main_with(Some("wake"))
}
