//! [`Hooked`]: a layer over any [`WorkspaceSandbox`] that runs setup commands after it starts
//! and cleanup commands before it stops, and adds an environment overlay to its commands.
//!
//! - After-start hooks (clone a repository, install dependencies) run, in order, whenever the
//!   sandbox goes from not running to running through this layer: an explicit `start()`, or
//!   the first command (which starts it lazily). A hook that exits non-zero fails the start
//!   with [`SandboxError::Hook`] naming it; the next start runs the hooks again.
//! - Before-stop hooks run before `stop()`. The sandbox is stopped even when one fails (a stop
//!   is not held hostage by cleanup), and the failure is returned as [`SandboxError::Hook`].
//! - The overlay ([`Hooked::set_env`], [`Hooked::remove_env`]) can change while the sandbox
//!   runs; every later command, hook and background process gets it, under the call's own
//!   variables. Values are never printed: `Debug` shows names only, and nothing is logged.
//! - The file API and background processes are the inner sandbox's (processes get the
//!   overlay); using them before the first start or command does not run the hooks.
//!
//! ```no_run
//! use std::sync::Arc;
//! use workspace_core::layer::Hooked;
//! use workspace_core::{WorkspaceSandbox, WorkspaceSandboxExt};
//!
//! # async fn demo(inner: Arc<dyn WorkspaceSandbox>) -> workspace_core::Result<()> {
//! let sandbox = Hooked::new(inner)
//!     .after_start("clone", "test -d app || git clone https://example.com/app.git app")
//!     .after_start("install", "cd app && npm ci")
//!     .before_stop("save", "cd app && git stash");
//! sandbox.set_env("API_TOKEN", "s3cr3t")?; // seen by commands, never by logs or Debug
//! let result = sandbox.run("cd app && npm test").await?; // starts, runs both hooks, then this
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::command::{CommandResult, ExecuteCommandOptions, validate_env_name};
use crate::error::{Result, SandboxError};
use crate::filesystem::SandboxFilesystem;
use crate::process::{ProcessManager, SpawnOptions};
use crate::sandbox::{
    Capabilities, PortUrl, SandboxInfo, SandboxStatus, StartOutcome, WorkspaceSandbox,
};

/// One named hook: a shell command line.
#[derive(Debug, Clone)]
struct Hook {
    name: String,
    command: String,
}

/// The layer; see the [module docs](self).
pub struct Hooked<S: ?Sized> {
    inner: Arc<S>,
    after_start: Vec<Hook>,
    before_stop: Vec<Hook>,
    env: Arc<Mutex<BTreeMap<String, String>>>,
    /// Held across a start and its hooks, so concurrent first commands run the hooks once.
    starting: tokio::sync::Mutex<bool>,
    processes: Option<OverlayProcesses<S>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: WorkspaceSandbox + ?Sized + 'static> Hooked<S> {
    /// Wrap `inner`, with no hooks and an empty overlay.
    pub fn new(inner: Arc<S>) -> Self {
        let env = Arc::new(Mutex::new(BTreeMap::new()));
        let processes = inner.processes().is_some().then(|| OverlayProcesses {
            inner: inner.clone(),
            env: env.clone(),
        });
        Hooked {
            inner,
            after_start: Vec::new(),
            before_stop: Vec::new(),
            env,
            starting: tokio::sync::Mutex::new(false),
            processes,
        }
    }

    /// Run `command` (a shell line) after each start, after the hooks added before it.
    pub fn after_start(mut self, name: impl Into<String>, command: impl Into<String>) -> Self {
        self.after_start.push(Hook {
            name: name.into(),
            command: command.into(),
        });
        self
    }

    /// Run `command` before each stop.
    pub fn before_stop(mut self, name: impl Into<String>, command: impl Into<String>) -> Self {
        self.before_stop.push(Hook {
            name: name.into(),
            command: command.into(),
        });
        self
    }

    /// Set an overlay variable for every later command (`InvalidArgument` for a bad name).
    pub fn set_env(&self, name: impl Into<String>, value: impl Into<String>) -> Result<()> {
        let name = name.into();
        validate_env_name(&name)?;
        lock(&self.env).insert(name, value.into());
        Ok(())
    }

    /// Drop an overlay variable.
    pub fn remove_env(&self, name: &str) {
        lock(&self.env).remove(name);
    }

    /// The names of the overlay's variables (values stay private).
    pub fn env_names(&self) -> Vec<String> {
        lock(&self.env).keys().cloned().collect()
    }

    /// The wrapped sandbox.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    fn with_overlay(&self, mut options: ExecuteCommandOptions) -> ExecuteCommandOptions {
        for (k, v) in lock(&self.env).iter() {
            options.env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        options
    }

    async fn run_hooks(&self, hooks: &[Hook], phase: &str) -> Result<()> {
        for hook in hooks {
            let options = self.with_overlay(ExecuteCommandOptions::new());
            let result = self
                .inner
                .execute_command(&hook.command, &[], options)
                .await
                .map_err(|e| SandboxError::Hook {
                    hook: hook.name.clone(),
                    phase: phase.to_string(),
                    message: e.to_string(),
                })?;
            if !result.success {
                let tail: String = {
                    let text = if result.stderr.trim().is_empty() {
                        &result.stdout
                    } else {
                        &result.stderr
                    };
                    let lines: Vec<&str> = text.trim_end().lines().collect();
                    lines[lines.len().saturating_sub(5)..].join("\n")
                };
                return Err(SandboxError::Hook {
                    hook: hook.name.clone(),
                    phase: phase.to_string(),
                    message: format!("exited with code {}: {tail}", result.exit_code),
                });
            }
        }
        Ok(())
    }

