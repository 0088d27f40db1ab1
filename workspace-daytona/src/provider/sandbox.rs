//! [`DaytonaSandbox`]: the handle, and how the builder makes one.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use workspace_core::{
    Capabilities, CommandResult, ExecuteCommandOptions, PortUrl, ProcessManager, Result,
    SandboxError, SandboxFilesystem, SandboxInfo, SandboxStatus, StartOutcome, WorkspaceSandbox,
};

use crate::client::DaytonaClient;
use crate::sandbox::Sandbox;

use super::builder::DaytonaSandboxBuilder;
use super::files::DaytonaFiles;
use super::processes::DaytonaProcesses;
use super::shared::{OpError, Shared};
use super::{command, info};

pub use super::info::PROVIDER;

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

impl DaytonaSandboxBuilder {
    /// Check every option and make the handle. Nothing is sent until the first command,
    /// file operation or `start`.
    ///
    /// # Errors
    /// [`SandboxError::InvalidArgument`] naming the option at fault;
    /// [`SandboxError::Unauthorized`] when no credentials are configured anywhere.
    pub fn build(self) -> Result<DaytonaSandbox> {
        let (options, client) = self.check()?;
        Ok(DaytonaSandbox::from_shared(Arc::new(Shared::new(
            options, client,
        ))))
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
