//! [`DaytonaSandbox`]: the handle, the state its file API and process manager share, and the
//! retry-once-after-the-sandbox-stopped rule every operation goes through.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daytona_api::sandbox::SandboxState;
use tokio::sync::OnceCell;
use workspace_core::lifecycle::Lifecycle;
use workspace_core::{
    Capabilities, CommandResult, ExecuteCommandOptions, PortUrl, ProcessManager, Result,
    SandboxError, SandboxFilesystem, SandboxInfo, SandboxStatus, StartOutcome, WorkspaceSandbox,
};

use crate::client::DaytonaClient;
use crate::error::DaytonaError;
use crate::sandbox::Sandbox;

use super::builder::{DaytonaSandboxBuilder, Options};
use super::classify::{Class, classify};
use super::files::DaytonaFiles;
use super::processes::{DaytonaProcesses, ProcessBook};
use super::resident::ResidentSlot;
use super::spare::SpareSession;
use super::{command, info};

/// The provider name reported by [`WorkspaceSandbox::provider`].
pub const PROVIDER: &str = "daytona";

/// The Daytona sandbox a handle is attached to, as of one start.
pub(crate) struct Attached {
    pub(crate) sandbox: Sandbox,
    /// Which start attached it; a failure observed under an older generation must not mark a
    /// newer attachment dead.
    pub(crate) generation: u64,
    work_dir: OnceCell<String>,
    /// A command session made ahead of the next command.
    pub(crate) spare: SpareSession,
    /// The shell that runs warm commands (see [`super::resident`]).
    pub(crate) resident: ResidentSlot,
}

impl Attached {
    /// The sandbox's default working directory, asked of the toolbox once per attachment.
    pub(crate) async fn work_dir(&self) -> std::result::Result<String, DaytonaError> {
        self.work_dir
            .get_or_try_init(|| self.sandbox.work_dir())
            .await
            .cloned()
    }
}

/// A failure of one attempt of an operation.
pub(crate) enum OpError {
    /// A Daytona call failed before anything was done: retried once if it says the sandbox
    /// stopped underneath.
    Daytona(DaytonaError),
    /// Final: returned as is.
    Final(SandboxError),
}

impl From<DaytonaError> for OpError {
    fn from(e: DaytonaError) -> Self {
        OpError::Daytona(e)
    }
}

impl From<SandboxError> for OpError {
    fn from(e: SandboxError) -> Self {
        OpError::Final(e)
    }
}

/// State shared by the handle, its file API and its process manager.
pub(crate) struct Shared {
    pub(crate) opts: Options,
    pub(crate) client: DaytonaClient,
    pub(crate) lifecycle: Lifecycle,
    attached: Mutex<Option<Arc<Attached>>>,
    generation: AtomicU64,
    /// A start ran at least once, so a failed one may have left a sandbox for `destroy`.
    start_attempted: AtomicBool,
    created_at: DateTime<Utc>,
    last_used_at: Mutex<Option<DateTime<Utc>>>,
    pub(crate) processes: ProcessBook,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(opts: Options, client: DaytonaClient) -> Self {
        Shared {
            lifecycle: Lifecycle::new(opts.id.clone()),
            opts,
            client,
            attached: Mutex::new(None),
            generation: AtomicU64::new(0),
            start_attempted: AtomicBool::new(false),
            created_at: Utc::now(),
            last_used_at: Mutex::new(None),
            processes: ProcessBook::default(),
        }
    }

    pub(crate) fn builder(&self) -> &DaytonaSandboxBuilder {
        &self.opts.builder
    }

    pub(crate) fn current(&self) -> Option<Arc<Attached>> {
        lock(&self.attached).clone()
    }

