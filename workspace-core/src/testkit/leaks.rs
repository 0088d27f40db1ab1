//! Finding processes a check left behind, from inside the sandbox (any provider) or on the host
//! (providers that run there).
//!
//! Every long-running command of the suite is a `sleep` with a unique fractional duration, e.g.
//! `sleep 3141.271828`. GNU and BusyBox `sleep` accept it, it is harmless if it does leak, and it
//! appears verbatim in `/proc/<pid>/cmdline` of the `sleep` and of the shell that started it.

use std::time::{Duration, Instant};

use super::harness::record_marker;
use super::probe::{exec_with, opts};
use super::random::unique_suffix;
use crate::sandbox::WorkspaceSandbox;

/// The whole-second part shared by every suite marker, so that `sleep 3141.` finds them all.
pub(crate) const MARKER_PREFIX: &str = "sleep 3141.";

/// How long a killed process tree may take to disappear. Group kills are asynchronous, and a
/// remote provider adds a round trip.
pub(crate) const LEAK_GRACE: Duration = Duration::from_secs(5);

/// The scan. The marker arrives in an environment variable so that it never appears in the
/// command line of the scanning shell, which would otherwise find itself.
const SCAN: &str = r#"for p in /proc/[0-9]*; do
  tr '\0' ' ' 2>/dev/null < "$p/cmdline" && echo " [pid ${p#/proc/}]"
done | while IFS= read -r line; do
  case "$line" in *"$WS_CONFORMANCE_MARKER"*) printf '%s\n' "$line" ;; esac
done"#;

/// A fresh marker: a complete command (`sleep 3141.NNNNNN`) that sleeps for almost an hour and
/// can be told apart from every other process. Use it verbatim in command lines.
pub fn unique_marker() -> String {
    let marker = format!("{MARKER_PREFIX}{}", unique_suffix());
    record_marker(&marker);
    marker
}

/// The command lines (NULs shown as spaces, followed by `[pid N]`) of every process in the
/// sandbox whose command line contains `marker`. Scans `/proc` with `sh`, `tr` and `case`.
pub async fn processes_matching(sandbox: &dyn WorkspaceSandbox, marker: &str) -> Vec<String> {
    let r = exec_with(
        sandbox,
        SCAN,
        &[],
        opts().env("WS_CONFORMANCE_MARKER", marker),
    )
    .await;
    assert!(
        r.success,
        "the /proc scan for {marker:?} failed with exit {}: {}",
        r.exit_code, r.stderr
    );
    r.stdout.lines().map(str::to_string).collect()
}

/// Poll until a process matching `marker` runs in the sandbox; false if none appeared within
/// `within`. Checks use it as a positive control, proving the scan can see what it looks for.
pub async fn wait_for_process_matching(
    sandbox: &dyn WorkspaceSandbox,
    marker: &str,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !processes_matching(sandbox, marker).await.is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fail unless, within a few seconds, no process in the sandbox has `marker` in its command
/// line. Polls, because killing a process group is asynchronous.
pub async fn assert_no_process_matching(sandbox: &dyn WorkspaceSandbox, marker: &str) {
    let deadline = Instant::now() + LEAK_GRACE;
    loop {
        let found = processes_matching(sandbox, marker).await;
        if found.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{} process(es) matching {marker:?} still run {LEAK_GRACE:?} after they should \
                 have been killed:\n{}",
                found.len(),
                found.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Processes on *this* machine whose command line contains any of `markers`, as
/// `"<pid>: <cmdline>"`. For providers that run commands on the host (the local provider), to
/// check from outside that nothing survived. Reads `/proc`; where there is none it finds nothing.
pub fn host_processes_matching(markers: &[String]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // The process may exit between listing and reading: skip it.
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if markers.iter().any(|m| cmdline.contains(m.as_str())) {
            found.push(format!("{pid}: {}", cmdline.trim_end()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    /// `sh -c script` in its own process group, so the test can kill everything it started.
    fn spawn_group(script: &str) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .process_group(0)
            .spawn()
            .expect("sh runs")
    }

    fn kill_group(mut child: Child) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
    }

    fn scan_with_sh(marker: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(SCAN)
            .env("WS_CONFORMANCE_MARKER", marker)
            .output()
            .expect("sh runs");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn markers_are_unique_commands() {
        let a = unique_marker();
        let b = unique_marker();
        assert_ne!(a, b);
        assert!(a.starts_with(MARKER_PREFIX) && a.len() == MARKER_PREFIX.len() + 6);
    }

    #[test]
    fn host_scan_finds_a_marked_process_and_not_itself() {
        let marker = unique_marker();
        let child = spawn_group(&format!("{marker}; true"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = Vec::new();
        while found.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            found = host_processes_matching(std::slice::from_ref(&marker));
        }
        kill_group(child);
        assert!(!found.is_empty(), "the host scan should see {marker:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut later = host_processes_matching(std::slice::from_ref(&marker));
        while !later.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            later = host_processes_matching(std::slice::from_ref(&marker));
        }
        assert!(later.is_empty(), "killed, yet found: {later:?}");
    }

    #[test]
    fn scan_script_sees_marked_processes_but_not_itself() {
        // With nothing marked running the scan must find nothing, even though the marker is in
        // its environment.
        let marker = unique_marker();
        assert_eq!(scan_with_sh(&marker), "");
        let child = spawn_group(&format!("{marker} & {marker}; true"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut text = String::new();
        while text.lines().count() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            text = scan_with_sh(&marker);
        }
        kill_group(child);
        // The shell and both sleeps.
        assert_eq!(text.lines().count(), 3, "scan output: {text}");
        assert!(text.lines().all(|l| l.contains("[pid ")), "{text}");
    }
}
