//! The optional background-process API of a sandbox.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;

/// Bytes of each stream a background process keeps by default: 8 MiB, newest kept.
pub const DEFAULT_PROCESS_OUTPUT_RETENTION: usize = 8 * 1024 * 1024;

/// Stable identifier of a background process, valid for the life of the sandbox (also from a
/// new handle to the same sandbox, where the provider supports re-attaching).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ProcessId(pub String);

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ProcessId {
    fn from(s: &str) -> Self {
        ProcessId(s.to_string())
    }
}

impl From<String> for ProcessId {
    fn from(s: String) -> Self {
        ProcessId(s)
    }
}

/// Options for [`ProcessManager::spawn`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct SpawnOptions {
    /// Working directory, an absolute path (as for commands).
    pub cwd: Option<String>,
    /// Added environment variables.
    pub env: BTreeMap<String, String>,
    /// Keep stdin open as a pipe for [`ProcessManager::write_stdin`]. When false, stdin is closed.
    pub stdin: bool,
}

impl fmt::Debug for SpawnOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnOptions")
            .field("cwd", &self.cwd)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("stdin", &self.stdin)
            .finish()
    }
}

impl SpawnOptions {
    /// Default options: sandbox working directory, no extra env, stdin closed.
    pub fn new() -> Self {
        Self::default()
    }
    /// Run in this directory.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }
    /// Add an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }
    /// Keep stdin open for writing.
    pub fn with_stdin(mut self) -> Self {
        self.stdin = true;
        self
    }
}

/// Whether a background process is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "exit_code")]
pub enum ProcessState {
    /// Still running.
    Running,
    /// Exited with this code (128+N for a signal, 137 when killed through the API).
    Exited(i32),
}

/// A background process as the provider knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// Stable id.
    pub id: ProcessId,
    /// The command line as run.
    pub command: String,
    /// Running or exited.
    pub state: ProcessState,
    /// When it was spawned.
    pub started_at: DateTime<Utc>,
}

impl ProcessInfo {
    /// An info.
    pub fn new(
        id: ProcessId,
        command: impl Into<String>,
        state: ProcessState,
        started_at: DateTime<Utc>,
    ) -> Self {
        ProcessInfo {
            id,
            command: command.into(),
            state,
            started_at,
        }
    }

    /// The exit code, once exited.
    pub fn exit_code(&self) -> Option<i32> {
        match self.state {
            ProcessState::Running => None,
            ProcessState::Exited(c) => Some(c),
        }
    }
}

/// Byte offsets into a process's stdout and stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputOffsets {
    /// Offset into stdout.
    pub stdout: u64,
    /// Offset into stderr.
    pub stderr: u64,
}

/// Output of a background process since some offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessOutput {
    /// Stdout bytes from the asked offset (or the oldest retained byte) to now.
    pub stdout: Vec<u8>,
    /// Stderr bytes likewise.
    pub stderr: Vec<u8>,
    /// Pass these as `since` next time to get only newer output.
    pub next: OutputOffsets,
    /// Bytes between the asked offsets and the oldest retained byte that are gone.
    pub missed: OutputOffsets,
    /// The process state when the output was read.
    pub state: ProcessState,
}

impl ProcessOutput {
    /// An output.
    pub fn new(
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        next: OutputOffsets,
        missed: OutputOffsets,
        state: ProcessState,
    ) -> Self {
        ProcessOutput {
            stdout,
            stderr,
            next,
            missed,
            state,
        }
    }

    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Background processes in a sandbox: long-running servers, watchers, REPLs.
///
/// Unlike [`crate::WorkspaceSandbox::execute_command`], a spawned process outlives the call; it
/// is addressed by its [`ProcessId`] and is killed (with its whole tree) by [`ProcessManager::kill`]
/// or when the sandbox is destroyed.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ProcessManager: Send + Sync {
    /// Start `command` (with `args` shell-quoted, as for commands) in the background.
    async fn spawn(
        &self,
        command: &str,
        args: &[String],
        options: SpawnOptions,
    ) -> Result<ProcessInfo>;
    /// The process with this id.
    async fn get(&self, id: &ProcessId) -> Result<ProcessInfo>;
    /// Every process this sandbox knows, running or exited.
    async fn list(&self) -> Result<Vec<ProcessInfo>>;
    /// Output since the given offsets.
    async fn output(&self, id: &ProcessId, since: OutputOffsets) -> Result<ProcessOutput>;
    /// Write to the process's stdin (it must have been spawned with stdin open).
    async fn write_stdin(&self, id: &ProcessId, data: &[u8]) -> Result<()>;
    /// Close the process's stdin so it sees end-of-file.
    async fn close_stdin(&self, id: &ProcessId) -> Result<()>;
    /// Kill the process and everything it started. Killing an exited process is fine.
    async fn kill(&self, id: &ProcessId) -> Result<ProcessInfo>;
    /// Wait for the process to exit, at most `timeout` (`None`: no limit). Returns its info,
    /// still `Running` if the timeout passed first.
    async fn wait(&self, id: &ProcessId, timeout: Option<Duration>) -> Result<ProcessInfo>;
}
