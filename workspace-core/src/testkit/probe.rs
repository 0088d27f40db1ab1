//! Small wrappers that run a command in the sandbox and fail the check with context when the
//! provider refuses to run it.

use std::time::Duration;

use crate::command::{CommandResult, ExecuteCommandOptions};
use crate::error::SandboxError;
use crate::sandbox::WorkspaceSandbox;

/// The timeout every helper command gets, so a hung provider fails a check instead of hanging it.
pub(crate) const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// Default options for suite commands: a bounded timeout, nothing else.
pub(crate) fn opts() -> ExecuteCommandOptions {
    ExecuteCommandOptions::new().timeout(COMMAND_DEADLINE)
}

/// Run `command` with `args` and `options`; the provider must produce a result.
pub(crate) async fn exec_with(
    sandbox: &dyn WorkspaceSandbox,
    command: &str,
    args: &[&str],
    options: ExecuteCommandOptions,
) -> CommandResult {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    match sandbox.execute_command(command, &args, options).await {
        Ok(r) => r,
        Err(e) => panic!("execute_command({command:?}, {args:?}) returned an error: {e} [{e:?}]"),
    }
}

/// Run a shell command line with [`opts`].
pub(crate) async fn sh(sandbox: &dyn WorkspaceSandbox, command: &str) -> CommandResult {
    exec_with(sandbox, command, &[], opts()).await
}

/// Run a shell command line that must succeed.
pub(crate) async fn sh_ok(sandbox: &dyn WorkspaceSandbox, command: &str) -> CommandResult {
    let r = sh(sandbox, command).await;
    assert_success(command, &r);
    r
}

/// Fail unless `r` is a plain success.
pub(crate) fn assert_success(command: &str, r: &CommandResult) {
    assert!(
        r.success && r.exit_code == 0 && !r.timed_out && !r.killed,
        "`{command}` should succeed, got exit {} (timed_out={}, killed={})\nstdout: {:?}\nstderr: {:?}",
        r.exit_code,
        r.timed_out,
        r.killed,
        clip(&r.stdout),
        clip(&r.stderr)
    );
}

/// At most 2000 characters of `s`, for failure messages about large outputs.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= 2000 {
        s.to_string()
    } else {
        let head: String = s.chars().take(1000).collect();
        let tail: String = {
            let rev: Vec<char> = s.chars().rev().take(1000).collect();
            rev.into_iter().rev().collect()
        };
        format!("{head}…[{} chars]…{tail}", s.chars().count() - 2000)
    }
}

/// The sandbox's working directory as `pwd` reports it (trailing newline removed). Files and
/// directories the suite creates live below it.
pub async fn working_dir(sandbox: &dyn WorkspaceSandbox) -> String {
    let r = sh_ok(sandbox, "pwd").await;
    let dir = r.stdout.trim_end_matches('\n').to_string();
    assert!(
        dir.starts_with('/'),
        "`pwd` should print an absolute path, got {:?}",
        r.stdout
    );
    dir
}

/// Fail unless `result` is `InvalidArgument` whose field (and message) mention `field`.
pub(crate) fn expect_invalid<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, SandboxError>,
    field: &str,
) {
    match result {
        Err(SandboxError::InvalidArgument {
            field: ref got,
            ref reason,
        }) => {
            assert!(
                got.contains(field),
                "{what}: InvalidArgument should name `{field}`, named `{got}` ({reason})"
            );
            let shown = result
                .as_ref()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                shown.contains(field),
                "{what}: the error message should name `{field}`: {shown}"
            );
        }
        Err(other) => {
            panic!("{what}: expected InvalidArgument naming `{field}`, got {other} [{other:?}]")
        }
        Ok(v) => panic!("{what}: expected InvalidArgument naming `{field}`, got Ok({v:?})"),
    }
}

/// Fail unless `result` is `NotFound`.
pub(crate) fn expect_not_found<T: std::fmt::Debug>(what: &str, result: Result<T, SandboxError>) {
    match result {
        Err(SandboxError::NotFound { .. }) => {}
        Err(other) => panic!("{what}: expected NotFound, got {other} [{other:?}]"),
        Ok(v) => panic!("{what}: expected NotFound, got Ok({v:?})"),
    }
}

/// Fail unless `result` is `NotReady`.
pub(crate) fn expect_not_ready<T: std::fmt::Debug>(what: &str, result: Result<T, SandboxError>) {
    match result {
        Err(SandboxError::NotReady { .. }) => {}
        Err(other) => panic!("{what}: expected NotReady, got {other} [{other:?}]"),
        Ok(v) => panic!("{what}: expected NotReady, got Ok({v:?})"),
    }
}

/// Split `printf '%s\036'` output back into the values printed.
pub(crate) fn split_records(stdout: &str) -> Vec<String> {
    match stdout.strip_suffix('\u{1e}') {
        Some(body) => body.split('\u{1e}').map(str::to_string).collect(),
        None => panic!("output should end with a record separator: {stdout:?}"),
    }
}
