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
//!
//! By default a reader that falls more than the retention behind misses the oldest bytes (a
//! server's log must not block the server). With [`BackgroundOptions::hold_unread`] the pipes
//! are instead read only as fast as [`BackgroundProcess::output_since`] takes the bytes, so the
//! process blocks on a full pipe and one consumer sees every byte, as a log writer must.

use std::fmt;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// With `hold_unread`, time spent waiting for the consumer does not count: the clock runs
    /// only while the pipes are idle.
    pub drain_timeout: Duration,
    /// Stop reading a pipe while `retention` of its bytes are unread (past the offsets last
    /// passed to [`BackgroundProcess::output_since`]) instead of dropping the oldest: the
    /// process blocks writing until its consumer catches up, and nothing is missed. For one
    /// consumer that must see every byte; a process nobody reads then stalls once its pipe
    /// fills.
    pub hold_unread: bool,
}

impl Default for BackgroundOptions {
    fn default() -> Self {
        BackgroundOptions {
            stdin: false,
            retention: DEFAULT_PROCESS_OUTPUT_RETENTION,
            kill_grace: DEFAULT_KILL_GRACE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            hold_unread: false,
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
    /// `hold_unread` only: what the consumer has taken, and how many readers wait for it.
    hold: Option<Hold>,
}

/// The consumer's progress, which paces the readers in `hold_unread` mode.
struct Hold {
    /// Bytes of each stream the newest `output_since` call had already been given.
    taken: watch::Sender<OutputOffsets>,
    /// Readers waiting for room: while any does, the leader's output is not drained, however
    /// long the consumer takes.
    waiting: AtomicUsize,
    /// Unread bytes a stream may hold.
    capacity: usize,
}

impl Shared {
    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn ring(&self, stream: Stream) -> &Mutex<OffsetRing> {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }
}

impl Hold {
    /// Wait until `stream`, whose ring ends at `end`, may take more bytes; how many.
    async fn room(&self, stream: Stream, end: u64) -> usize {
        let unread = |taken: &OutputOffsets| {
            let taken = match stream {
                Stream::Stdout => taken.stdout,
                Stream::Stderr => taken.stderr,
            };
            usize::try_from(end.saturating_sub(taken)).unwrap_or(usize::MAX)
        };
        let mut rx = self.taken.subscribe();
        let mut left = self
            .capacity
            .saturating_sub(unread(&rx.borrow_and_update()));
        if left == 0 {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            // The sender lives as long as the process, which outlives its reader tasks.
            if let Ok(taken) = rx.wait_for(|t| unread(t) < self.capacity).await {
                left = self.capacity - unread(&taken);
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        left
    }

    /// The consumer has been given everything before `upto`.
    fn taken(&self, upto: OutputOffsets) {
        self.taken.send_if_modified(|t| {
            let before = *t;
            t.stdout = t.stdout.max(upto.stdout);
            t.stderr = t.stderr.max(upto.stderr);
            *t != before
        });
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
            hold: options.hold_unread.then(|| Hold {
                taken: watch::Sender::new(OutputOffsets::default()),
                waiting: AtomicUsize::new(0),
                capacity: options.retention.max(1),
            }),
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
                let mut leader = lock(&reaper_shared.leader);
                let code = if leader.killed { EXIT_KILLED } else { raw };
                leader.code = Some(code);
                code
            };
            drain(&reaper_shared, &mut drained_rx, drain_timeout).await;
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
    ///
    /// With [`BackgroundOptions::hold_unread`], the offsets returned are taken as read: the
    /// pipes may fill the rings up to `retention` past them.
    pub fn output_since(&self, since: OutputOffsets) -> ProcessOutput {
        let state = self.state();
        let out = lock(&self.shared.stdout).since(since.stdout);
        let err = lock(&self.shared.stderr).since(since.stderr);
        if let Some(hold) = &self.shared.hold {
            hold.taken(OutputOffsets {
                stdout: out.next,
                stderr: err.next,
            });
        }
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
            let mut leader = lock(&self.shared.leader);
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
            let want = match &shared.hold {
                Some(hold) => {
                    // Only this task pushes to the ring, so its end cannot move meanwhile.
                    let end = lock(shared.ring(stream)).end();
                    hold.room(stream, end).await.min(READ_CHUNK)
                }
                None => READ_CHUNK,
            };
            let n = match pipe.read(&mut chunk[..want]).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading background process output failed");
                    break;
                }
            };
            lock(shared.ring(stream)).push(&chunk[..n]);
            shared.bump();
        }
    }))
}

/// Wait for both readers to reach end-of-file after the leader exited, for at most
/// `timeout` of idle pipes: in `hold_unread` mode a reader waiting for its consumer is not
/// idle, so a slow consumer never loses the end of the output (unless the process was
/// killed).
async fn drain(shared: &Shared, drained: &mut mpsc::Receiver<()>, timeout: Duration) {
    loop {
        let before = *shared.changes.borrow();
        if tokio::time::timeout(timeout, drained.recv()).await.is_ok() {
            return;
        }
        let Some(hold) = &shared.hold else {
            return;
        };
        let progressed = *shared.changes.borrow() != before;
        let killed = lock(&shared.leader).killed;
        // A killed process's exit is not held back by a consumer that stopped reading.
        if killed || (!progressed && hold.waiting.load(Ordering::SeqCst) == 0) {
            return;
        }
    }
}

/// A lock that a task panicking while holding it leaves usable (a ring mid-push, the leader).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
