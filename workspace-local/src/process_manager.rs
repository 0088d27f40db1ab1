//! [`ProcessManager`] for a [`crate::LocalSandbox`]: background processes addressed as `proc-1`,
//! `proc-2`, … for the life of the sandbox.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use workspace_core::{
    ExecuteCommandOptions, OutputOffsets, ProcessId, ProcessInfo, ProcessManager, ProcessOutput,
    ProcessState, Result, SandboxError, SpawnOptions, build_command_line,
};

use crate::background::{BackgroundOptions, BackgroundProcess};
use crate::sandbox::Shared;

/// One background process the sandbox knows.
struct Entry {
    id: ProcessId,
    command: String,
    process: Arc<BackgroundProcess>,
}

impl Entry {
    fn info(&self) -> ProcessInfo {
        ProcessInfo::new(
            self.id.clone(),
            self.command.clone(),
            self.process.state(),
            self.process.started_at(),
        )
    }
}

/// Every background process of one sandbox, running or exited, by sequence number.
#[derive(Default)]
pub(crate) struct ProcessTable {
    next: AtomicU64,
    entries: Mutex<BTreeMap<u64, Arc<Entry>>>,
}

impl ProcessTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, command: String, process: Arc<BackgroundProcess>) -> Arc<Entry> {
        let n = self.next.fetch_add(1, Ordering::AcqRel) + 1;
        let entry = Arc::new(Entry {
            id: ProcessId(format!("proc-{n}")),
            command,
            process,
        });
        self.lock().insert(n, entry.clone());
        entry
    }

    fn get(&self, id: &ProcessId) -> Result<Arc<Entry>> {
        let not_found = || SandboxError::not_found(format!("process {id}"));
        let n: u64 =
            id.0.strip_prefix("proc-")
                .and_then(|n| n.parse().ok())
                .ok_or_else(not_found)?;
        self.lock().get(&n).cloned().ok_or_else(not_found)
    }

    fn all(&self) -> Vec<Arc<Entry>> {
        self.lock().values().cloned().collect()
    }

    /// Kill every process (and whatever its group still holds), concurrently.
    pub(crate) async fn kill_all(&self) {
        let entries = self.all();
        futures::future::join_all(entries.iter().map(|e| e.process.kill())).await;
    }

    /// Forget every process (dropping the last handle kills anything left).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

/// The background processes of a [`crate::LocalSandbox`].
///
/// Processes run as `<shell> -c <line>` with the same environment and working-directory rules as
/// commands, each in its own process group; `kill`, `stop` and `destroy` kill the whole group.
/// Exited processes stay listed (with their output) until the sandbox is destroyed.
pub struct LocalProcessManager {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LocalProcessManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProcessManager")
            .field("sandbox", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl LocalProcessManager {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LocalProcessManager { shared }
    }

    /// The process behind an id, for callers that want to follow its output as it arrives
    /// ([`BackgroundProcess::changes`]).
    pub fn process(&self, id: &ProcessId) -> Result<Arc<BackgroundProcess>> {
        self.shared.lifecycle.check_usable()?;
        Ok(self.shared.processes.get(id)?.process.clone())
    }

    fn entry(&self, id: &ProcessId) -> Result<Arc<Entry>> {
        self.shared.lifecycle.check_usable()?;
        self.shared.processes.get(id)
    }
}

#[async_trait]
impl ProcessManager for LocalProcessManager {
    async fn spawn(
        &self,
        command: &str,
        args: &[String],
        options: SpawnOptions,
    ) -> Result<ProcessInfo> {
        // Same checks as a command: env names and values, cwd shape.
        let mut check = ExecuteCommandOptions::new().envs(options.env.clone());
        check.cwd = options.cwd.clone();
        check.validate()?;
        let line = build_command_line(command, args)?;
        let shared = &self.shared;
        shared.ensure_running().await?;
        let cwd = shared.resolve_cwd(options.cwd.as_deref()).await?;
        let spec = shared.process_spec(line.clone(), cwd, &options.env).await?;
        let process = BackgroundProcess::spawn_with(
            spec,
            BackgroundOptions {
                stdin: options.stdin,
                retention: shared.process_output_retention,
                kill_grace: shared.kill_grace,
                drain_timeout: shared.drain_timeout,
                // A server's log must never block the server: the oldest output goes.
                hold_unread: false,
            },
        )?;
        Ok(shared.processes.insert(line, process).info())
    }

    async fn get(&self, id: &ProcessId) -> Result<ProcessInfo> {
        Ok(self.entry(id)?.info())
    }

    async fn list(&self) -> Result<Vec<ProcessInfo>> {
        self.shared.lifecycle.check_usable()?;
        Ok(self
            .shared
            .processes
            .all()
            .iter()
            .map(|e| e.info())
            .collect())
    }

    async fn output(&self, id: &ProcessId, since: OutputOffsets) -> Result<ProcessOutput> {
        Ok(self.entry(id)?.process.output_since(since))
    }

    async fn write_stdin(&self, id: &ProcessId, data: &[u8]) -> Result<()> {
        self.entry(id)?.process.write_stdin(data).await
    }

    async fn close_stdin(&self, id: &ProcessId) -> Result<()> {
        self.entry(id)?.process.close_stdin().await
    }

    async fn kill(&self, id: &ProcessId) -> Result<ProcessInfo> {
        let entry = self.entry(id)?;
        entry.process.kill().await;
        Ok(entry.info())
    }

    async fn wait(&self, id: &ProcessId, timeout: Option<Duration>) -> Result<ProcessInfo> {
        let entry = self.entry(id)?;
        entry.process.wait(timeout).await;
        Ok(entry.info())
    }

    /// Pushed, not polled: the process's readers bump a change counter on every chunk and on
    /// exit, and this waits on it.
    async fn wait_for_change(
        &self,
        id: &ProcessId,
        seen: OutputOffsets,
        timeout: Duration,
    ) -> Result<()> {
        let entry = self.entry(id)?;
        let mut changes = entry.process.changes();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Marked seen before reading, so a chunk landing after the read still wakes us.
            changes.borrow_and_update();
            let out = entry.process.output_since(seen);
            if !out.stdout.is_empty()
                || !out.stderr.is_empty()
                || matches!(out.state, ProcessState::Exited(_))
            {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the process is gone (its sender dropped): nothing more comes.
                Ok(Err(_)) | Err(_) => return Ok(()),
            }
        }
    }
}
