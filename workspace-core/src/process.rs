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

    /// Return once `id` has output past `seen` or has exited, or after `timeout`, whichever is
    /// first (at once if either already holds). What [`ProcessManagerExt::subscribe`] and
    /// [`ProcessManagerExt::wait_for_output`] wait on between reads.
    ///
    /// The default reads [`ProcessManager::output`] every 50 ms, backing off to 500 ms;
    /// providers that are told when output arrives override it to return on the event.
    async fn wait_for_change(
        &self,
        id: &ProcessId,
        seen: OutputOffsets,
        timeout: Duration,
    ) -> Result<()> {
        poll_for_change(self, id, seen, timeout).await
    }
}

/// [`ProcessManager::wait_for_change`] by reading [`ProcessManager::output`] every 50 ms,
/// backing off to 500 ms: the default, and the fallback of providers whose push channel fails.
pub async fn poll_for_change<P: ProcessManager + ?Sized>(
    pm: &P,
    id: &ProcessId,
    seen: OutputOffsets,
    timeout: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let out = pm.output(id, seen).await?;
        let now = tokio::time::Instant::now();
        if out.has_news() || now >= deadline {
            return Ok(());
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

impl ProcessOutput {
    /// There is output past the asked offsets, or the process exited: a follower should look.
    pub fn has_news(&self) -> bool {
        !self.stdout.is_empty()
            || !self.stderr.is_empty()
            || matches!(self.state, ProcessState::Exited(_))
    }
}

/// One piece of a followed process's output, or its end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessEvent {
    /// Bytes written to stdout.
    Stdout(Vec<u8>),
    /// Bytes written to stderr.
    Stderr(Vec<u8>),
    /// The process exited with this code; the stream ends after it.
    Exited(i32),
}

/// What [`ProcessManagerExt::wait_for_output`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitForOutput {
    /// The pattern matched stdout or stderr.
    pub matched: bool,
    /// Everything from the given offsets to when the wait ended; its state says whether the
    /// process exited (a pattern that never came) or still runs (the timeout passed).
    pub output: ProcessOutput,
}

impl WaitForOutput {
    /// What a wait saw.
    pub fn new(matched: bool, output: ProcessOutput) -> Self {
        WaitForOutput { matched, output }
    }
}

/// Conveniences on every [`ProcessManager`]: output as a stream, and waiting for a line.
///
/// ```no_run
/// use std::time::Duration;
/// use futures::StreamExt;
/// use workspace_core::{ProcessEvent, ProcessManagerExt, SpawnOptions, WorkspaceSandbox};
///
/// # async fn demo(sandbox: &dyn WorkspaceSandbox) -> workspace_core::Result<()> {
/// let processes = sandbox.processes().expect("background processes");
/// let info = processes.spawn("python3 -m http.server 8000", &[], SpawnOptions::default()).await?;
/// // One call instead of a polling loop: wait for the server's banner, at most 30 s.
/// let ready = regex::Regex::new("Serving HTTP").expect("valid");
/// let seen = processes
///     .wait_for_output(&info.id, Default::default(), &ready, Duration::from_secs(30))
///     .await?;
/// assert!(seen.matched);
/// // Or follow everything it prints, stdout and stderr apart, as it comes.
/// let mut events = processes.subscribe(&info.id, seen.output.next);
/// while let Some(event) = events.next().await {
///     match event? {
///         ProcessEvent::Stdout(b) | ProcessEvent::Stderr(b) => print!("{}", String::from_utf8_lossy(&b)),
///         ProcessEvent::Exited(code) => println!("exited {code}"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ProcessManagerExt: ProcessManager {
    /// Follow `id`'s output from `since` as it is produced, stdout and stderr as separate
    /// chunks in the order they were read, ending with [`ProcessEvent::Exited`]. An error
    /// (the process is unknown, the sandbox went away) is the stream's last item.
    fn subscribe(
        &self,
        id: &ProcessId,
        since: OutputOffsets,
    ) -> futures::stream::BoxStream<'_, Result<ProcessEvent>> {
        struct Follow {
            id: ProcessId,
            at: OutputOffsets,
            queued: std::collections::VecDeque<ProcessEvent>,
            done: bool,
        }
        let start = Follow {
            id: id.clone(),
            at: since,
            queued: Default::default(),
            done: false,
        };
        Box::pin(futures::stream::unfold(start, move |mut f| async move {
            loop {
                if let Some(event) = f.queued.pop_front() {
                    return Some((Ok(event), f));
                }
                if f.done {
                    return None;
                }
                let out = match self.output(&f.id, f.at).await {
                    Ok(out) => out,
                    Err(e) => {
                        f.done = true;
                        return Some((Err(e), f));
                    }
                };
                f.at = out.next;
                let quiet = out.stdout.is_empty() && out.stderr.is_empty();
                if !out.stdout.is_empty() {
                    f.queued.push_back(ProcessEvent::Stdout(out.stdout));
                }
                if !out.stderr.is_empty() {
                    f.queued.push_back(ProcessEvent::Stderr(out.stderr));
                }
                match out.state {
                    // Exited and drained: the last read took everything it wrote.
                    ProcessState::Exited(code) if quiet => {
                        f.queued.push_back(ProcessEvent::Exited(code));
                        f.done = true;
                    }
                    ProcessState::Exited(_) => {}
                    ProcessState::Running if quiet => {
                        if let Err(e) = self
                            .wait_for_change(&f.id, f.at, Duration::from_secs(30))
                            .await
                        {
                            f.done = true;
                            return Some((Err(e), f));
                        }
                    }
                    ProcessState::Running => {}
                }
            }
        }))
    }

    /// Wait until `pattern` matches `id`'s stdout or stderr from `since` on, the process
    /// exits, or `timeout` passes, and return what was seen. Neither a miss nor a timeout is an
    /// error: [`WaitForOutput::matched`] and the output's state say which it was.
    async fn wait_for_output(
        &self,
        id: &ProcessId,
        since: OutputOffsets,
        pattern: &regex::Regex,
        timeout: Duration,
    ) -> Result<WaitForOutput> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let out = self.output(id, since).await?;
            let matched = pattern.is_match(&String::from_utf8_lossy(&out.stdout))
                || pattern.is_match(&String::from_utf8_lossy(&out.stderr));
            let now = tokio::time::Instant::now();
            if matched || matches!(out.state, ProcessState::Exited(_)) || now >= deadline {
                return Ok(WaitForOutput {
                    matched,
                    output: out,
                });
            }
            self.wait_for_change(id, out.next, deadline - now).await?;
        }
    }
}

impl<T: ProcessManager + ?Sized> ProcessManagerExt for T {}
