//! Background processes against real processes.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{read_pid, wait_dead};
use workspace_core::{OutputOffsets, ProcessState, SandboxError};
use workspace_local::background::{BackgroundOptions, BackgroundProcess};
use workspace_local::runner::ProcessSpec;

fn sh(dir: &std::path::Path, line: &str) -> ProcessSpec {
    ProcessSpec::new("/bin/sh", dir)
        .arg("-c")
        .arg(line)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
}

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// Wait until stdout from `since` contains `needle`, following `changes()`.
async fn wait_for_stdout(p: &BackgroundProcess, since: u64, needle: &str) -> (String, u64) {
    let mut changes = p.changes();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let out = p.output_since(OutputOffsets {
            stdout: since,
            stderr: 0,
        });
        let text = out.stdout_text();
        if text.contains(needle) {
            return (text, out.next.stdout);
        }
        assert!(Instant::now() < end, "never saw {needle:?}, got {text:?}");
        let _ = tokio::time::timeout(Duration::from_millis(500), changes.changed()).await;
    }
}

#[tokio::test]
async fn output_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(
        sh(dir.path(), "echo hello; echo err >&2; exit 3"),
        false,
        1024,
    )
    .unwrap();
    assert!(p.pid().is_some());
    assert_eq!(p.wait(WAIT).await, Some(3));
    assert_eq!(p.exit_code(), Some(3));
    assert_eq!(p.state(), ProcessState::Exited(3));
    let out = p.output_since(OutputOffsets::default());
    assert_eq!(out.stdout_text(), "hello\n");
    assert_eq!(out.stderr_text(), "err\n");
    assert_eq!(
        out.next,
        OutputOffsets {
            stdout: 6,
            stderr: 4
        }
    );
    assert_eq!(out.missed, OutputOffsets::default());
    assert_eq!(out.state, ProcessState::Exited(3));
}

#[tokio::test]
async fn stdin_round_trip_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(sh(dir.path(), "cat"), true, 1024).unwrap();
    assert_eq!(p.state(), ProcessState::Running);
    p.write_stdin(b"one\n").await.unwrap();
    let (text, next) = wait_for_stdout(&p, 0, "one\n").await;
    assert_eq!(text, "one\n");
    assert_eq!(next, 4);
    p.write_stdin(b"two\n").await.unwrap();
    let (text, next) = wait_for_stdout(&p, next, "two\n").await;
    assert_eq!(text, "two\n", "only the output after the offset");
    assert_eq!(next, 8);
    p.close_stdin().await.unwrap();
    p.close_stdin().await.unwrap();
    assert_eq!(p.wait(WAIT).await, Some(0));
    let err = p.write_stdin(b"late").await.unwrap_err();
    assert!(matches!(err, SandboxError::Conflict { .. }), "{err:?}");
}

#[tokio::test]
async fn stdin_not_requested_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(sh(dir.path(), "cat; echo eof"), false, 1024).unwrap();
    let err = p.write_stdin(b"x").await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::InvalidArgument { field, .. } if field == "stdin"),
        "{err:?}"
    );
    // Stdin is /dev/null: cat sees end-of-file at once.
    assert_eq!(p.wait(WAIT).await, Some(0));
    assert_eq!(
        p.output_since(OutputOffsets::default()).stdout_text(),
        "eof\n"
    );
}

#[tokio::test]
async fn retention_keeps_the_newest_bytes_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(
        sh(dir.path(), "head -c 10000 /dev/zero; printf END"),
        false,
        100,
    )
    .unwrap();
    assert_eq!(p.wait(WAIT).await, Some(0));
    let out = p.output_since(OutputOffsets::default());
    assert_eq!(out.stdout.len(), 100);
    assert!(out.stdout.ends_with(b"END"));
    assert_eq!(out.missed.stdout, 9903);
    assert_eq!(out.next.stdout, 10003);
}

#[tokio::test]
async fn kill_takes_the_tree_and_reports_137() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(
        sh(dir.path(), "sleep 300 & echo $! > pid; wait"),
        false,
        1024,
    )
    .unwrap();
    let grandchild = read_pid(&dir.path().join("pid")).await;
    let leader = p.pid().unwrap() as i32;
    p.kill().await;
    assert_eq!(p.exit_code(), Some(137));
    assert_eq!(p.state(), ProcessState::Exited(137));
    assert!(wait_dead(grandchild, Duration::from_secs(2)).await);
    assert!(wait_dead(leader, Duration::from_secs(2)).await);
    // Killing again is fine and changes nothing.
    p.kill().await;
    assert_eq!(p.exit_code(), Some(137));
}

#[tokio::test]
async fn kill_escalates_past_ignored_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn_with(
        sh(dir.path(), "trap '' TERM; echo ready; sleep 300"),
        BackgroundOptions {
            kill_grace: Duration::from_millis(200),
            ..BackgroundOptions::default()
        },
    )
    .unwrap();
    wait_for_stdout(&p, 0, "ready").await;
    let started = Instant::now();
    p.kill().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(p.exit_code(), Some(137));
}

#[tokio::test]
async fn an_exited_process_keeps_its_code_when_killed() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(sh(dir.path(), "exit 5"), false, 1024).unwrap();
    assert_eq!(p.wait(WAIT).await, Some(5));
    p.kill().await;
    assert_eq!(p.exit_code(), Some(5));
}

#[tokio::test]
async fn wait_times_out_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(sh(dir.path(), "sleep 300"), false, 1024).unwrap();
    let started = Instant::now();
    assert_eq!(p.wait(Some(Duration::from_millis(200))).await, None);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let err = p
        .wait_or_timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Timeout { .. }));
    p.kill().await;
}

