//! Start-up tracing for benchmarks: with `ZOOKEEPER_TRACE=1`, each step of
//! a container's life prints `zookeeper: trace <pid> <µs> <step>` on stderr,
//! the time on the monotonic clock, so the parent's and the child's lines
//! interleave in order. Off, it costs one relaxed load per step.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Reads `ZOOKEEPER_TRACE` once, at start.
pub fn init() {
    ENABLED.store(std::env::var_os("ZOOKEEPER_TRACE").is_some_and(|v| v == "1"), Ordering::Relaxed);
}

pub fn mark(step: &str) {
    if ENABLED.load(Ordering::Relaxed) {
        let Ok(now) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else { return };
        let micros = now.tv_sec() * 1_000_000 + now.tv_nsec() / 1_000;
        // One write(2): the supervisor and the container's first process
        // trace to the same stderr, and their lines must not interleave.
        let line = format!("zookeeper: trace {} {micros} {step}\n", std::process::id());
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
    }
}
