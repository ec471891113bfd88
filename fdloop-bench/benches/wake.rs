//! Criterion bench of fdloop's wake primitives; the same loops as the
//! `wake` binary (see `fdloop_bench`), timed by criterion instead.
//!
//! ```text
//! cargo bench -p fdloop-bench --bench wake -- --warm-up-time 1 --measurement-time 2
//! ```

use std::io;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fdloop_bench::{Burst, Local, Pin, RoundTrip, Sample};

/// Untimed round trips before each timed batch.
const ROUND_TRIP_WARMUP: u64 = 100;

/// Criterion's timing closures cannot return errors; a failed syscall ends
/// the bench with the contender and the error named.
fn elapsed_or_exit(what: impl std::fmt::Display, r: io::Result<Sample>) -> Duration {
    match r {
        Ok(s) => s.elapsed,
        Err(e) => {
            eprintln!("wake bench: {what}: {e}");
            std::process::exit(1);
        }
    }
}

fn notify_drain(c: &mut Criterion) {
    let mut g = c.benchmark_group("notify_drain");
    g.throughput(Throughput::Elements(1));
    for contender in Local::ALL {
        g.bench_function(BenchmarkId::from_parameter(contender.name()), |b| {
            b.iter_custom(|iters| elapsed_or_exit(contender, contender.run(iters)))
        });
    }
    g.finish();
}

fn burst(c: &mut Criterion) {
    let mut g = c.benchmark_group("notify100_drain1");
    // One criterion iteration is a round: PER_DRAIN notifies and a drain.
    g.throughput(Throughput::Elements(Burst::PER_DRAIN));
    for contender in Burst::ALL {
        g.bench_function(BenchmarkId::from_parameter(contender.name()), |b| {
            b.iter_custom(|rounds| elapsed_or_exit(contender, contender.run(rounds)))
        });
    }
    g.finish();
}

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip");
    g.throughput(Throughput::Elements(1));
    // Each round trip is tens of microseconds; fewer samples keep it short.
    g.sample_size(20);
    for contender in RoundTrip::ALL {
        g.bench_function(BenchmarkId::from_parameter(contender.name()), |b| {
            b.iter_custom(|iters| {
                elapsed_or_exit(contender, contender.run(iters, ROUND_TRIP_WARMUP, Pin::Off))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, notify_drain, burst, round_trip);
criterion_main!(benches);
