//! This process's CPU time and memory, as the kernel counts them.

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};

/// User plus system CPU time of this whole process (every thread) so far.
pub fn cpu_time() -> Duration {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let user = u.user_time();
            let sys = u.system_time();
            let micros = (user.tv_sec() + sys.tv_sec()) as i128 * 1_000_000
                + (user.tv_usec() + sys.tv_usec()) as i128;
            Duration::from_micros(micros.max(0) as u64)
        }
        // getrusage(RUSAGE_SELF) cannot fail on Linux; a zero makes a broken figure obvious.
        Err(_) => Duration::ZERO,
    }
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Resident memory now, in KiB (0 when `/proc` cannot tell).
pub fn rss_kib() -> u64 {
    status_kib("VmRSS").unwrap_or(0)
}

/// Peak resident memory of this process's life, in KiB (0 when `/proc` cannot tell).
pub fn hwm_kib() -> u64 {
    status_kib("VmHWM").unwrap_or(0)
}
