//! Options and results of one command.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::{Result, SandboxError};

/// Exit code reported when a command ran past its timeout (the `timeout(1)` convention).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code reported when a command was cancelled (128 + SIGKILL).
pub const EXIT_KILLED: i32 = 137;
/// Exit code a POSIX shell reports for a command it cannot find.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Default per-stream cap on retained output: 1 MiB. See [`ExecuteCommandOptions::output_limit`].
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// The longest timeout accepted: 7 days. Anything longer is almost certainly a unit mistake
/// (milliseconds passed as seconds); use [`CommandTimeout::Unlimited`] to mean "never".
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// A callback that receives output text as it arrives.
///
/// It is called on the task that reads the stream, so it must not block; a UTF-8 character split
/// across two reads is always delivered whole.
pub type OutputCallback = Arc<dyn Fn(&str) + Send + Sync>;

/// How long a command may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommandTimeout {
    /// The provider's documented default (300 s for every provider in this crate family).
    #[default]
    ProviderDefault,
    /// At most this long, counted from spawn.
    After(Duration),
    /// No timeout at all. Explicit, so that it never happens by accident.
    Unlimited,
}

impl CommandTimeout {
    /// The effective limit given the provider's default; `None` means unlimited.
    pub fn resolve(self, provider_default: Duration) -> Option<Duration> {
        match self {
            CommandTimeout::ProviderDefault => Some(provider_default),
            CommandTimeout::After(d) => Some(d),
            CommandTimeout::Unlimited => None,
        }
    }
}

/// What the command reads on its standard input.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Stdin {
    /// Closed (`/dev/null`): a command that reads stdin sees end-of-file at once.
    #[default]
    Closed,
    /// These bytes, then end-of-file.
    Bytes(Vec<u8>),
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdin::Closed => f.write_str("Closed"),
            Stdin::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

/// Options for [`crate::WorkspaceSandbox::execute_command`]. Build with the chaining methods:
///
/// ```
/// use std::time::Duration;
/// use workspace_core::ExecuteCommandOptions;
///
/// let opts = ExecuteCommandOptions::new()
///     .timeout(Duration::from_secs(30))
///     .cwd("/tmp")
///     .env("GREETING", "hello")
///     .on_stdout(|chunk| print!("{chunk}"));
/// assert_eq!(opts.cwd.as_deref(), Some("/tmp"));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ExecuteCommandOptions {
    /// How long the command may run. Default: the provider's default (300 s).
    pub timeout: CommandTimeout,
    /// Working directory, an absolute path. Default: the sandbox's working directory. A relative
    /// path is `InvalidArgument`; a directory that does not exist is an error, not a silent fallback.
    pub cwd: Option<String>,
    /// Variables added to the sandbox's environment for this command only.
    pub env: BTreeMap<String, String>,
    /// Standard input. Default: closed.
    pub stdin: Stdin,
    /// Receives stdout text as it arrives.
    pub on_stdout: Option<OutputCallback>,
    /// Receives stderr text as it arrives.
    pub on_stderr: Option<OutputCallback>,
    /// Cancels the command: the process tree is killed and the result has exit code 137.
    pub cancel: Option<CancellationToken>,
    /// Bytes retained per stream in the result (default [`DEFAULT_OUTPUT_LIMIT`]). Past it, the
    /// first half and the last half are kept, the middle is dropped and counted. Streaming
    /// callbacks still see everything.
    pub output_limit: Option<usize>,
}

impl fmt::Debug for ExecuteCommandOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Env values may be secrets: show names only.
        f.debug_struct("ExecuteCommandOptions")
            .field("timeout", &self.timeout)
            .field("cwd", &self.cwd)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("stdin", &self.stdin)
            .field("on_stdout", &self.on_stdout.is_some())
            .field("on_stderr", &self.on_stderr.is_some())
            .field("cancel", &self.cancel.is_some())
            .field("output_limit", &self.output_limit)
            .finish()
    }
}