#[tokio::test]
async fn changes_tick_on_output_and_exit() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(sh(dir.path(), "cat"), true, 1024).unwrap();
    let mut changes = p.changes();
    let before = *changes.borrow_and_update();
    p.write_stdin(b"tick\n").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(*changes.borrow_and_update() > before);
    p.close_stdin().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            changes.changed().await.unwrap();
            if p.exit_code().is_some() {
                break;
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn dropping_the_last_handle_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn(
        sh(dir.path(), "sleep 300 & echo $! > pid; sleep 300"),
        false,
        1024,
    )
    .unwrap();
    let grandchild = read_pid(&dir.path().join("pid")).await;
    let leader = p.pid().unwrap() as i32;
    drop(p);
    assert!(wait_dead(grandchild, Duration::from_secs(2)).await);
    assert!(wait_dead(leader, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn spawn_failure_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = BackgroundProcess::spawn(ProcessSpec::new("/nonexistent/x", dir.path()), false, 10)
        .unwrap_err();
    assert!(matches!(err, SandboxError::Io { .. }), "{err:?}");
}

#[test]
fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let err = BackgroundProcess::spawn(sh(dir.path(), "true"), false, 10).unwrap_err();
    assert!(matches!(err, SandboxError::Unsupported { .. }), "{err:?}");
}

/// Read `p` until it has exited, pausing `pause` before each read; every byte read and how many
/// were missed, per stream.
async fn read_slowly(p: &BackgroundProcess, pause: Duration) -> (Vec<u8>, Vec<u8>, OutputOffsets) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut at = OutputOffsets::default();
    let mut missed = OutputOffsets::default();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(pause).await;
        let o = p.output_since(at);
        out.extend_from_slice(&o.stdout);
        err.extend_from_slice(&o.stderr);
        missed.stdout += o.missed.stdout;
        missed.stderr += o.missed.stderr;
        at = o.next;
        if matches!(o.state, ProcessState::Exited(_)) {
            return (out, err, missed);
        }
        assert!(Instant::now() < end, "the process never exited");
    }
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn hold_unread_paces_the_process_to_its_consumer() {
    let dir = tempfile::tempdir().unwrap();
    // 4 MiB on stdout and 1 MiB on stderr through 64 KiB rings, read in bursts: without
    // holding, most of it would be gone by the time each read comes.
    let p = BackgroundProcess::spawn_with(
        sh(
            dir.path(),
            "head -c 1048576 /dev/zero | tr '\\0' e >&2 & \
             head -c 4194304 /dev/zero | tr '\\0' o; wait; exit 7",
        ),
        BackgroundOptions {
            retention: 64 * 1024,
            hold_unread: true,
            ..BackgroundOptions::default()
        },
    )
    .unwrap();
    let (out, err, missed) = read_slowly(&p, Duration::from_millis(2)).await;
    assert_eq!(missed, OutputOffsets::default());
    assert_eq!(out.len(), 4 * MIB);
    assert!(out.iter().all(|&b| b == b'o'));
    assert_eq!(err.len(), MIB);
    assert!(err.iter().all(|&b| b == b'e'));
    assert_eq!(p.exit_code(), Some(7));
}

#[tokio::test]
async fn without_hold_unread_a_slow_reader_misses_the_oldest_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = BackgroundProcess::spawn_with(
        sh(dir.path(), "head -c 1048576 /dev/zero | tr '\\0' o"),
        BackgroundOptions {
            retention: 64 * 1024,
            ..BackgroundOptions::default()
        },
    )
    .unwrap();
    assert_eq!(p.wait(WAIT).await, Some(0));
    let o = p.output_since(OutputOffsets::default());
    assert_eq!(o.stdout.len(), 64 * 1024);
    assert_eq!(o.missed.stdout, (MIB - 64 * 1024) as u64);
}

#[tokio::test]
async fn hold_unread_waits_for_a_consumer_slower_than_the_drain_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // The leader's last write lands while its consumer sleeps for longer than the drain
    // timeout: the exit must still wait for those bytes.
    let p = BackgroundProcess::spawn_with(
        sh(dir.path(), "head -c 1048576 /dev/zero | tr '\\0' o"),
        BackgroundOptions {
            retention: 256 * 1024,
            drain_timeout: Duration::from_millis(50),
            hold_unread: true,
            ..BackgroundOptions::default()
        },
    )
    .unwrap();
    let (out, _, missed) = read_slowly(&p, Duration::from_millis(300)).await;
    assert_eq!(missed, OutputOffsets::default());
    assert_eq!(out.len(), MIB);
    assert_eq!(p.exit_code(), Some(0));
}

#[tokio::test]
async fn hold_unread_still_publishes_the_exit_when_a_child_keeps_the_pipe_idle() {
    let dir = tempfile::tempdir().unwrap();
    // A child holding stdout open without writing must not keep the exit back beyond the
    // drain timeout.
    let p = BackgroundProcess::spawn_with(
        sh(dir.path(), "sleep 30 & echo started; exit 4"),
        BackgroundOptions {
            drain_timeout: Duration::from_millis(200),
            hold_unread: true,
            ..BackgroundOptions::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(p.wait(WAIT).await, Some(4));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        p.output_since(OutputOffsets::default()).stdout_text(),
        "started\n"
    );
    p.kill().await;
}

#[tokio::test]
async fn hold_unread_kill_publishes_the_exit_without_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody reads: the process fills its buffer and blocks. Kill must still end it and
    // publish 137 promptly.
    let p = BackgroundProcess::spawn_with(
        sh(dir.path(), "yes"),
        BackgroundOptions {
            retention: 64 * 1024,
            drain_timeout: Duration::from_millis(200),
            hold_unread: true,
            ..BackgroundOptions::default()
        },
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    p.kill().await;
    assert_eq!(p.exit_code(), Some(137));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
