//! The processes below a session command or an interpreter worker, found through `/proc`, so
//! that deleting a session also stops what left the command's process group (`setsid`,
//! `setpgid`), as the daemon's session delete does: it signals the group, then walks the process
//! tree for descendants that escaped it (`apps/daemon/pkg/session/delete.go`, v0.190.0).

use std::collections::HashMap;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use workspace_local::background::BackgroundProcess;

/// Every live descendant of `root` (children, their children, …), parents first.
pub(crate) fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            // A pid can only be listed once per scan, but guard against a cycle of reused ids.
            if child != root && !found.contains(&child) {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// The parent of `pid` from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    stat_field(pid, 1)
}

/// The process group of `pid` from `/proc/<pid>/stat`.
pub(crate) fn group_of(pid: u32) -> Option<u32> {
    stat_field(pid, 2)
}

/// Field `index` after the state in `/proc/<pid>/stat` (0 = the state), which follows the
/// parenthesised command name that may itself hold spaces and parentheses.
fn stat_field(pid: u32, index: usize) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(index)?.parse().ok()
}

/// How long [`kill_with_escapees`] gives its `first` process to end before the rest.
const FIRST_GRACE: Duration = Duration::from_millis(500);

/// Kills `process`'s group and, as [`descendants`] finds them before the group goes, every
/// process below it that left the group. `first`, a member whose parent in the group reaps it,
/// gets SIGTERM and a moment to end before the others: killed together with its parent, it
/// would be left to init, which may take its time reaping, and the group would look alive
/// until then.
pub(crate) async fn kill_with_escapees(process: &BackgroundProcess, first: Option<u32>) {
    let escaped = process.pid().map(descendants).unwrap_or_default();
    if let Some(first) = first {
        signal_all(&[first], Signal::SIGTERM);
        let _ = process.wait(Some(FIRST_GRACE)).await;
    }
    signal_all(&escaped, Signal::SIGTERM);
    process.kill().await;
    signal_all(&escaped, Signal::SIGKILL);
}

/// Send `signal` to each of `pids` (gone ones are skipped).
pub(crate) fn signal_all(pids: &[u32], signal: Signal) {
    for &pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn finds_children_that_left_the_group() {
        // A shell whose child starts its own session: not in the shell's group, still below it.
        let mut shell = Command::new("sh")
            .args(["-c", "setsid sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(shell.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let escaped: u32 = line.trim().parse().unwrap();
        let below = descendants(shell.id());
        assert!(below.contains(&escaped), "{below:?} lacks {escaped}");
        signal_all(&below, Signal::SIGKILL);
        shell.wait().unwrap();
    }

    #[test]
    fn reads_the_group_and_parent_of_a_process() {
        let me = std::process::id();
        assert_eq!(group_of(me), Some(nix::unistd::getpgrp().as_raw() as u32));
        assert_eq!(parent_of(me), Some(nix::unistd::getppid().as_raw() as u32));
        assert_eq!(group_of(u32::MAX), None);
    }
}
