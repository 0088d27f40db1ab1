//! Stateful Python interpreter contexts of one sandbox, kept as the daemon keeps them
//! (`toolbox/process/interpreter/` at v0.190.0): a context is one long-lived Python worker
//! whose globals, imports and working directory carry over from one execution to the next, and
//! a context's executions run one at a time, in the order they arrived.
//!
//! The worker is the emulator's own script (`interpreter_worker.py`, embedded), started the way
//! session commands start ([`SandboxLayout::command_spec`]: in the sandbox's file view, with its
//! env and the context's working directory), and spoken to over a private line protocol on its
//! stdin and stdout (the script's docstring has it). As on the daemon:
//!
//! - a timeout interrupts the worker with SIGINT (sent to Python itself, never to the bubblewrap
//!   process leading its group, whose death would take the worker along); the execution ends
//!   `interrupted` and the context keeps its state. A worker still busy [`INTERRUPT_GRACE`]
//!   later is killed, and the context's next use starts a fresh one (its state is then lost),
//!   as the daemon restarts a dead worker when the context is next asked for;
//! - deleting a context kills its worker with everything it started, and so do the sandbox's
//!   stop or delete and the emulator's shutdown ([`Interpreters::shutdown`],
//!   [`Interpreters::kill_now`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use workspace_core::{OutputOffsets, ProcessState};
use workspace_local::background::{BackgroundOptions, BackgroundProcess};

use crate::error::ApiError;
use crate::layout::{SandboxLayout, find_program, shell_single_quote};
use crate::runtime::process_tree;
use crate::sync::lock;

/// The context of executions that name none; made on first use, never listed or deleted.
pub(crate) const DEFAULT_CONTEXT: &str = "default";
/// The one language contexts run.
pub(crate) const PYTHON: &str = "python";
/// How long an interrupted execution may take to stop before its worker is killed (the
/// daemon's `gracePeriod`).
pub(crate) const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// How long a new worker may take to announce itself.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Reply bytes the worker may write ahead of the emulator before it blocks (nothing is lost).
const REPLY_BUFFER: usize = 1024 * 1024;
/// Bytes of a worker's stderr kept to explain why it did not start.
const STDERR_KEPT: usize = 4 * 1024;
/// Name of the worker script in the sandbox's daemon state dir.
const WORKER_FILE: &str = "interpreter-worker.py";
const WORKER_SCRIPT: &str = include_str!("interpreter_worker.py");

/// Why a context could not be made, found or started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InterpreterError {
    /// No Python 3 where sandbox commands look for programs.
    #[error(
        "python3 is not available on this machine (the Daytona emulator runs interpreter \
         contexts with the host's Python and installs nothing)"
    )]
    NoPython,
    /// The worker process did not start or did not announce itself.
    #[error("failed to start the Python worker: {0}")]
    Start(String),
    /// No context has this id.
    #[error("context with ID '{0}' not found")]
    NotFound(String),
    /// The sandbox refuses the working directory (outside its directories, malformed).
    #[error("{}", .0.message)]
    Refused(ApiError),
    /// The context was deleted, or the sandbox stopped, while it was being made or started.
    #[error("the context was shut down")]
    Closed,
}

/// A context as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextInfo {
    /// A UUID, or `default`.
    pub(crate) id: String,
    /// The working directory as given (the home dir when none was).
    pub(crate) cwd: String,
    /// When it was made.
    pub(crate) created_at: DateTime<Utc>,
    /// Whether its worker is running.
    pub(crate) active: bool,
    /// Always `python`.
    pub(crate) language: &'static str,
}

/// One message of an execution's output, as the daemon streams it: every field present, empty
/// where the kind has nothing to say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct OutputChunk {
    /// `stdout`, `stderr`, `error` or `control`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Output text (`stdout`, `stderr`), or `completed` / `interrupted` (`control`).
    pub(crate) text: String,
    /// The exception's class name (`error`).
    pub(crate) name: String,
    /// The exception's message (`error`).
    pub(crate) value: String,
    /// The frames of the user's code and the exception (`error`).
    pub(crate) traceback: String,
}

