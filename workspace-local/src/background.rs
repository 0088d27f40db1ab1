//! Long-lived processes: servers, watchers, REPLs, addressed by handle rather than awaited.
//!
//! A [`BackgroundProcess`] runs as the leader of its own process group. Tasks on the Tokio runtime
//! read both pipes into [`OffsetRing`]s (newest bytes kept, every byte numbered) and reap the
//! leader; readers poll with [`BackgroundProcess::output_since`] and can sleep on
//! [`BackgroundProcess::changes`] in between.
//!
//! The exit code is published once the leader has exited *and* its output has been drained (for
//! at most the drain timeout), so a caller that sees [`ProcessState::Exited`] and then reads the
//! output has all of it. Members of the group that outlive the leader keep running (and their
//! output keeps being collected) until [`BackgroundProcess::kill`] or drop.

use std::fmt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use workspace_core::output::OffsetRing;
use workspace_core::process::DEFAULT_PROCESS_OUTPUT_RETENTION;
use workspace_core::{
    EXIT_KILLED, OutputOffsets, ProcessOutput, ProcessState, SandboxError, TimeoutPhase,
};

use crate::group::ProcessGroup;
use crate::runner::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_KILL_GRACE, ProcessSpec, exit_code};

/// Exit code recorded when waiting for the leader itself failed, so its real status is unknown.
pub const EXIT_UNKNOWN: i32 = -1;

const READ_CHUNK: usize = 64 * 1024;
const GROUP_POLL: Duration = Duration::from_millis(10);
/// Extra time `kill` allows for the exit to be published after SIGKILL.
const KILL_SETTLE: Duration = Duration::from_secs(5);

/// How to spawn a [`BackgroundProcess`].
#[derive(Debug, Clone, Copy)]
pub struct BackgroundOptions {
    /// Keep stdin open as a pipe for [`BackgroundProcess::write_stdin`]; otherwise it is
    /// `/dev/null`.
    pub stdin: bool,
    /// Bytes of each stream retained (the newest).
    pub retention: usize,
    /// Time between SIGTERM and SIGKILL in [`BackgroundProcess::kill`].
    pub kill_grace: Duration,
    /// How long after the leader exits to wait for its output before publishing the exit.
    pub drain_timeout: Duration,
}

impl Default for BackgroundOptions {
    fn default() -> Self {
        BackgroundOptions {
            stdin: false,
            retention: DEFAULT_PROCESS_OUTPUT_RETENTION,
            kill_grace: DEFAULT_KILL_GRACE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

enum StdinState {
    NotPiped,
    Open(ChildStdin),
    Closed,
}

#[derive(Default)]
struct Leader {
    /// The code to publish, once the leader has been reaped.
    code: Option<i32>,
    /// `kill` was called before the leader exited: report 137 whatever signal ended it.
    killed: bool,
}

struct Shared {
    stdout: Mutex<OffsetRing>,
    stderr: Mutex<OffsetRing>,
    leader: Mutex<Leader>,
    exit: watch::Sender<Option<i32>>,
    changes: watch::Sender<u64>,
}

impl Shared {
    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A process running in the background. Always handled as `Arc<BackgroundProcess>`; dropping the
/// last handle kills its process group.
pub struct BackgroundProcess {
    shared: Arc<Shared>,
    group: Arc<ProcessGroup>,
    pid: u32,
    started_at: DateTime<Utc>,
    stdin: tokio::sync::Mutex<StdinState>,
    options: BackgroundOptions,
    _tasks: Vec<AbortOnDropHandle<()>>,
}

impl fmt::Debug for BackgroundProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundProcess")
            .field("pid", &self.pid)
            .field("state", &self.state())
            .field("started_at", &self.started_at)
            .finish()
    }
}

impl BackgroundProcess {
    /// Spawn `spec` in the background with `stdin` open or closed, keeping the newest
    /// `retention` bytes of each stream. Must be called within a Tokio runtime.
    pub fn spawn(
        spec: ProcessSpec,
        stdin: bool,
        retention: usize,
    ) -> Result<Arc<Self>, SandboxError> {
        Self::spawn_with(
            spec,
            BackgroundOptions {
                stdin,
                retention,
                ..BackgroundOptions::default()
            },
        )
    }

    /// Spawn `spec` in the background with the given options. Must be called within a Tokio
    /// runtime.
    pub fn spawn_with(
        spec: ProcessSpec,
        options: BackgroundOptions,
    ) -> Result<Arc<Self>, SandboxError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SandboxError::unsupported(
                "spawning a background process outside a Tokio runtime",
                "local",
            ));
        }
        let mut cmd = spec.command();
        cmd.stdin(if options.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spec.spawn_error(e))?;
        let started_at = Utc::now();
        let Some(pid) = child.id() else {
            return Err(SandboxError::io(
                "reading the pid of a just-spawned process",
                std::io::Error::other("no pid"),
            ));
        };
        let group = Arc::new(ProcessGroup::new(pid));
        let stdin = match child.stdin.take() {
            Some(pipe) => StdinState::Open(pipe),
            None => StdinState::NotPiped,
        };

