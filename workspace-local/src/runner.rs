//! Foreground execution of one process tree: spawn, stream, cap, time out, cancel, clean up.
//!
//! [`run`] owns the whole life of one command. The process is the leader of a new process group,
//! so a timeout, a cancel, or dropping the future reaches everything it started. Both pipes are
//! read concurrently by their own tasks that keep draining after the retention cap, so a chatty
//! command can never block on a full pipe; and once the process has exited, its output is
//! drained for at most [`RunOptions::drain_timeout`], so a background grandchild that still holds
//! the pipes (`sleep 300 &`) cannot hang the call.
//!
//! What happens to members of the group that are still running after the command *exited on its
//! own* (a `server > log 2>&1 &` daemon) is up to [`RunOptions::leftovers`]: by default they are
//! left running, as a shell would, and [`run_tracked`] hands their group back so the owner can
//! kill it later. Timeouts, cancels and dropped futures never leave anything behind.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use workspace_core::command::DEFAULT_OUTPUT_LIMIT;
use workspace_core::output::{CappedBuffer, Utf8Decoder};
use workspace_core::{CommandResult, OutputCallback, SandboxError, Stdin};

use crate::group::{KillOnDrop, ProcessGroup};

/// Default time between SIGTERM and SIGKILL when a command is stopped.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_millis(500);
/// Default time to keep reading output after the process exited.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Size of the buffer each pipe reader reuses.
const READ_CHUNK: usize = 64 * 1024;
/// How often the grace period checks whether the group has already gone.
const GROUP_POLL: Duration = Duration::from_millis(10);

/// What to run: a program, its arguments, a working directory and the complete environment.
#[derive(Clone)]
pub struct ProcessSpec {
    /// The program (looked up in `PATH` of the spawning process when it has no `/`).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The working directory.
    pub cwd: PathBuf,
    /// The complete environment: the child starts from an empty one, so nothing of this
    /// process's own environment leaks in unless it is listed here.
    pub env: Vec<(OsString, OsString)>,
    /// Start the process in a new session (`setsid`) instead of only a new process group. It
    /// still leads its own group (group id = pid), so group signals work the same, but it has
    /// no controlling terminal: it cannot read from or inject keystrokes into the caller's.
    pub new_session: bool,
}

impl fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets; names are enough to debug with.
        f.debug_struct("ProcessSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("new_session", &self.new_session)
            .finish()
    }
}

impl ProcessSpec {
    /// Run `program` in `cwd` with no arguments and an empty environment.
    pub fn new(program: impl Into<OsString>, cwd: impl Into<PathBuf>) -> Self {
        ProcessSpec {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.into(),
            env: Vec::new(),
            new_session: false,
        }
    }

    /// Append an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Add an environment variable (a later one with the same name wins).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A tokio command for this spec, as the leader of a new process group (and session, with
    /// [`ProcessSpec::new_session`]).
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        if self.new_session {
            // SAFETY: the closure runs in the forked child before exec and only makes the
            // async-signal-safe `setsid` system call. setsid makes the child the leader of a new
            // session and of a new group whose id is its pid, exactly what `process_group(0)`
            // gives (which must not be set too: setsid fails for a group leader). Done here
            // rather than by a `setsid` program so that no signal can reach the child in our
            // own group between spawn and exec.
            unsafe {
                cmd.pre_exec(|| {
                    nix::unistd::setsid()
                        .map(|_| ())
                        .map_err(std::io::Error::from)
                });
            }
        } else {
            cmd.process_group(0);
        }
        cmd
    }

    /// The error for a failed spawn, naming the program and directory.
    pub(crate) fn spawn_error(&self, e: std::io::Error) -> SandboxError {
        SandboxError::io(
            format!(
                "spawning {} in {}",
                self.program.to_string_lossy(),
                self.cwd.display()
            ),
            e,
        )
    }
}

/// What to do with members of the process group still running after the command exited on its
/// own (it was not timed out or cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Leftovers {
    /// Leave them running, as an interactive shell would: `server > log 2>&1 &` keeps serving.
    /// [`run_tracked`] reports the group so its owner can kill it later.
    #[default]
    Leave,
    /// SIGKILL the whole group once the command has exited and its output is drained.
    Kill,
}