    /// Start the inner sandbox and, if this layer has not since its last stop, run the
    /// after-start hooks.
    async fn ensure_started(&self) -> Result<StartOutcome> {
        let mut ready = self.starting.lock().await;
        let was_running = self.inner.status() == SandboxStatus::Running;
        let outcome = self.inner.start().await?;
        if !*ready || !was_running {
            self.run_hooks(&self.after_start, "after start").await?;
            *ready = true;
        }
        Ok(outcome)
    }
}

impl<S: ?Sized> fmt::Debug for Hooked<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = lock(&self.env).keys().cloned().collect();
        f.debug_struct("Hooked")
            .field(
                "after_start",
                &self.after_start.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .field(
                "before_stop",
                &self.before_stop.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .field("env", &names)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: WorkspaceSandbox + ?Sized + 'static> WorkspaceSandbox for Hooked<S> {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn provider(&self) -> &str {
        self.inner.provider()
    }
    fn status(&self) -> SandboxStatus {
        self.inner.status()
    }
    async fn start(&self) -> Result<StartOutcome> {
        self.ensure_started().await
    }
    async fn stop(&self) -> Result<()> {
        let mut ready = self.starting.lock().await;
        let hooks = if *ready && self.inner.status() == SandboxStatus::Running {
            self.run_hooks(&self.before_stop, "before stop").await
        } else {
            Ok(())
        };
        *ready = false;
        self.inner.stop().await?;
        hooks
    }
    async fn destroy(&self) -> Result<()> {
        *self.starting.lock().await = false;
        self.inner.destroy().await
    }
    async fn execute_command(
        &self,
        command: &str,
        args: &[String],
        options: ExecuteCommandOptions,
    ) -> Result<CommandResult> {
        self.ensure_started().await?;
        self.inner
            .execute_command(command, args, self.with_overlay(options))
            .await
    }
    async fn get_info(&self) -> Result<SandboxInfo> {
        self.inner.get_info().await
    }
    fn get_instructions(&self) -> String {
        self.inner.get_instructions()
    }
    fn filesystem(&self) -> Option<&dyn SandboxFilesystem> {
        self.inner.filesystem()
    }
    fn processes(&self) -> Option<&dyn ProcessManager> {
        self.processes.as_ref().map(|p| p as &dyn ProcessManager)
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn port_url(&self, port: u16) -> Result<PortUrl> {
        self.inner.port_url(port).await
    }
}

/// The inner sandbox's processes, spawned with the overlay.
struct OverlayProcesses<S: ?Sized> {
    inner: Arc<S>,
    env: Arc<Mutex<BTreeMap<String, String>>>,
}

impl<S: WorkspaceSandbox + ?Sized> OverlayProcesses<S> {
    fn pm(&self) -> Result<&dyn ProcessManager> {
        self.inner
            .processes()
            .ok_or_else(|| SandboxError::unsupported("processes", self.inner.provider()))
    }
}

#[async_trait]
impl<S: WorkspaceSandbox + ?Sized> ProcessManager for OverlayProcesses<S> {
    async fn spawn(
        &self,
        command: &str,
        args: &[String],
        mut options: SpawnOptions,
    ) -> Result<crate::process::ProcessInfo> {
        for (k, v) in lock(&self.env).iter() {
            options.env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self.pm()?.spawn(command, args, options).await
    }
    async fn get(&self, id: &crate::process::ProcessId) -> Result<crate::process::ProcessInfo> {
        self.pm()?.get(id).await
    }
    async fn list(&self) -> Result<Vec<crate::process::ProcessInfo>> {
        self.pm()?.list().await
    }
    async fn output(
        &self,
        id: &crate::process::ProcessId,
        since: crate::process::OutputOffsets,
    ) -> Result<crate::process::ProcessOutput> {
        self.pm()?.output(id, since).await
    }
    async fn write_stdin(&self, id: &crate::process::ProcessId, data: &[u8]) -> Result<()> {
        self.pm()?.write_stdin(id, data).await
    }
    async fn close_stdin(&self, id: &crate::process::ProcessId) -> Result<()> {
        self.pm()?.close_stdin(id).await
    }
    async fn kill(&self, id: &crate::process::ProcessId) -> Result<crate::process::ProcessInfo> {
        self.pm()?.kill(id).await
    }
    async fn wait(
        &self,
        id: &crate::process::ProcessId,
        timeout: Option<std::time::Duration>,
    ) -> Result<crate::process::ProcessInfo> {
        self.pm()?.wait(id, timeout).await
    }
    async fn wait_for_change(
        &self,
        id: &crate::process::ProcessId,
        seen: crate::process::OutputOffsets,
        timeout: std::time::Duration,
    ) -> Result<()> {
        self.pm()?.wait_for_change(id, seen, timeout).await
    }
}