    pub(crate) fn attach(&self, sandbox: Sandbox) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *lock(&self.attached) = Some(Arc::new(Attached {
            sandbox,
            generation,
            work_dir: OnceCell::new(),
            spare: SpareSession::default(),
            resident: ResidentSlot::default(),
        }));
    }

    pub(crate) fn take_attached(&self) -> Option<Arc<Attached>> {
        lock(&self.attached).take()
    }

    pub(crate) fn restore_attached(&self, attached: Arc<Attached>) {
        let mut slot = lock(&self.attached);
        if slot.is_none() {
            *slot = Some(attached);
        }
    }

    /// Returns whether an earlier start was attempted.
    pub(crate) fn note_start_attempt(&self) -> bool {
        self.start_attempted.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn start_was_attempted(&self) -> bool {
        self.start_attempted.load(Ordering::Acquire)
    }

    pub(crate) fn touch(&self) {
        *lock(&self.last_used_at) = Some(Utc::now());
    }

    pub(crate) fn last_used_at(&self) -> Option<DateTime<Utc>> {
        *lock(&self.last_used_at)
    }

    pub(crate) fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Start lazily, then the sandbox as attached now.
    pub(crate) async fn attached(&self) -> Result<Arc<Attached>> {
        self.lifecycle.ensure_running(|| self.start_work()).await?;
        self.current().ok_or_else(|| self.lifecycle.not_ready())
    }

    /// The sandbox attached under `generation` stopped underneath: let the next operation start
    /// it again. A newer attachment, or a lifecycle call in progress, is left alone.
    pub(crate) fn mark_dead(&self, generation: u64) {
        if self.generation.load(Ordering::Acquire) == generation
            && self.lifecycle.status() == SandboxStatus::Running
        {
            tracing::info!(sandbox = %self.opts.id, "the Daytona sandbox is no longer running");
            self.lifecycle.set_status(SandboxStatus::Stopped);
            if let Some(attached) = self.current()
                && attached.generation == generation
            {
                attached.spare.close();
                attached.resident.close();
            }
        }
    }

    /// Run `op` against the running sandbox; if it fails because the sandbox stopped (or went)
    /// underneath, start it again (recreating it if gone) and run `op` once more. A second
    /// failure is returned. `op` must only fail with [`OpError::Daytona`] for requests that were
    /// refused without effect.
    pub(crate) async fn with_retry<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut(Arc<Attached>) -> Fut,
        Fut: Future<Output = std::result::Result<T, OpError>>,
    {
        let mut retried = false;
        loop {
            let attached = self.attached().await?;
            match op(attached.clone()).await {
                Ok(v) => return Ok(v),
                Err(OpError::Final(e)) => return Err(e),
                Err(OpError::Daytona(e)) => {
                    if retried || !self.confirm_unavailable(&attached, &e).await {
                        return Err(e.into());
                    }
                    tracing::info!(
                        sandbox = %self.opts.id,
                        error = %e,
                        "the sandbox stopped underneath; starting it again and retrying once"
                    );
                    retried = true;
                }
            }
        }
    }

    /// Whether `err` means the attached sandbox is not running, checked with the control plane;
    /// marks it dead when so. A transient gateway error on a running sandbox also allows the
    /// one retry (the request was refused without effect).
    ///
    /// The future holds nothing borrowed from `err`, so callers may keep the error across it.
    pub(crate) fn confirm_unavailable(
        &self,
        attached: &Arc<Attached>,
        err: &DaytonaError,
    ) -> impl Future<Output = bool> + Send + '_ {
        let unavailable = classify(err) == Class::SandboxUnavailable;
        // On a running sandbox, a plain 404 named something else that is missing (a session,
        // a process), which a retry would not find either.
        let retry_if_running = !matches!(err, DaytonaError::NotFound(_));
        let attached = attached.clone();
        async move {
            if !unavailable {
                return false;
            }
            let mut probe = attached.sandbox.clone();
            match probe.refresh().await {
                Ok(()) if probe.state() == Some(&SandboxState::Started) => retry_if_running,
                Ok(()) => {
                    self.mark_dead(attached.generation);
                    true
                }
                Err(e) if e.is_not_found() => {
                    self.mark_dead(attached.generation);
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot ask the API whether the sandbox runs");
                    false
                }
            }
        }
    }
}