impl ExecuteCommandOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limit the command to `timeout`, counted from spawn.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = CommandTimeout::After(timeout);
        self
    }

    /// Let the command run without any time limit.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = CommandTimeout::Unlimited;
        self
    }

    /// Run in this directory.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Add one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Add several environment variables.
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Feed these bytes on stdin, then close it.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Stdin::Bytes(data.into());
        self
    }

    /// Receive stdout text as it arrives.
    pub fn on_stdout(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_stdout = Some(Arc::new(f));
        self
    }

    /// Receive stderr text as it arrives.
    pub fn on_stderr(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_stderr = Some(Arc::new(f));
        self
    }

    /// Cancel the command when this token is cancelled.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Retain at most `bytes` of each stream in the result.
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = Some(bytes);
        self
    }

    /// The effective per-stream cap.
    pub fn effective_output_limit(&self) -> usize {
        self.output_limit.unwrap_or(DEFAULT_OUTPUT_LIMIT)
    }

    /// Check every field that a provider cannot check better itself: the timeout range, env
    /// names and values, and NUL bytes in `cwd`. Providers call this before doing anything.
    pub fn validate(&self) -> Result<()> {
        if let CommandTimeout::After(d) = self.timeout {
            if d.is_zero() {
                return Err(SandboxError::invalid(
                    "timeout",
                    "must be greater than zero (use no_timeout() for none)",
                ));
            }
            if d > MAX_TIMEOUT {
                return Err(SandboxError::invalid(
                    "timeout",
                    format!(
                        "{d:?} exceeds the maximum of {MAX_TIMEOUT:?} (use no_timeout() for none)"
                    ),
                ));
            }
        }
        if let Some(cwd) = &self.cwd {
            if cwd.is_empty() {
                return Err(SandboxError::invalid("cwd", "must not be empty"));
            }
            if cwd.contains('\0') {
                return Err(SandboxError::invalid("cwd", "contains a NUL byte"));
            }
            if !cwd.starts_with('/') {
                return Err(SandboxError::invalid(
                    "cwd",
                    format!("must be an absolute path, got {cwd:?}"),
                ));
            }
        }
        for (k, v) in &self.env {
            validate_env_name(k)?;
            if v.contains('\0') {
                return Err(SandboxError::invalid(
                    format!("env.{k}"),
                    "value contains a NUL byte",
                ));
            }
        }
        if self.output_limit == Some(0) {
            return Err(SandboxError::invalid(
                "output_limit",
                "must be at least 1 byte",
            ));
        }
        Ok(())
    }
}

/// Check that `name` is a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn validate_env_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {
            chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SandboxError::invalid(
            format!("env.{}", name.escape_debug()),
            "not a valid variable name (letters, digits and `_`, not starting with a digit)",
        ))
    }
}

/// Quote `arg` for a POSIX shell so that it reaches the program byte for byte as one argument.
///
/// ```
/// assert_eq!(workspace_core::shell_quote("plain-word"), "plain-word");
/// assert_eq!(workspace_core::shell_quote("it's"), r#"'it'\''s'"#);
/// assert_eq!(workspace_core::shell_quote(""), "''");
/// ```
pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/=:@,+%".contains(&b));
    if safe {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Build the shell command line for `command` followed by the shell-quoted `args`, rejecting an
/// empty command and NUL bytes (which no POSIX process can receive).
pub fn build_command_line(command: &str, args: &[String]) -> Result<String> {
    if command.trim().is_empty() {
        return Err(SandboxError::invalid("command", "must not be empty"));
    }
    if command.contains('\0') {
        return Err(SandboxError::invalid("command", "contains a NUL byte"));
    }
    let mut line = command.to_string();
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') {
            return Err(SandboxError::invalid(
                format!("args[{i}]"),
                "contains a NUL byte",
            ));
        }
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    Ok(line)
}

