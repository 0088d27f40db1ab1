//! The foreground runner against real processes.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{kill_pid, pid_alive, read_pid, wait_dead};
use tokio_util::sync::CancellationToken;
use workspace_core::{SandboxError, Stdin};
use workspace_local::runner::{self, Leftovers, ProcessSpec, RunOptions};

fn sh(dir: &std::path::Path, line: &str) -> ProcessSpec {
    ProcessSpec::new("/bin/sh", dir)
        .arg("-c")
        .arg(line)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
}

fn opts() -> RunOptions {
    RunOptions {
        timeout: Some(Duration::from_secs(30)),
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn exit_codes_are_the_process_own() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner::run(sh(dir.path(), "exit 3"), opts()).await.unwrap();
    assert_eq!(r.exit_code, 3);
    assert!(!r.success && !r.timed_out && !r.killed);

    let r = runner::run(sh(dir.path(), "true"), opts()).await.unwrap();
    assert_eq!(r.exit_code, 0);
    assert!(r.success);

    let r = runner::run(sh(dir.path(), "kill -KILL $$"), opts())
        .await
        .unwrap();
    assert_eq!(r.exit_code, 137, "128 + SIGKILL");
    assert!(!r.killed, "killed by itself, not cancelled");

    let r = runner::run(sh(dir.path(), "kill -TERM $$"), opts())
        .await
        .unwrap();
    assert_eq!(r.exit_code, 143);
}

#[tokio::test]
async fn stdout_and_stderr_are_kept_apart_and_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner::run(
        sh(
            dir.path(),
            "printf 'out\\n\\nno-newline'; printf 'err\\n' >&2; exit 1",
        ),
        opts(),
    )
    .await
    .unwrap();
    assert_eq!(r.stdout, "out\n\nno-newline");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.exit_code, 1);
    assert!(!r.stdout_truncated && !r.stderr_truncated);
}

#[tokio::test]
async fn runs_in_cwd_with_exactly_the_given_env() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ProcessSpec::new("/usr/bin/env", dir.path()).env("ONLY_THIS", "value with spaces");
    let r = runner::run(spec, opts()).await.unwrap();
    assert_eq!(r.stdout, "ONLY_THIS=value with spaces\n");

    let r = runner::run(sh(dir.path(), "pwd -P"), opts()).await.unwrap();
    let canonical = dir.path().canonicalize().unwrap();
    assert_eq!(r.stdout.trim_end(), canonical.to_str().unwrap());
}

#[tokio::test]
async fn spawn_failure_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = runner::run(ProcessSpec::new("/nonexistent/program", dir.path()), opts())
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/program"));
}

#[tokio::test]
async fn timeout_returns_124_quickly_with_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let r = runner::run(
        sh(dir.path(), "echo partial; echo oops >&2; sleep 30"),
        RunOptions {
            timeout: Some(Duration::from_millis(300)),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.exit_code, 124);
    assert!(r.timed_out && !r.success && !r.killed);
    assert_eq!(r.stdout, "partial\n");
    assert_eq!(r.stderr, "oops\n");
    assert!(r.duration >= Duration::from_millis(300));
}

