//! Basic command behaviour: output, exit codes, stderr, missing commands, concurrency.

use std::time::{Duration, Instant};

use super::probe::{assert_success, exec_with, opts, sh, sh_ok};
use super::random::unique_suffix;
use crate::command::EXIT_NOT_FOUND;
use crate::sandbox::WorkspaceSandbox;

/// `echo` works, and output reaches the result byte for byte: no newline added or removed.
pub async fn echo(sandbox: &dyn WorkspaceSandbox) {
    let r = exec_with(sandbox, "echo", &["hello world"], opts()).await;
    assert_success("echo 'hello world'", &r);
    assert_eq!(r.stdout, "hello world\n");
    assert_eq!(r.stderr, "");
    assert!(!r.stdout_truncated && !r.stderr_truncated);
    assert_eq!((r.stdout_dropped_bytes, r.stderr_dropped_bytes), (0, 0));

    for (command, expected) in [
        (r"printf 'a\n\nb'", "a\n\nb"),
        (r"printf '\n'", "\n"),
        ("printf ''", ""),
        (r"printf 'no newline at end'", "no newline at end"),
        (r"printf 'crlf\r\n'", "crlf\r\n"),
        (r"printf '\n\n\n'", "\n\n\n"),
    ] {
        let r = sh_ok(sandbox, command).await;
        assert_eq!(r.stdout, expected, "`{command}` output changed in transit");
    }
}

/// Exit codes come back as they are; `success` means exactly `exit_code == 0`.
pub async fn exit_codes(sandbox: &dyn WorkspaceSandbox) {
    for code in [0, 1, 2, 42, 255] {
        let command = format!("exit {code}");
        let r = sh(sandbox, &command).await;
        assert_eq!(r.exit_code, code, "`{command}`");
        assert_eq!(r.success, code == 0, "`{command}`: success flag");
        assert!(
            !r.timed_out && !r.killed,
            "`{command}`: not a timeout or a kill"
        );
    }
    let r = sh(sandbox, "false").await;
    assert_eq!((r.exit_code, r.success), (1, false));
    let r = sh(sandbox, "true").await;
    assert_eq!((r.exit_code, r.success), (0, true));
}

/// A command that writes only to stderr and fails keeps its stderr, and stdout stays empty.
pub async fn stderr_only(sandbox: &dyn WorkspaceSandbox) {
    let r = sh(sandbox, "echo 'something broke' >&2; exit 3").await;
    assert_eq!(r.exit_code, 3);
    assert!(!r.success);
    assert_eq!(r.stdout, "", "stdout must be empty");
    assert_eq!(r.stderr, "something broke\n");
}

/// A command that does not exist is a result with exit 127, not an error.
pub async fn command_not_found(sandbox: &dyn WorkspaceSandbox) {
    let command = format!("ws-conformance-no-such-command-{}", unique_suffix());
    let r = sh(sandbox, &command).await;
    assert_eq!(
        r.exit_code, EXIT_NOT_FOUND,
        "`{command}`: stderr {:?}",
        r.stderr
    );
    assert!(!r.success);
    assert!(
        !r.stderr.is_empty(),
        "the shell should explain that {command} was not found"
    );
}

/// Several commands on one sandbox at the same time each get their own output, and they run
/// concurrently rather than one after another.
pub async fn concurrent_commands(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await; // start the sandbox outside the timed part
    const N: usize = 4;
    const EACH: Duration = Duration::from_secs(2);
    let started = Instant::now();
    let runs = (0..N).map(|i| async move {
        let command = format!(
            "sleep {}; printf 'out-%s' {i}; printf 'err-%s' {i} >&2",
            EACH.as_secs()
        );
        (i, sh(sandbox, &command).await)
    });
    let results = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    for (i, r) in results {
        assert_success("concurrent command", &r);
        assert_eq!(
            r.stdout,
            format!("out-{i}"),
            "command {i} got someone else's stdout"
        );
        assert_eq!(
            r.stderr,
            format!("err-{i}"),
            "command {i} got someone else's stderr"
        );
    }
    eprintln!("concurrent_commands: {N} commands of {EACH:?} took {elapsed:?}");
    assert!(
        elapsed < EACH * (N as u32 - 1),
        "{N} commands of {EACH:?} took {elapsed:?}: they ran one after another"
    );
}
