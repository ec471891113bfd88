//! `cargo run --release -p fdloop-bench --bin report [-- FLAGS]`: the
//! head-to-head report (`--help` lists the flags; see `fdloop_bench::cli`).

fn main() -> std::process::ExitCode {
    fdloop_bench::cli::main_with(None)
}