#[tokio::test]
async fn timeout_kills_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let r = runner::run(
        sh(dir.path(), "sleep 300 & echo $! > pid; wait"),
        RunOptions {
            timeout: Some(Duration::from_millis(300)),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(r.timed_out);
    let pid = read_pid(&pidfile).await;
    assert!(
        wait_dead(pid, Duration::from_secs(2)).await,
        "grandchild {pid} survived"
    );
}

#[tokio::test]
async fn timeout_escalates_to_sigkill_for_term_ignoring_trees() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let r = runner::run(
        sh(
            dir.path(),
            "trap '' TERM; sh -c 'trap \"\" TERM; sleep 300' & echo $! > pid; wait",
        ),
        RunOptions {
            timeout: Some(Duration::from_millis(200)),
            kill_grace: Duration::from_millis(200),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(r.timed_out);
    assert!(started.elapsed() < Duration::from_secs(3));
    let pid = read_pid(&dir.path().join("pid")).await;
    assert!(wait_dead(pid, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn cancel_returns_137() {
    let dir = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        t.cancel();
    });
    let started = Instant::now();
    let r = runner::run(
        sh(dir.path(), "echo before; sleep 300 & echo $! > pid; wait"),
        RunOptions {
            cancel: Some(token),
            ..opts()
        },
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.exit_code, 137);
    assert!(r.killed && !r.timed_out);
    assert_eq!(r.stdout, "before\n");
    let pid = read_pid(&dir.path().join("pid")).await;
    assert!(wait_dead(pid, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn dropping_the_future_kills_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let fut = runner::run(
        sh(
            dir.path(),
            "echo $$ > shpid; sleep 300 & echo $! > pid; sleep 300",
        ),
        opts(),
    );
    let res = tokio::time::timeout(Duration::from_millis(500), fut).await;
    assert!(res.is_err(), "the command cannot have finished");
    let shell = read_pid(&dir.path().join("shpid")).await;
    let grandchild = read_pid(&dir.path().join("pid")).await;
    assert!(
        wait_dead(shell, Duration::from_secs(2)).await,
        "shell {shell} survived"
    );
    assert!(
        wait_dead(grandchild, Duration::from_secs(2)).await,
        "grandchild {grandchild} survived"
    );
}

#[tokio::test]
async fn background_child_holding_the_pipes_does_not_hang_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = runner::run_tracked(
        sh(dir.path(), "sleep 300 & echo $! > pid; echo done"),
        RunOptions {
            drain_timeout: Duration::from_millis(300),
            ..opts()
        },
    )
    .await
    .unwrap();
    let pid = read_pid(&dir.path().join("pid")).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.result.exit_code, 0);
    assert_eq!(out.result.stdout, "done\n");
    assert!(out.drain_timed_out);
    // Left running, like a shell would, and handed back to the caller.
    assert!(pid_alive(pid));
    let group = out.leftover.expect("the group outlived the command");
    assert!(group.kill());
    assert!(wait_dead(pid, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn redirected_daemon_returns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = runner::run_tracked(
        sh(dir.path(), "sleep 300 >/dev/null 2>&1 & echo $! > pid"),
        opts(),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!out.drain_timed_out);
    let pid = read_pid(&dir.path().join("pid")).await;
    let group = out.leftover.expect("daemon still running");
    assert!(pid_alive(pid));
    group.kill();
    assert!(wait_dead(pid, Duration::from_secs(2)).await);
    kill_pid(pid);
}

#[tokio::test]
async fn leftovers_kill_policy_kills_daemons_after_a_normal_exit() {
    let dir = tempfile::tempdir().unwrap();
    let out = runner::run_tracked(
        sh(dir.path(), "sleep 300 >/dev/null 2>&1 & echo $! > pid"),
        RunOptions {
            leftovers: Leftovers::Kill,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert!(out.leftover.is_none());
    let pid = read_pid(&dir.path().join("pid")).await;
    assert!(wait_dead(pid, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn fifty_megabytes_with_a_one_mebibyte_cap() {
    const N: u64 = 50 * 1024 * 1024;
    const CAP: usize = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let seen_out = Arc::new(Mutex::new(0u64));
    let seen_err = Arc::new(Mutex::new(0u64));
    let (so, se) = (seen_out.clone(), seen_err.clone());
    let r = runner::run(
        sh(
            dir.path(),
            &format!("head -c {N} /dev/zero >&2 & head -c {N} /dev/zero; wait"),
        ),
        RunOptions {
            output_limit: CAP,
            on_stdout: Some(Arc::new(move |s: &str| {
                *so.lock().unwrap() += s.len() as u64
            })),
            on_stderr: Some(Arc::new(move |s: &str| {
                *se.lock().unwrap() += s.len() as u64
            })),
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.stdout.len(), CAP);
    assert_eq!(r.stderr.len(), CAP);
    assert_eq!(r.stdout_dropped_bytes, N - CAP as u64);
    assert_eq!(r.stderr_dropped_bytes, N - CAP as u64);
    assert!(r.stdout_truncated && r.stderr_truncated);
    assert_eq!(*seen_out.lock().unwrap(), N, "callbacks see everything");
    assert_eq!(*seen_err.lock().unwrap(), N);
}

#[tokio::test]
async fn head_and_tail_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner::run(
        sh(
            dir.path(),
            "printf 'HEAD'; head -c 100000 /dev/zero; printf 'TAIL'",
        ),
        RunOptions {
            output_limit: 8,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.stdout, "HEADTAIL");
    assert_eq!(r.stdout_dropped_bytes, 100000);
}

#[tokio::test]
async fn stdin_bytes_are_fed_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner::run(
        sh(dir.path(), "cat; echo '<eof>'"),
        RunOptions {
            stdin: Stdin::Bytes(b"hello\nworld".to_vec()),
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.stdout, "hello\nworld<eof>\n");
}

#[tokio::test]
async fn unread_stdin_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let r = runner::run(
        sh(dir.path(), "echo ignored-stdin"),
        RunOptions {
            stdin: Stdin::Bytes(vec![b'x'; 10 * 1024 * 1024]),
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.stdout, "ignored-stdin\n");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stdin_is_closed_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let r = runner::run(sh(dir.path(), "cat; echo eof"), opts())
        .await
        .unwrap();
    assert_eq!(r.stdout, "eof\n");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn callbacks_receive_multibyte_characters_whole() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = Arc::new(Mutex::new(Vec::<String>::new()));
    let c = chunks.clone();
    // The snowman (E2 98 83) is written in two pieces with a pause in between.
    let r = runner::run(
        sh(
            dir.path(),
            "printf 'a\\342'; sleep 0.2; printf '\\230\\203b'",
        ),
        RunOptions {
            on_stdout: Some(Arc::new(move |s: &str| {
                c.lock().unwrap().push(s.to_string())
            })),
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.stdout, "a☃b");
    let chunks = chunks.lock().unwrap();
    assert_eq!(chunks.concat(), "a☃b");
    assert!(chunks.iter().all(|c| !c.contains('\u{FFFD}')), "{chunks:?}");
}

#[tokio::test]
async fn callbacks_survive_many_chunk_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let text = Arc::new(Mutex::new(String::new()));
    let t = text.clone();
    let r = runner::run(
        sh(dir.path(), "yes 'é☃𝄞' | head -n 50000"),
        RunOptions {
            on_stdout: Some(Arc::new(move |s: &str| t.lock().unwrap().push_str(s))),
            ..opts()
        },
    )
    .await
    .unwrap();
    let expected = "é☃𝄞\n".repeat(50000);
    assert_eq!(r.stdout, expected);
    assert_eq!(*text.lock().unwrap(), expected);
}
