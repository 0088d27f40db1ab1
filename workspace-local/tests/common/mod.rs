//! Helpers shared by the integration tests: checking that processes are really gone.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

/// Whether `pid` names a live process. A zombie (dead, waiting for its parent or init to reap
/// it) counts as dead: it runs nothing and holds nothing but its process-table slot.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// Wait up to `within` for `pid` to be gone; true if it is.
pub async fn wait_dead(pid: i32, within: Duration) -> bool {
    let end = Instant::now() + within;
    loop {
        if !pid_alive(pid) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait up to 10 s for a file holding a pid written by a shell (`echo $! > file`).
pub async fn read_pid(path: &Path) -> i32 {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
            && let Ok(pid) = s.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < end, "no pid written to {}", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kill a process we left running on purpose, so a failing test does not leak it.
pub fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}