/// A [`WorkspaceSandbox`] backed by a [Daytona](https://daytona.io) cloud sandbox.
///
/// - **Lazy start and reconnection.** The first command, file operation or `start()` finds the
///   sandbox by id (the [`id`](DaytonaSandboxBuilder::id) option), else by name, and reports
///   `Connected`; a stopped or archived one is started, one in `error`/`build_failed` is
///   recovered when Daytona says it can be, else replaced; transitional states are waited out
///   within the creation timeout. Otherwise it creates one (`Created`): from the snapshot if
///   set, else from the image with its resources, else from Daytona's default snapshot. Two
///   handles that race to create the same name share one sandbox: the loser of the 409 adopts
///   it.
/// - **Commands** run one per Daytona session, asynchronously, with output followed live over
///   WebSocket into the callbacks and the capped result, byte for byte (a missing final
///   newline stays missing) except NUL bytes, which Daytona's log labellers drop unless
///   [`byte_exact_output`](DaytonaSandboxBuilder::byte_exact_output) is on. The exit code is
///   the one the command's wrapper prints after it exits, else the server's command record
///   (never inferred from the stream ending); the result is complete as the command exits,
///   so processes it left holding its output cannot hold it up (they are stopped with its
///   session; their later output is not part of it). A dropped stream is followed again from the
///   last byte seen. Timeouts count from the spawn; a timeout, a cancel or a dropped future
///   deletes the session, which kills the command's whole process group. Every session is
///   deleted when its command ends. Once a handle has run a command it keeps one idle session
///   ready for the next, so a command waits only for its exec and its log stream (see
///   [`spare_session`](DaytonaSandboxBuilder::spare_session)). Per-command env values travel
///   base64 encoded, so they never appear in the command text Daytona stores.
/// - **Warm commands on a resident shell.** After its first command a handle also makes a
///   resident shell: one long-lived session command whose log it follows over one WebSocket
///   kept open. Later commands are sent to it as one input request each and their output
///   arrives on that socket, so a warm command costs one request on a pooled connection and
///   opens no connection; the exit code, the timeout and cancel results and the streams are
///   the same (see [`resident_shell`](DaytonaSandboxBuilder::resident_shell)).
/// - **Retry once** when an operation finds the sandbox stopped (idle auto-stop) or gone before
///   anything was done: start or recreate it, then try again. A command that may already have
///   run is never re-run.
/// - **Keepalive.** While a command runs, the sandbox's activity is refreshed every third of
///   the auto-stop interval, so Daytona does not stop it mid-command.
/// - [`filesystem`](WorkspaceSandbox::filesystem) uses the toolbox file API (the same disk the
///   commands see); [`processes`](WorkspaceSandbox::processes) runs background processes in
///   sessions of their own, addressable by id from another handle to the same sandbox.
/// - `stop` and `destroy` return Daytona's errors; `destroy` also removes a sandbox that a
///   failed start left behind. Dropping the handle leaves the sandbox as it is (Daytona's
///   auto-stop, auto-archive and auto-delete intervals apply); another handle with the same
///   id or name picks it up again.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use workspace_core::{ExecuteCommandOptions, WorkspaceSandbox};
/// use workspace_daytona::DaytonaSandbox;
///
/// // An in-process emulator stands in for Daytona Cloud here; against the cloud, leave out
/// // `api_url` and set DAYTONA_API_KEY.
/// let emulator = daytona_emulator::Emulator::builder().api_key("doc-key").start().await?;
/// let sandbox = DaytonaSandbox::builder()
///     .api_key("doc-key")
///     .api_url(emulator.api_url())
///     .build()?;
///
/// let result = sandbox
///     .execute_command("echo", &["hello from Daytona".into()], ExecuteCommandOptions::new())
///     .await?;
/// assert_eq!(result.stdout, "hello from Daytona\n");
/// assert!(result.success);
///
/// sandbox.destroy().await?;
/// assert!(emulator.sandboxes().is_empty());
/// # emulator.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct DaytonaSandbox {
    shared: Arc<Shared>,
    files: DaytonaFiles,
    processes: DaytonaProcesses,
}

impl fmt::Debug for DaytonaSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaytonaSandbox")
            .field("id", &self.shared.opts.id)
            .field("name", &self.shared.opts.name)
            .field("status", &self.shared.lifecycle.status())
            .field(
                "daytona_id",
                &self.shared.current().map(|a| a.sandbox.id().to_string()),
            )
            .field("options", &self.shared.opts.builder)
            .finish()
    }
}