/// What to run in a context.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    /// Python source.
    pub(crate) code: String,
    /// Set in the worker's environment for this execution only.
    pub(crate) envs: BTreeMap<String, String>,
    /// `None`: no limit.
    pub(crate) timeout: Option<Duration>,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The code ran to its end, raised, or exited (`control: completed`).
    Completed,
    /// The code stopped on a KeyboardInterrupt: the timeout's SIGINT, or its own
    /// (`control: interrupted`).
    Interrupted,
    /// The timeout passed and the worker did not stop within the grace: it was killed.
    Killed,
    /// The worker exited while the code ran.
    WorkerEnded,
    /// The context was deleted or the sandbox stopped.
    ContextClosed,
    /// No worker could be started for it.
    StartFailed(String),
}

/// The interpreter contexts of one sandbox runtime.
#[derive(Debug)]
pub(crate) struct Interpreters {
    layout: Arc<SandboxLayout>,
    registry: Mutex<Registry>,
    /// Held while the default context is looked up or made, so two first uses make one.
    default_turn: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Registry {
    contexts: BTreeMap<String, Arc<Context>>,
    /// Bumped by every shutdown: a context whose worker was starting across one is not kept.
    generation: u64,
}

impl Interpreters {
    /// No contexts yet, for the sandbox with this layout.
    pub(crate) fn new(layout: Arc<SandboxLayout>) -> Self {
        Interpreters {
            layout,
            registry: Mutex::new(Registry::default()),
            default_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// A new context with its worker running in `cwd` (a sandbox path; the home dir when
    /// `None` or empty) with the sandbox env `env`.
    pub(crate) async fn create(
        &self,
        cwd: Option<&str>,
        env: BTreeMap<String, String>,
    ) -> Result<Arc<Context>, InterpreterError> {
        self.add(uuid::Uuid::new_v4().to_string(), cwd, env).await
    }

    /// The context `id`, its worker started again if it had died.
    pub(crate) async fn get(&self, id: &str) -> Result<Arc<Context>, InterpreterError> {
        let context = lock(&self.registry)
            .contexts
            .get(id)
            .cloned()
            .ok_or_else(|| InterpreterError::NotFound(id.to_string()))?;
        context.ensure_worker().await?;
        Ok(context)
    }

    /// The default context (in the home dir), made with `env` on first use; its worker started
    /// again if it had died.
    pub(crate) async fn default_context(
        &self,
        env: BTreeMap<String, String>,
    ) -> Result<Arc<Context>, InterpreterError> {
        let _one_at_a_time = self.default_turn.lock().await;
        let existing = lock(&self.registry).contexts.get(DEFAULT_CONTEXT).cloned();
        match existing {
            Some(context) => {
                context.ensure_worker().await?;
                Ok(context)
            }
            None => self.add(DEFAULT_CONTEXT.to_string(), None, env).await,
        }
    }

    /// Every context, the default one included, oldest first.
    pub(crate) fn list(&self) -> Vec<ContextInfo> {
        let mut infos: Vec<ContextInfo> = lock(&self.registry)
            .contexts
            .values()
            .map(|c| c.info())
            .collect();
        infos.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        infos
    }

    /// Forgets context `id` and kills its worker, with everything the worker started.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), InterpreterError> {
        let context = lock(&self.registry)
            .contexts
            .remove(id)
            .ok_or_else(|| InterpreterError::NotFound(id.to_string()))?;
        context.close().await;
        Ok(())
    }

    /// Closes every context and kills their workers. New contexts may be made afterwards (a
    /// restarted sandbox).
    pub(crate) async fn shutdown(&self) {
        let contexts = {
            let mut registry = lock(&self.registry);
            registry.generation += 1;
            std::mem::take(&mut registry.contexts)
        };
        futures::future::join_all(
            contexts
                .into_values()
                .map(|c| async move { c.close().await }),
        )
        .await;
    }

    /// SIGKILLs every worker and what it started, without waiting: for a runtime dropped
    /// without [`Interpreters::shutdown`].
    pub(crate) fn kill_now(&self) {
        for context in lock(&self.registry).contexts.values() {
            context.kill_now();
        }
    }

    async fn add(
        &self,
        id: String,
        cwd: Option<&str>,
        env: BTreeMap<String, String>,
    ) -> Result<Arc<Context>, InterpreterError> {
        let generation = lock(&self.registry).generation;
        let cwd = cwd
            .filter(|c| !c.is_empty())
            .unwrap_or(self.layout.home_dir())
            .to_string();
        let context = Context::new(id, cwd, self.layout.clone(), env);
        if let Err(e) = context.ensure_worker().await {
            context.close().await;
            return Err(e);
        }
        let kept = {
            let mut registry = lock(&self.registry);
            let kept = registry.generation == generation;
            if kept {
                registry
                    .contexts
                    .insert(context.id.clone(), context.clone());
            }
            kept
        };
        if !kept {
            context.close().await;
            return Err(InterpreterError::Closed);
        }
        Ok(context)
    }
}

/// One queued execution: its output goes to `out`, how it ended to `ending`.
struct Job {
    execution: Execution,
    out: mpsc::Sender<OutputChunk>,
    ending: oneshot::Sender<Ending>,
}

/// One interpreter context: a worker (restarted when it dies) and its queue of executions.
pub(crate) struct Context {
    id: String,
    cwd: String,
    created_at: DateTime<Utc>,
    layout: Arc<SandboxLayout>,
    /// The sandbox env the worker starts with (kept for restarts).
    env: BTreeMap<String, String>,
    worker: Mutex<Option<Arc<Worker>>>,
    /// Held while a worker starts, so one context never runs two.
    starting: tokio::sync::Mutex<()>,
    /// Executions in arrival order, run by the context's queue task.
    queue: mpsc::UnboundedSender<Job>,
    closed: CancellationToken,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The env may hold secrets; its names are enough to debug with.
        f.debug_struct("Context")
            .field("id", &self.id)
            .field("cwd", &self.cwd)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("worker", &lock(&self.worker))
            .field("closed", &self.closed.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context with no worker yet, and the task that runs its executions (which ends once
    /// the context is dropped).
    fn new(
        id: String,
        cwd: String,
        layout: Arc<SandboxLayout>,
        env: BTreeMap<String, String>,
    ) -> Arc<Self> {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        let context = Arc::new(Context {
            id,
            cwd,
            created_at: Utc::now(),
            layout,
            env,
            worker: Mutex::new(None),
            starting: tokio::sync::Mutex::new(()),
            queue,
            closed: CancellationToken::new(),
        });
        // A weak handle: the queue must not keep its own context alive.
        let weak: Weak<Context> = Arc::downgrade(&context);
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                let Some(context) = weak.upgrade() else {
                    return;
                };
                let ending = context.run(job.execution, job.out).await;
                // The client may have gone; the execution counts all the same.
                let _ = job.ending.send(ending);
            }
        });
        context
    }