/// How to run one command.
#[derive(Clone)]
pub struct RunOptions {
    /// Kill the tree after this long (counted from spawn); the result has exit code 124.
    pub timeout: Option<Duration>,
    /// Kill the tree when this is cancelled; the result has exit code 137.
    pub cancel: Option<CancellationToken>,
    /// Receives stdout text as it arrives, on the reader task: it must not block.
    pub on_stdout: Option<OutputCallback>,
    /// Receives stderr text as it arrives, on the reader task: it must not block.
    pub on_stderr: Option<OutputCallback>,
    /// Standard input: closed, or these bytes then end-of-file.
    pub stdin: Stdin,
    /// Bytes of each stream retained in the result (head and tail; the middle is counted).
    pub output_limit: usize,
    /// Time between SIGTERM and SIGKILL when stopping the tree.
    pub kill_grace: Duration,
    /// How long to keep reading output after the process exited.
    pub drain_timeout: Duration,
    /// What to do with a group that outlives a normal exit.
    pub leftovers: Leftovers,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: None,
            cancel: None,
            on_stdout: None,
            on_stderr: None,
            stdin: Stdin::Closed,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            kill_grace: DEFAULT_KILL_GRACE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            leftovers: Leftovers::Leave,
        }
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("timeout", &self.timeout)
            .field("cancel", &self.cancel.is_some())
            .field("on_stdout", &self.on_stdout.is_some())
            .field("on_stderr", &self.on_stderr.is_some())
            .field("stdin", &self.stdin)
            .field("output_limit", &self.output_limit)
            .field("kill_grace", &self.kill_grace)
            .field("drain_timeout", &self.drain_timeout)
            .field("leftovers", &self.leftovers)
            .finish()
    }
}

/// The result of [`run_tracked`].
#[derive(Debug)]
pub struct RunOutcome {
    /// The command's result.
    pub result: CommandResult,
    /// The process group, when members of it were still running after a normal exit with
    /// [`Leftovers::Leave`]. Whoever holds it is responsible for killing it eventually.
    pub leftover: Option<Arc<ProcessGroup>>,
    /// Output was still arriving when the drain timeout passed (a descendant held the pipes);
    /// the result has what arrived until then.
    pub drain_timed_out: bool,
}

/// Run one command to completion. See the [module docs](self) for the semantics.
///
/// A non-zero exit, a timeout (124) and a cancel (137) are results; only a failure to spawn the
/// program is an error ([`SandboxError::Io`]).
pub async fn run(spec: ProcessSpec, opts: RunOptions) -> Result<CommandResult, SandboxError> {
    run_tracked(spec, opts).await.map(|o| o.result)
}

enum Ending {
    Exited,
    TimedOut,
    Cancelled,
}

