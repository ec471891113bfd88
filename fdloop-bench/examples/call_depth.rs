//! What a call frame between a busy loop and its `epoll_wait` costs: the
//! same zero-timeout `epoll_wait` on one always-ready eventfd, made from
//! the loop's own function and from 1 to 4 function calls deeper, the
//! variants taking turns block by block in one process. Prints each
//! variant's median ns per turn and its ratio to the shallowest.
//!
//! ```text
//! cargo build --release -p fdloop-bench --example call_depth
//! target/release/examples/call_depth 300    # blocks of 20 000 turns each
//! ```
//!
//! On the project's test machine (AMD EPYC guest, kernel with the SRSO
//! "safe RET" mitigation) the system call leaves only the last few return
//! predictions standing, so each frame beyond them costs a mispredicted
//! return on the way back, every turn (BENCHMARKS.md, "Call depth at the
//! system call"). This is why fdloop issues its `epoll_pwait` inline.

use std::hint::black_box;
use std::io;
use std::time::Instant;

type Buf = [libc::epoll_event];

/// `epoll_wait(ep, buf, 0)`, one libc call.
#[inline(always)]
fn wait(ep: i32, buf: &mut Buf) -> i32 {
    // SAFETY: `buf` has room for `buf.len()` events; the kernel writes at
    // most that many.
    unsafe { libc::epoll_wait(ep, buf.as_mut_ptr(), buf.len() as i32, 0) }
}

#[inline(never)]
fn deeper1(ep: i32, buf: &mut Buf) -> i32 {
    black_box(wait(ep, buf))
}

#[inline(never)]
fn deeper2(ep: i32, buf: &mut Buf) -> i32 {
    black_box(deeper1(ep, buf))
}

#[inline(never)]
fn deeper3(ep: i32, buf: &mut Buf) -> i32 {
    black_box(deeper2(ep, buf))
}

#[inline(never)]
fn deeper4(ep: i32, buf: &mut Buf) -> i32 {
    black_box(deeper3(ep, buf))
}

/// One turn with `depth` extra frames: wait, then "dispatch" (sum the data
/// words).
#[inline(never)]
fn turn(depth: usize, ep: i32, buf: &mut Buf, sum: &mut u64) -> io::Result<()> {
    let n = match depth {
        0 => wait(ep, buf),
        1 => deeper1(ep, buf),
        2 => deeper2(ep, buf),
        3 => deeper3(ep, buf),
        _ => deeper4(ep, buf),
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    for e in buf.iter().take(n as usize) {
        *sum = sum.wrapping_add(e.u64);
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let blocks: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    // SAFETY: plain system calls; the descriptors are closed at exit.
    let (ep, efd) = unsafe { (libc::epoll_create1(0), libc::eventfd(1, 0)) };
    if ep < 0 || efd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 1,
    };
    // SAFETY: `ev` lives across the call.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, efd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [libc::epoll_event { events: 0, u64: 0 }; 8];
    let mut sum = 0u64;
    const TURNS: u32 = 20_000;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for b in 0..blocks + 5 {
        for (depth, t) in times.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..TURNS {
                turn(depth, ep, &mut buf, &mut sum)?;
            }
            if b >= 5 {
                t.push(start.elapsed().as_nanos() as f64 / f64::from(TURNS));
            }
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t.get(t.len() / 2).copied().unwrap_or(0.0)
        })
        .collect();
    for (depth, m) in medians.iter().enumerate() {
        println!(
            "{depth} extra frame(s): median {m:.1} ns per turn, × the shallowest {:.3}",
            m / medians[0].max(f64::MIN_POSITIVE)
        );
    }
    black_box(sum);
    Ok(())
}