    /// The context's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The context as the API shows it.
    pub(crate) fn info(&self) -> ContextInfo {
        ContextInfo {
            id: self.id.clone(),
            cwd: self.cwd.clone(),
            created_at: self.created_at,
            active: self.live_worker().is_some(),
            language: PYTHON,
        }
    }

    /// Queues `execution` behind those already queued; its output chunks go to `out` (the
    /// execution waits while `out` is full, and carries on without it once it is closed). The
    /// receiver gets how it ended (an error: the context is gone).
    pub(crate) fn enqueue(
        &self,
        execution: Execution,
        out: mpsc::Sender<OutputChunk>,
    ) -> oneshot::Receiver<Ending> {
        let (ending, receiver) = oneshot::channel();
        let job = Job {
            execution,
            out,
            ending,
        };
        if let Err(mpsc::error::SendError(job)) = self.queue.send(job) {
            let _ = job.ending.send(Ending::ContextClosed);
        }
        receiver
    }

    fn live_worker(&self) -> Option<Arc<Worker>> {
        lock(&self.worker)
            .clone()
            .filter(|w| w.process.exit_code().is_none())
    }

    /// The running worker, started (again) if there is none.
    async fn ensure_worker(&self) -> Result<Arc<Worker>, InterpreterError> {
        let _starting = self.starting.lock().await;
        if let Some(worker) = self.live_worker() {
            return Ok(worker);
        }
        if self.closed.is_cancelled() {
            return Err(InterpreterError::Closed);
        }
        let worker = Arc::new(Worker::start(&self.layout, &self.cwd, &self.env).await?);
        let stored = {
            let mut slot = lock(&self.worker);
            // Checked under the slot's lock, which `close` takes after cancelling: a worker
            // started while the context closed is either seen there or refused here.
            let open = !self.closed.is_cancelled();
            if open {
                *slot = Some(worker.clone());
            }
            open
        };
        if !stored {
            worker.stop().await;
            return Err(InterpreterError::Closed);
        }
        Ok(worker)
    }

