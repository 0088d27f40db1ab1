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
