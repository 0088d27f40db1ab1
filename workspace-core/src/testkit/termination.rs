//! Ending commands early: timeouts, cancellation, a dropped future, and commands that leave a
//! background child behind. Every long-running process is marked and must be gone afterwards.

use std::pin::pin;
use std::time::{Duration, Instant};

use super::leaks::{assert_no_process_matching, unique_marker, wait_for_process_matching};
use super::probe::{assert_success, clip, exec_with, opts, sh_ok};
use crate::CancellationToken;
use crate::command::{EXIT_KILLED, EXIT_TIMEOUT};
use crate::sandbox::WorkspaceSandbox;

/// The longest a command may take to come back after its timeout or cancel fired. Generous so
/// that loaded CI machines and remote providers pass; a correct local provider takes well
/// under a second.
const KILL_LATENCY: Duration = Duration::from_secs(4);

/// How long a check waits for its marked process to show up in the scan.
const APPEAR: Duration = Duration::from_secs(30);

/// A command past its timeout is killed and reported as exit 124, keeping what it printed.
pub async fn timeout(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await; // start the sandbox outside the timed part
    let limit = Duration::from_secs(1);
    let started = Instant::now();
    let r = exec_with(
        sandbox,
        "echo before; echo err-before >&2; sleep 300; echo after",
        &[],
        opts().timeout(limit),
    )
    .await;
    let wall = started.elapsed();
    eprintln!(
        "timeout: a 1 s timeout returned after {wall:?} (reported duration {:?})",
        r.duration
    );
    assert_eq!(r.exit_code, EXIT_TIMEOUT, "stderr: {}", r.stderr);
    assert!(r.timed_out && !r.success && !r.killed, "{r:?}");
    assert_eq!(
        r.stdout, "before\n",
        "output printed before the timeout must survive"
    );
    assert_eq!(r.stderr, "err-before\n");
    assert!(
        wall < limit + KILL_LATENCY,
        "a {limit:?} timeout took {wall:?} to return"
    );
    assert!(
        r.duration >= limit - Duration::from_millis(100),
        "duration {:?}",
        r.duration
    );
}

/// A timeout kills the whole tree: background children and grandchildren that still hold the
/// output pipes do not survive and do not keep the call waiting.
pub async fn timeout_kills_tree(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await;
    let m = unique_marker();
    let command = format!("echo started; sh -c '{m} & {m}' & {m} & {m}");
    let limit = Duration::from_secs(2);
    let started = Instant::now();
    let r = exec_with(sandbox, &command, &[], opts().timeout(limit)).await;
    let wall = started.elapsed();
    eprintln!("timeout_kills_tree: a {limit:?} timeout returned after {wall:?}");
    assert_eq!(r.exit_code, EXIT_TIMEOUT, "stderr: {}", r.stderr);
    assert!(r.timed_out, "{r:?}");
    assert_eq!(r.stdout, "started\n");
    assert!(
        wall < limit + KILL_LATENCY,
        "a {limit:?} timeout took {wall:?}: something waited for the orphaned children"
    );
    assert_no_process_matching(sandbox, &m).await;
}

/// Cancelling the token kills the tree and reports exit 137, promptly.
pub async fn cancel_kills_tree(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await;
    let m = unique_marker();
    let command = format!("echo started; {m} & {m}");
    let token = CancellationToken::new();
    let started = Instant::now();
    // The command's own timeout only bounds a provider that ignores the token (it then fails
    // below with exit 124 instead of 137).
    let run = exec_with(
        sandbox,
        &command,
        &[],
        opts()
            .timeout(APPEAR + Duration::from_secs(15))
            .cancel_token(token.clone()),
    );
    let control = async {
        // Cancel a second in, and only once the scan sees the tree, so that the leak check
        // below is known to be able to see it.
        let seen = wait_for_process_matching(sandbox, &m, APPEAR).await;
        tokio::time::sleep_until((started + Duration::from_secs(1)).into()).await;
        let at = Instant::now();
        token.cancel();
        (seen, at)
    };
    let (r, (seen, cancelled_at)) = tokio::join!(run, control);
    let latency = cancelled_at.elapsed();
    eprintln!("cancel_kills_tree: returned {latency:?} after the cancel");
    assert!(
        seen,
        "the marked process never appeared in the /proc scan: {r:?}"
    );
    assert_eq!(r.exit_code, EXIT_KILLED, "stderr: {}", r.stderr);
    assert!(r.killed && !r.timed_out && !r.success, "{r:?}");
    assert_eq!(r.stdout, "started\n");
    assert!(
        latency < KILL_LATENCY,
        "cancel took {latency:?} to take effect"
    );
    assert_no_process_matching(sandbox, &m).await;
}

/// Dropping the `execute_command` future mid-command (as `tokio::time::timeout` or an aborted
/// agent turn does) kills the tree too.
pub async fn dropped_future_kills_tree(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await;
    let m = unique_marker();
    let command = format!("echo started; {m} & {m}");
    {
        let run = pin!(exec_with(sandbox, &command, &[], opts()));
        let outcome = tokio::time::timeout(APPEAR, async {
            let mut run = run;
            tokio::select! {
                r = &mut run => panic!("the command finished instead of running: {r:?}"),
                seen = wait_for_process_matching(sandbox, &m, APPEAR) => seen,
            }
        })
        .await;
        assert!(
            matches!(outcome, Ok(true)),
            "the marked process never appeared in the /proc scan"
        );
        // Leaving the block drops the command's future while it runs.
    }
    assert_no_process_matching(sandbox, &m).await;
}

/// A command that starts a background child and exits returns promptly: at once when the child's
/// output is redirected, and without hanging when the child still holds the pipes.
pub async fn background_with_redirected_output_returns(sandbox: &dyn WorkspaceSandbox) {
    sh_ok(sandbox, "true").await;
    // Short sleeps: whether a provider reaps such children when the command returns is not part
    // of the contract, so they must be harmless if they outlive it.
    let command = "sleep 6 >/dev/null 2>&1 & echo done";
    let started = Instant::now();
    let r = exec_with(
        sandbox,
        command,
        &[],
        opts().timeout(Duration::from_secs(60)),
    )
    .await;
    let wall = started.elapsed();
    eprintln!("background_with_redirected_output_returns: redirected child, {wall:?}");
    assert_success(command, &r);
    assert_eq!(r.stdout, "done\n");
    assert!(
        wall < Duration::from_secs(4),
        "`{command}` took {wall:?}: the call waited for the background child"
    );

    let command = "sleep 4 & echo held";
    let started = Instant::now();
    let r = exec_with(
        sandbox,
        command,
        &[],
        opts().timeout(Duration::from_secs(60)),
    )
    .await;
    let wall = started.elapsed();
    eprintln!("background_with_redirected_output_returns: child holding the pipes, {wall:?}");
    assert!(
        !r.timed_out,
        "`{command}` hung until its timeout: {}",
        clip(&r.stderr)
    );
    assert_eq!(r.stdout, "held\n");
    assert!(wall < Duration::from_secs(15), "`{command}` took {wall:?}");
}