        let shared = Arc::new(Shared {
            stdout: Mutex::new(OffsetRing::new(options.retention)),
            stderr: Mutex::new(OffsetRing::new(options.retention)),
            leader: Mutex::new(Leader::default()),
            exit: watch::Sender::new(None),
            changes: watch::Sender::new(0),
        });

        // Each reader holds a sender; the reaper knows the output is drained when all are gone.
        let (drained_tx, mut drained_rx) = mpsc::channel::<()>(1);
        let mut tasks = Vec::with_capacity(3);
        if let Some(pipe) = child.stdout.take() {
            tasks.push(spawn_reader(
                pipe,
                shared.clone(),
                Stream::Stdout,
                drained_tx.clone(),
            ));
        }
        if let Some(pipe) = child.stderr.take() {
            tasks.push(spawn_reader(
                pipe,
                shared.clone(),
                Stream::Stderr,
                drained_tx.clone(),
            ));
        }
        drop(drained_tx);

        let reaper_shared = shared.clone();
        let reaper_group = group.clone();
        let drain_timeout = options.drain_timeout;
        tasks.push(AbortOnDropHandle::new(tokio::spawn(async move {
            let status = child.wait().await;
            reaper_group.mark_leader_reaped();
            let raw = match status {
                Ok(s) => exit_code(s),
                Err(e) => {
                    tracing::warn!(pid, error = %e, "waiting for a background process failed");
                    EXIT_UNKNOWN
                }
            };
            let code = {
                let mut leader = reaper_shared
                    .leader
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let code = if leader.killed { EXIT_KILLED } else { raw };
                leader.code = Some(code);
                code
            };
            let _ = tokio::time::timeout(drain_timeout, drained_rx.recv()).await;
            reaper_shared.exit.send_replace(Some(code));
            reaper_shared.bump();
        })));