impl DaytonaSandbox {
    /// A builder with the defaults (TypeScript, 300 s command timeout, auto-stop after 15 idle
    /// minutes, credentials from the environment).
    pub fn builder() -> DaytonaSandboxBuilder {
        DaytonaSandboxBuilder::default()
    }

    /// A handle with every default and the credentials from `DAYTONA_*` variables.
    pub fn from_env() -> Result<Self> {
        Self::builder().build()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        DaytonaSandbox {
            files: DaytonaFiles::new(shared.clone()),
            processes: DaytonaProcesses::new(shared.clone()),
            shared,
        }
    }

    /// The Daytona client this handle uses.
    pub fn client(&self) -> &DaytonaClient {
        &self.shared.client
    }

    /// The Daytona sandbox behind the handle, for what the trait does not cover (git, previews,
    /// code runs, …). A snapshot of its data as of the last start.
    ///
    /// # Errors
    /// [`SandboxError::NotReady`] before the first start and after `destroy`.
    pub fn daytona(&self) -> Result<Sandbox> {
        self.shared.lifecycle.check_usable()?;
        self.shared
            .current()
            .map(|a| a.sandbox.clone())
            .ok_or_else(|| self.shared.lifecycle.not_ready())
    }

    /// The Daytona sandbox id, once started.
    pub fn daytona_id(&self) -> Option<String> {
        self.shared.current().map(|a| a.sandbox.id().to_string())
    }

    /// What [`WorkspaceSandbox::get_instructions`] returns, without importing the trait.
    pub fn get_instructions_text(&self) -> String {
        info::instructions(self.shared.builder())
    }
}

#[async_trait]
impl WorkspaceSandbox for DaytonaSandbox {
    fn id(&self) -> &str {
        &self.shared.opts.id
    }

    fn name(&self) -> &str {
        &self.shared.opts.name
    }

    fn provider(&self) -> &str {
        PROVIDER
    }

    fn status(&self) -> SandboxStatus {
        self.shared.lifecycle.status()
    }

    async fn start(&self) -> Result<StartOutcome> {
        let shared = &self.shared;
        shared.lifecycle.start(|| shared.start_work()).await
    }

    async fn stop(&self) -> Result<()> {
        let shared = &self.shared;
        shared.lifecycle.stop(|| shared.stop_work()).await
    }

    async fn destroy(&self) -> Result<()> {
        let shared = &self.shared;
        shared.lifecycle.destroy(|| shared.destroy_work()).await
    }

    async fn execute_command(
        &self,
        command: &str,
        args: &[String],
        options: ExecuteCommandOptions,
    ) -> Result<CommandResult> {
        command::run(&self.shared, command, args, options).await
    }

    async fn get_info(&self) -> Result<SandboxInfo> {
        info::get_info(&self.shared).await
    }

    fn get_instructions(&self) -> String {
        info::instructions(self.shared.builder())
    }

    fn filesystem(&self) -> Option<&dyn SandboxFilesystem> {
        Some(&self.files)
    }

    fn processes(&self) -> Option<&dyn ProcessManager> {
        Some(&self.processes)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.filesystem = true;
        caps.processes = true;
        caps.isolated = true;
        caps.ports = true;
        caps
    }

    /// The port's preview link; its token (for a private sandbox) is the
    /// `X-Daytona-Preview-Token` header.
    async fn port_url(&self, port: u16) -> Result<PortUrl> {
        if port == 0 {
            return Err(SandboxError::invalid("port", "must be from 1 to 65535"));
        }
        let link = self
            .shared
            .with_retry(|attached| async move {
                attached
                    .sandbox
                    .get_preview_link(port)
                    .await
                    .map_err(OpError::Daytona)
            })
            .await?;
        let (name, value) = link.auth_header();
        let mut url = PortUrl::new(port, link.url.clone());
        if !value.is_empty() {
            url = url.header(name, value);
        }
        Ok(url)
    }
}