    /// Runs one execution to its end.
    async fn run(&self, execution: Execution, out: mpsc::Sender<OutputChunk>) -> Ending {
        if self.closed.is_cancelled() {
            return Ending::ContextClosed;
        }
        let worker = match self.ensure_worker().await {
            Ok(worker) => worker,
            Err(InterpreterError::Closed) => return Ending::ContextClosed,
            Err(e) => return Ending::StartFailed(e.to_string()),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let mut request = serde_json::json!({
            "id": id,
            "code": execution.code,
            "envs": execution.envs,
        })
        .to_string()
        .into_bytes();
        request.push(b'\n');
        if worker.process.write_stdin(&request).await.is_err() {
            return self.worker_lost();
        }
        let mut replies = worker.replies.lock().await;
        let mut client = Some(out);
        let mut pending: Option<OutputChunk> = None;
        let mut ending: Option<Ending> = None;
        let mut limit = execution
            .timeout
            .and_then(|t| Instant::now().checked_add(t));
        let mut interrupted = false;
        loop {
            if pending.is_none()
                && let Some(ending) = ending.take()
            {
                return ending;
            }
            let step = tokio::select! {
                biased;
                () = self.closed.cancelled() => Step::Closed,
                () = sleep_until(limit), if ending.is_none() => Step::Limit,
                room = reserve(client.clone()), if pending.is_some() => Step::Room(room),
                line = replies.next_line(&worker.process), if pending.is_none() => Step::Line(line),
            };
            match step {
                Step::Closed => return Ending::ContextClosed,
                Step::Limit if !interrupted => {
                    worker.interrupt();
                    interrupted = true;
                    limit = Instant::now().checked_add(INTERRUPT_GRACE);
                }
                Step::Limit => {
                    worker.stop().await;
                    return Ending::Killed;
                }
                Step::Room(Some(permit)) => {
                    if let Some(chunk) = pending.take() {
                        permit.send(chunk);
                    }
                }
                Step::Room(None) => {
                    client = None;
                    pending = None;
                }
                Step::Line(None) => return self.worker_lost(),
                Step::Line(Some(line)) => {
                    let Some(chunk) = chunk_of(&line, &id) else {
                        continue;
                    };
                    if chunk.kind == "control" {
                        ending = match chunk.text.as_str() {
                            "completed" => Some(Ending::Completed),
                            "interrupted" => Some(Ending::Interrupted),
                            _ => None,
                        };
                    }
                    if client.is_some() {
                        pending = Some(chunk);
                    }
                }
            }
        }
    }

    fn worker_lost(&self) -> Ending {
        if self.closed.is_cancelled() {
            Ending::ContextClosed
        } else {
            Ending::WorkerEnded
        }
    }

    /// Refuses further executions and kills the worker with everything it started.
    async fn close(&self) {
        self.closed.cancel();
        let worker = lock(&self.worker).take();
        if let Some(worker) = worker {
            worker.stop().await;
        }
    }

    fn kill_now(&self) {
        self.closed.cancel();
        if let Some(worker) = lock(&self.worker).as_ref() {
            if let Some(pid) = worker.process.pid() {
                process_tree::signal_all(&process_tree::descendants(pid), Signal::SIGKILL);
            }
            worker.process.group().kill();
        }
    }
}

/// What one turn of an execution's loop brought.
enum Step {
    Closed,
    Limit,
    /// Room for the pending chunk, or `None`: the client is gone.
    Room(Option<mpsc::OwnedPermit<OutputChunk>>),
    /// A reply line, or `None`: the worker exited.
    Line(Option<Vec<u8>>),
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn reserve(
    client: Option<mpsc::Sender<OutputChunk>>,
) -> Option<mpsc::OwnedPermit<OutputChunk>> {
    client?.reserve_owned().await.ok()
}

/// A reply line as the worker writes it.
#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    traceback: String,
    #[serde(default)]
    pid: Option<u32>,
}

/// The chunk a reply line carries for execution `id`; `None` for anything else.
fn chunk_of(line: &[u8], id: &str) -> Option<OutputChunk> {
    let reply: Reply = match serde_json::from_slice(line) {
        Ok(reply) => reply,
        Err(e) => {
            tracing::debug!(error = %e, "an interpreter worker wrote a line that is no reply");
            return None;
        }
    };
    if reply.id.as_deref() != Some(id) {
        return None;
    }
    Some(OutputChunk {
        kind: reply.kind,
        text: reply.text,
        name: reply.name,
        value: reply.value,
        traceback: reply.traceback,
    })
}

/// A running worker process.
struct Worker {
    process: Arc<BackgroundProcess>,
    /// Python's own pid, which under bubblewrap is not the group leader's.
    pid: u32,
    /// Its reply channel; read by one execution at a time.
    replies: tokio::sync::Mutex<Replies>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("process", &self.process)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts a worker in `cwd` (a sandbox path) with the sandbox env `env`, and waits until it
    /// says it is ready.
    async fn start(
        layout: &SandboxLayout,
        cwd: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Worker, InterpreterError> {
        let python = find_program("python3")
            .or_else(|| find_program("python"))
            .ok_or(InterpreterError::NoPython)?;
        let script = install_script(layout)?;
        let line = format!(
            "exec {} {}",
            shell_single_quote(&python.to_string_lossy()),
            shell_single_quote(&script)
        );
        let prepared = layout
            .command_spec(&line, Some(cwd), env)
            .map_err(InterpreterError::Refused)?;
        let options = BackgroundOptions {
            stdin: true,
            retention: REPLY_BUFFER,
            hold_unread: true,
            ..BackgroundOptions::default()
        };
        let process = BackgroundProcess::spawn_with(prepared.spec.clone(), options)
            .map_err(|e| InterpreterError::Start(e.to_string()))?;
        let mut replies = Replies::new(&process);
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = replies.next_line(&process).await {
                if let Ok(reply) = serde_json::from_slice::<Reply>(&line)
                    && reply.kind == "ready"
                    && let Some(pid) = reply.pid
                {
                    return Some(pid);
                }
            }
            None
        })
        .await;
        drop(prepared);
        let why = match ready {
            Ok(Some(pid)) => {
                return Ok(Worker {
                    process,
                    pid,
                    replies: tokio::sync::Mutex::new(replies),
                });
            }
            Ok(None) => match replies.stderr_tail() {
                Some(said) => format!("it exited before it was ready: {said}"),
                None => "it exited before it was ready".to_string(),
            },
            Err(_) => format!("it did not start within {} s", READY_TIMEOUT.as_secs()),
        };
        process_tree::kill_with_escapees(&process, None).await;
        Err(InterpreterError::Start(why))
    }