        Ok(Arc::new(BackgroundProcess {
            shared,
            group,
            pid,
            started_at,
            stdin: tokio::sync::Mutex::new(stdin),
            options,
            _tasks: tasks,
        }))
    }

    /// The leader's pid (also the process group id).
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    /// When it was spawned.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// The process group, for callers that need to signal it themselves.
    pub fn group(&self) -> &Arc<ProcessGroup> {
        &self.group
    }

    /// The exit code, once exited (137 if it was killed through [`BackgroundProcess::kill`]).
    pub fn exit_code(&self) -> Option<i32> {
        *self.shared.exit.borrow()
    }

    /// Running or exited.
    pub fn state(&self) -> ProcessState {
        match self.exit_code() {
            Some(code) => ProcessState::Exited(code),
            None => ProcessState::Running,
        }
    }

    /// Output since the given byte offsets. The state is read first, so `Exited` means the
    /// output returned is complete.
    pub fn output_since(&self, since: OutputOffsets) -> ProcessOutput {
        let state = self.state();
        let out = self
            .shared
            .stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .since(since.stdout);
        let err = self
            .shared
            .stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .since(since.stderr);
        ProcessOutput::new(
            out.data,
            err.data,
            OutputOffsets {
                stdout: out.next,
                stderr: err.next,
            },
            OutputOffsets {
                stdout: out.missed,
                stderr: err.missed,
            },
            state,
        )
    }

    /// Write to stdin. Fails with `InvalidArgument` (`stdin`) if the process was spawned without
    /// stdin and with `Conflict` once stdin is closed or the process stopped reading it. Blocks
    /// while the pipe is full; drop the future to give up.
    pub async fn write_stdin(&self, data: &[u8]) -> Result<(), SandboxError> {
        let mut stdin = self.stdin.lock().await;
        match &mut *stdin {
            StdinState::NotPiped => Err(SandboxError::invalid(
                "stdin",
                format!("process {} was spawned without stdin", self.pid),
            )),
            StdinState::Closed => Err(SandboxError::Conflict {
                message: format!("stdin of process {} is closed", self.pid),
            }),
            StdinState::Open(pipe) => {
                let res = async {
                    pipe.write_all(data).await?;
                    pipe.flush().await
                }
                .await;
                match res {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        *stdin = StdinState::Closed;
                        Err(SandboxError::Conflict {
                            message: format!(
                                "process {} is no longer reading stdin (it exited or closed it)",
                                self.pid
                            ),
                        })
                    }
                    Err(e) => Err(SandboxError::io(
                        format!("writing to stdin of process {}", self.pid),
                        e,
                    )),
                }
            }
        }
    }

    /// Close stdin so the process sees end-of-file. Closing twice, or a process spawned without
    /// stdin, is fine.
    pub async fn close_stdin(&self) -> Result<(), SandboxError> {
        let mut stdin = self.stdin.lock().await;
        if matches!(*stdin, StdinState::Open(_))
            && let StdinState::Open(mut pipe) = std::mem::replace(&mut *stdin, StdinState::Closed)
        {
            // The pipe closes when dropped, whatever shutdown says.
            let _ = pipe.shutdown().await;
        }
        Ok(())
    }

    /// Kill the process and everything in its group: SIGTERM, the grace period, SIGKILL. The exit
    /// code becomes 137 unless it had exited already. Killing an exited process is fine (members
    /// of its group still running are killed).
    pub async fn kill(&self) {
        {
            let mut leader = self.shared.leader.lock().unwrap_or_else(|p| p.into_inner());
            if leader.code.is_none() {
                leader.killed = true;
            }
        }
        if self.group.signal(Signal::SIGTERM) {
            let grace_end = Instant::now() + self.options.kill_grace;
            while self.group.is_alive() && Instant::now() < grace_end {
                tokio::time::sleep(GROUP_POLL).await;
            }
        }
        self.group.kill();
        let settle = self.options.drain_timeout + KILL_SETTLE;
        if self.wait(Some(settle)).await.is_none() {
            tracing::warn!(
                pid = self.pid,
                "background process did not exit after SIGKILL"
            );
        }
    }

    /// Wait for the exit to be published, at most `timeout` (`None`: no limit). Returns the exit
    /// code, or `None` if it is still running.
    pub async fn wait(&self, timeout: Option<Duration>) -> Option<i32> {
        let mut rx = self.shared.exit.subscribe();
        let exited = async move {
            // The sender lives in `shared`, which we hold, so this cannot fail.
            rx.wait_for(Option::is_some).await.ok().and_then(|c| *c)
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, exited).await.ok().flatten(),
            None => exited.await,
        }
    }

    /// Like [`BackgroundProcess::wait`], as an error when the timeout passes.
    pub async fn wait_or_timeout(&self, timeout: Duration) -> Result<i32, SandboxError> {
        self.wait(Some(timeout)).await.ok_or(SandboxError::Timeout {
            phase: TimeoutPhase::Wait,
            after: timeout,
        })
    }

    /// A counter bumped on every output chunk and on exit: followers wait for a change, then call
    /// [`BackgroundProcess::output_since`].
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}

impl Drop for BackgroundProcess {
    fn drop(&mut self) {
        if self.group.is_alive() {
            self.group.kill();
        }
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

fn spawn_reader<R>(
    mut pipe: R,
    shared: Arc<Shared>,
    stream: Stream,
    _drained: mpsc::Sender<()>,
) -> AbortOnDropHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    AbortOnDropHandle::new(tokio::spawn(async move {
        // Dropped when this task ends, telling the reaper this stream is drained.
        let _drained = _drained;
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = match pipe.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading background process output failed");
                    break;
                }
            };
            let ring = match stream {
                Stream::Stdout => &shared.stdout,
                Stream::Stderr => &shared.stderr,
            };
            ring.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&chunk[..n]);
            shared.bump();
        }
    }))
}
