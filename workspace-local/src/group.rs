//! A process group this crate started, and how to signal it without hitting a stranger.
//!
//! Every command and background process runs as the leader of its own process group, so one
//! `killpg` reaches the shell and everything it started (`cmd &`, pipelines, subshells), unless a
//! descendant deliberately left the group with `setsid`/`setpgid`.
//!
//! The one hazard is number reuse. While any member of our group lives, Linux keeps the group id
//! reserved, so it cannot be handed to a new process. Once the group is empty *and* the leader has
//! been reaped, the number is free again, and a later `killpg` could hit an unrelated group that
//! happens to get the same number. So after the leader is reaped, a group is only signalled while
//! no process has the leader's pid: if one does, the number has been reused and our group is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The process group led by a process this crate spawned.
#[derive(Debug)]
pub struct ProcessGroup {
    pgid: Pid,
    leader_reaped: AtomicBool,
}

impl ProcessGroup {
    /// The group whose leader has pid `leader_pid` (spawned with `process_group(0)`).
    pub(crate) fn new(leader_pid: u32) -> Self {
        ProcessGroup {
            pgid: Pid::from_raw(leader_pid as i32),
            leader_reaped: AtomicBool::new(false),
        }
    }

    /// The process group id (the leader's pid).
    pub fn id(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// Record that the leader has been waited for; from now on the number-reuse check applies.
    pub(crate) fn mark_leader_reaped(&self) {
        self.leader_reaped.store(true, Ordering::Release);
    }

    /// Whether the number still names our group rather than a reused one.
    fn is_ours(&self) -> bool {
        if !self.leader_reaped.load(Ordering::Acquire) {
            return true;
        }
        // Our leader is gone, so a live process with its pid is someone else's.
        matches!(kill(self.pgid, None), Err(Errno::ESRCH))
    }

    /// Whether any member of the group is left (zombies awaiting their reaper included).
    pub fn is_alive(&self) -> bool {
        self.is_ours() && killpg(self.pgid, None).is_ok()
    }

    /// Send `signal` to every member. Returns whether anything was signalled; a group that is gone
    /// (or whose number was reused) is not an error.
    pub fn signal(&self, signal: Signal) -> bool {
        if !self.is_ours() {
            return false;
        }
        match killpg(self.pgid, signal) {
            Ok(()) => true,
            Err(Errno::ESRCH) => false,
            Err(e) => {
                tracing::warn!(pgid = self.pgid.as_raw(), %signal, error = %e, "killpg failed");
                false
            }
        }
    }

    /// SIGKILL every member.
    pub fn kill(&self) -> bool {
        self.signal(Signal::SIGKILL)
    }
}

/// Kills the group with SIGKILL when dropped, unless disarmed: dropping a command's future must
/// not leave its tree running (tokio's `kill_on_drop` reaches only the direct child).
#[derive(Debug)]
pub(crate) struct KillOnDrop {
    group: Arc<ProcessGroup>,
    armed: bool,
}

impl KillOnDrop {
    pub(crate) fn new(group: Arc<ProcessGroup>) -> Self {
        KillOnDrop { group, armed: true }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.group.kill();
        }
    }
}