/// The outcome of a command that ran. A non-zero exit, a timeout and a cancel are all results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CommandResult {
    /// The exit code: the process's own, 128+N for a signal, 124 for a timeout, 137 for a cancel.
    pub exit_code: i32,
    /// `exit_code == 0`.
    pub success: bool,
    /// Retained stdout (lossily decoded UTF-8; see `stdout_truncated`).
    pub stdout: String,
    /// Retained stderr.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub duration: Duration,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
    /// The command was killed because it was cancelled.
    pub killed: bool,
    /// Part of stdout was dropped to stay under the cap (the head and tail are kept).
    pub stdout_truncated: bool,
    /// Part of stderr was dropped.
    pub stderr_truncated: bool,
    /// How many stdout bytes were dropped, exactly.
    pub stdout_dropped_bytes: u64,
    /// How many stderr bytes were dropped, exactly.
    pub stderr_dropped_bytes: u64,
}

impl CommandResult {
    /// A result with the given exit code and output, nothing dropped.
    pub fn new(exit_code: i32, stdout: String, stderr: String, duration: Duration) -> Self {
        CommandResult {
            exit_code,
            success: exit_code == 0,
            stdout,
            stderr,
            duration,
            timed_out: false,
            killed: false,
            stdout_truncated: false,
            stderr_truncated: false,
            stdout_dropped_bytes: 0,
            stderr_dropped_bytes: 0,
        }
    }

    /// Mark as timed out (exit 124).
    pub fn into_timed_out(mut self) -> Self {
        self.exit_code = EXIT_TIMEOUT;
        self.success = false;
        self.timed_out = true;
        self
    }

    /// Mark as cancelled (exit 137).
    pub fn into_killed(mut self) -> Self {
        self.exit_code = EXIT_KILLED;
        self.success = false;
        self.killed = true;
        self
    }

    /// Record what the output caps dropped.
    pub fn with_dropped(mut self, stdout_dropped: u64, stderr_dropped: u64) -> Self {
        self.stdout_dropped_bytes = stdout_dropped;
        self.stderr_dropped_bytes = stderr_dropped;
        self.stdout_truncated = stdout_dropped > 0;
        self.stderr_truncated = stderr_dropped > 0;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_sh() {
        let args = [
            "",
            "a b",
            "it's",
            "\"dq\"",
            "$HOME",
            "`id`",
            "*",
            "line1\nline2",
            "ünïcødé ✓",
            "\\",
            "-n",
        ];
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let line = build_command_line("printf '%s\\0'", &args).expect("valid");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("sh runs");
        let got: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .map(|s| String::from_utf8(s.to_vec()).expect("utf8"))
            .collect();
        assert_eq!(&got[..args.len()], &args[..]);
    }

    #[test]
    fn bad_input_is_named() {
        let e = build_command_line("", &[]).expect_err("must be rejected");
        assert!(e.to_string().contains("`command`"));
        let e = build_command_line("echo", &["ok".into(), "a\0b".into()])
            .expect_err("must be rejected");
        assert!(e.to_string().contains("args[1]"));
        let e = ExecuteCommandOptions::new()
            .env("1BAD", "x")
            .validate()
            .expect_err("must be rejected");
        assert!(e.to_string().contains("env.1BAD"));
        let e = ExecuteCommandOptions::new()
            .env("OK", "a\0")
            .validate()
            .expect_err("must be rejected");
        assert!(e.to_string().contains("env.OK"));
        let e = ExecuteCommandOptions::new()
            .timeout(Duration::ZERO)
            .validate()
            .expect_err("must be rejected");
        assert!(e.to_string().contains("timeout"));
        let e = ExecuteCommandOptions::new()
            .timeout(Duration::from_secs(u32::MAX as u64))
            .validate()
            .expect_err("must be rejected");
        assert!(e.to_string().contains("timeout"));
        let e = ExecuteCommandOptions::new()
            .cwd("rel/dir")
            .validate()
            .expect_err("must be rejected");
        assert!(e.to_string().contains("`cwd`"));
        assert!(
            ExecuteCommandOptions::new()
                .env("_OK_1", "v")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn debug_hides_env_values() {
        let o = ExecuteCommandOptions::new().env("TOKEN", "s3cr3t");
        let d = format!("{o:?}");
        assert!(d.contains("TOKEN") && !d.contains("s3cr3t"));
    }
}