    /// SIGINT to Python alone.
    fn interrupt(&self) {
        if let Some(python) = self.python() {
            process_tree::signal_all(&[python], Signal::SIGINT);
        }
    }

    /// Kills the worker with everything it started, Python first.
    async fn stop(&self) {
        process_tree::kill_with_escapees(&self.process, self.python()).await;
    }

    /// Python's pid while it still belongs to the worker's process group (a pid of a process
    /// that has gone may have been handed to another).
    fn python(&self) -> Option<u32> {
        (process_tree::group_of(self.pid) == Some(self.process.group().id())).then_some(self.pid)
    }
}

/// Writes the worker script into the sandbox's daemon state dir (unless it is there already)
/// and returns its path as sandbox commands see it.
fn install_script(layout: &SandboxLayout) -> Result<String, InterpreterError> {
    let host = layout.state_host().join(WORKER_FILE);
    if std::fs::read(&host).ok().as_deref() != Some(WORKER_SCRIPT.as_bytes()) {
        let failed = |e: std::io::Error| {
            InterpreterError::Start(format!("cannot write the worker script: {e}"))
        };
        // Written aside and renamed into place: a worker starting meanwhile never reads half.
        let mut file = tempfile::NamedTempFile::new_in(layout.state_host()).map_err(failed)?;
        file.write_all(WORKER_SCRIPT.as_bytes()).map_err(failed)?;
        file.persist(&host).map_err(|e| failed(e.error))?;
    }
    layout.state_path_for_command(&host).ok_or_else(|| {
        InterpreterError::Start("the worker script is outside the daemon state dir".to_string())
    })
}

/// A worker's stdout read as lines. Every await is on a change counter, and everything read is
/// kept here first, so a `next_line` dropped half-way loses nothing.
struct Replies {
    changes: watch::Receiver<u64>,
    offsets: OutputOffsets,
    pending: Vec<u8>,
    /// How much of `pending` is known to hold no newline.
    scanned: usize,
    stderr: Vec<u8>,
}

impl Replies {
    fn new(process: &BackgroundProcess) -> Self {
        Replies {
            changes: process.changes(),
            offsets: OutputOffsets::default(),
            pending: Vec::new(),
            scanned: 0,
            stderr: Vec::new(),
        }
    }