/// [`run`], also reporting a process group left running after a normal exit.
pub async fn run_tracked(spec: ProcessSpec, opts: RunOptions) -> Result<RunOutcome, SandboxError> {
    let RunOptions {
        timeout,
        cancel,
        on_stdout,
        on_stderr,
        stdin,
        output_limit,
        kill_grace,
        drain_timeout,
        leftovers,
    } = opts;

    let mut cmd = spec.command();
    cmd.stdin(match stdin {
        Stdin::Closed => Stdio::null(),
        Stdin::Bytes(_) => Stdio::piped(),
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spec.spawn_error(e))?;
    let started = Instant::now();
    let Some(pid) = child.id() else {
        // Only possible if the child was already reaped, which nothing here has done.
        return Err(SandboxError::io(
            "reading the pid of a just-spawned process",
            std::io::Error::other("no pid"),
        ));
    };
    let group = Arc::new(ProcessGroup::new(pid));
    let mut guard = KillOnDrop::new(group.clone());

    // Fed from a task so that a child that never reads its stdin cannot block us.
    let _stdin_writer = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Stdin::Bytes(data)) => {
            Some(AbortOnDropHandle::new(tokio::spawn(async move {
                // EPIPE when the child exits without reading everything: expected, not an error.
                let _ = pipe.write_all(&data).await;
                let _ = pipe.shutdown().await;
            })))
        }
        _ => None,
    };

    let out_buf = Arc::new(Mutex::new(CappedBuffer::new(output_limit)));
    let err_buf = Arc::new(Mutex::new(CappedBuffer::new(output_limit)));
    let mut readers = Vec::with_capacity(2);
    if let Some(pipe) = child.stdout.take() {
        readers.push(spawn_reader(pipe, out_buf.clone(), on_stdout));
    }
    if let Some(pipe) = child.stderr.take() {
        readers.push(spawn_reader(pipe, err_buf.clone(), on_stderr));
    }

    let deadline = timeout.map(|t| started + t);
    let (ending, status) = tokio::select! {
        biased;
        status = child.wait() => (Ending::Exited, wait_status(status, &group)?),
        _ = sleep_until_opt(deadline) => (Ending::TimedOut, terminate(&mut child, &group, kill_grace).await?),
        _ = cancelled(cancel.as_ref()) => (Ending::Cancelled, terminate(&mut child, &group, kill_grace).await?),
    };
    let duration = started.elapsed();

    let drain = async {
        for r in readers.iter_mut() {
            let _ = r.await;
        }
    };
    let drain_timed_out = tokio::time::timeout(drain_timeout, drain).await.is_err();
    // Dropping the handles aborts readers still blocked on a pipe some descendant holds open.
    drop(readers);

    let mut leftover = None;
    match ending {
        Ending::TimedOut | Ending::Cancelled => {
            // Descendants may have survived SIGTERM in the window before SIGKILL reached them
            // all (or been forked meanwhile): make sure.
            group.kill();
        }
        Ending::Exited => match leftovers {
            Leftovers::Kill => {
                group.kill();
            }
            Leftovers::Leave => {
                if group.is_alive() {
                    leftover = Some(group.clone());
                }
            }
        },
    }
    guard.disarm();

    let (stdout, stdout_dropped) = take_buffer(&out_buf);
    let (stderr, stderr_dropped) = take_buffer(&err_buf);
    let result = CommandResult::new(exit_code(status), stdout, stderr, duration)
        .with_dropped(stdout_dropped, stderr_dropped);
    let result = match ending {
        Ending::Exited => result,
        Ending::TimedOut => result.into_timed_out(),
        Ending::Cancelled => result.into_killed(),
    };
    Ok(RunOutcome {
        result,
        leftover,
        drain_timed_out,
    })
}

/// The exit code convention of shells: the code itself, or 128 + the signal that killed it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn wait_status(
    status: std::io::Result<ExitStatus>,
    group: &ProcessGroup,
) -> Result<ExitStatus, SandboxError> {
    let status = status.map_err(|e| SandboxError::io("waiting for a command", e))?;
    group.mark_leader_reaped();
    Ok(status)
}

/// SIGTERM the group, give it `grace` to go, then SIGKILL it and reap the leader.
pub(crate) async fn terminate(
    child: &mut Child,
    group: &ProcessGroup,
    grace: Duration,
) -> Result<ExitStatus, SandboxError> {
    group.signal(Signal::SIGTERM);
    let grace_end = Instant::now() + grace;
    let early = tokio::select! {
        status = child.wait() => Some(wait_status(status, group)?),
        _ = tokio::time::sleep_until(grace_end) => None,
    };
    if early.is_some() {
        // The leader went quickly; its descendants get the rest of the grace period too.
        while group.is_alive() && Instant::now() < grace_end {
            tokio::time::sleep(GROUP_POLL).await;
        }
    }
    group.kill();
    match early {
        Some(status) => Ok(status),
        None => wait_status(child.wait().await, group),
    }
}

fn spawn_reader<R>(
    mut pipe: R,
    buf: Arc<Mutex<CappedBuffer>>,
    callback: Option<OutputCallback>,
) -> AbortOnDropHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    AbortOnDropHandle::new(tokio::spawn(async move {
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut decoder = Utf8Decoder::default();
        loop {
            let n = match pipe.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading command output failed");
                    break;
                }
            };
            let data = &chunk[..n];
            buf.lock().unwrap_or_else(|p| p.into_inner()).push(data);
            if let Some(cb) = &callback {
                let text = decoder.decode(data);
                if !text.is_empty() {
                    cb(&text);
                }
            }
        }
        if let Some(cb) = &callback {
            let rest = decoder.finish();
            if !rest.is_empty() {
                cb(&rest);
            }
        }
    }))
}

fn take_buffer(buf: &Mutex<CappedBuffer>) -> (String, u64) {
    let b = buf.lock().unwrap_or_else(|p| p.into_inner());
    (b.to_string_lossy(), b.dropped())
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}