    /// The next line (without its newline); `None` once the worker exited and every line was
    /// read.
    async fn next_line(&mut self, process: &BackgroundProcess) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = self.pending[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
            {
                let end = self.scanned + at;
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                self.scanned = 0;
                return Some(line);
            }
            self.scanned = self.pending.len();
            self.changes.borrow_and_update();
            let output = process.output_since(self.offsets);
            self.offsets = output.next;
            self.stderr.extend_from_slice(&output.stderr);
            if self.stderr.len() > STDERR_KEPT {
                let cut = self.stderr.len() - STDERR_KEPT;
                self.stderr.drain(..cut);
            }
            if !output.stdout.is_empty() {
                self.pending.extend_from_slice(&output.stdout);
                continue;
            }
            if matches!(output.state, ProcessState::Exited(_)) {
                return None;
            }
            if self.changes.changed().await.is_err() {
                return None;
            }
        }
    }

    /// What the worker said on stderr, if anything.
    fn stderr_tail(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stderr).trim().to_string();
        (!text.is_empty()).then_some(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::layout::Isolation;
    use crate::runtime::SandboxRuntime;

    fn layout() -> (tempfile::TempDir, Arc<SandboxLayout>) {
        let dir = tempfile::tempdir().unwrap();
        let layout =
            SandboxLayout::create_with(&dir.path().join("sb"), "/home/daytona", Isolation::Host)
                .unwrap();
        (dir, Arc::new(layout))
    }

    /// Whether `pid` exists (a zombie too: the worker's reaper runs as long as the test holds
    /// its context).
    fn exists(pid: u32) -> bool {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
    }

    async fn gone(pid: u32) -> bool {
        for _ in 0..200 {
            if !exists(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    fn python_of(context: &Context) -> u32 {
        lock(&context.worker).as_ref().unwrap().pid
    }

    #[tokio::test]
    async fn a_worker_that_cannot_start_says_why() {
        let (_d, layout) = layout();
        let interpreters = Interpreters::new(layout.clone());
        let missing = format!("{}/missing", layout.home_dir());
        let err = interpreters
            .create(Some(&missing), BTreeMap::new())
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, InterpreterError::Start(_)) && message.contains("No such file"),
            "{message}"
        );
        assert!(interpreters.list().is_empty());
        // Outside the sandbox: the layout's own refusal.
        let err = interpreters
            .create(Some("/etc"), BTreeMap::new())
            .await
            .unwrap_err();
        assert!(matches!(err, InterpreterError::Refused(_)), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_runtime_kills_its_workers() {
        let (_d, layout) = layout();
        let runtime = SandboxRuntime::new(layout);
        let context = runtime
            .interpreters()
            .create(None, BTreeMap::new())
            .await
            .unwrap();
        let pid = python_of(&context);
        assert!(exists(pid));
        assert!(context.info().active);
        drop(runtime);
        assert!(gone(pid).await, "the worker outlived its runtime");
        assert!(!context.info().active);
    }

    #[tokio::test]
    async fn output_chunks_and_endings_reach_the_caller_in_order() {
        let (_d, layout) = layout();
        let interpreters = Interpreters::new(layout);
        let context = interpreters.default_context(BTreeMap::new()).await.unwrap();
        assert_eq!(context.id(), DEFAULT_CONTEXT);
        let (out, mut chunks) = mpsc::channel(1);
        let ending = context.enqueue(
            Execution {
                code: "for i in range(3):\n    print(i)".into(),
                envs: BTreeMap::new(),
                timeout: None,
            },
            out,
        );
        let mut seen = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            seen.push((chunk.kind, chunk.text));
        }
        assert_eq!(ending.await.unwrap(), Ending::Completed);
        let expected: Vec<(String, String)> = [
            ("stdout", "0\n"),
            ("stdout", "1\n"),
            ("stdout", "2\n"),
            ("control", "completed"),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_string(), t.to_string()))
        .collect();
        assert_eq!(seen, expected);
        // A client that is gone does not stop the execution.
        let (out, chunks) = mpsc::channel(1);
        drop(chunks);
        let ending = context.enqueue(
            Execution {
                code: "print('nobody reads this')\nleft = True".into(),
                envs: BTreeMap::new(),
                timeout: None,
            },
            out,
        );
        assert_eq!(ending.await.unwrap(), Ending::Completed);
        interpreters.shutdown().await;
        assert!(interpreters.list().is_empty());
        let (out, _chunks) = mpsc::channel(1);
        let ending = context.enqueue(
            Execution {
                code: "pass".into(),
                envs: BTreeMap::new(),
                timeout: None,
            },
            out,
        );
        assert_eq!(ending.await.unwrap(), Ending::ContextClosed);
    }
}
