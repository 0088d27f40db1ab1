//! Helpers the checks share: unique names, call-and-assert shortcuts, a commands-only wrapper.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::Value;
use workspace_core::{
    CommandResult, ExecuteCommandOptions, Result, SandboxInfo, SandboxStatus, StartOutcome,
    WorkspaceSandbox,
};

use crate::{ToolErrorKind, ToolOutput, Workspace};

/// A name no other check (in this or another process) uses: `prefix-<pid>-<nanos>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Call a tool and insist that it succeeded.
pub(crate) async fn ok(ws: &Workspace, tool: &str, args: Value) -> ToolOutput {
    let out = ws.call(tool, args.clone()).await;
    assert!(
        !out.is_error,
        "{tool}({args}) should succeed, got: {}",
        out.text
    );
    out
}

/// Call a tool and insist that it failed with `kind` and a text containing `needle`.
pub(crate) async fn fails(
    ws: &Workspace,
    tool: &str,
    args: Value,
    kind: ToolErrorKind,
    needle: &str,
) -> ToolOutput {
    let out = ws.call(tool, args.clone()).await;
    assert!(
        out.is_error,
        "{tool}({args}) should fail, got: {}",
        out.text
    );
    assert_eq!(
        out.error,
        Some(kind),
        "{tool}({args}) failed the wrong way: {}",
        out.text
    );
    assert!(
        out.text.contains(needle),
        "{tool}({args}): expected {needle:?} in the error, got: {}",
        out.text
    );
    assert!(
        out.text.starts_with("error: "),
        "errors start with `error: `: {}",
        out.text
    );
    out
}

/// A sandbox with commands only: it implements just the required methods of
/// [`WorkspaceSandbox`] by delegating to another sandbox, so `filesystem()` and `processes()`
/// keep their default `None`. Shows what a minimal provider gets offered.
pub struct CommandsOnly {
    inner: Arc<dyn WorkspaceSandbox>,
}

impl CommandsOnly {
    /// Wrap `inner`, hiding its files and processes.
    pub fn new(inner: Arc<dyn WorkspaceSandbox>) -> Self {
        CommandsOnly { inner }
    }
}

#[async_trait]
impl WorkspaceSandbox for CommandsOnly {
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
        self.inner.start().await
    }
    async fn stop(&self) -> Result<()> {
        self.inner.stop().await
    }
    async fn destroy(&self) -> Result<()> {
        self.inner.destroy().await
    }
    async fn execute_command(
        &self,
        command: &str,
        args: &[String],
        options: ExecuteCommandOptions,
    ) -> Result<CommandResult> {
        self.inner.execute_command(command, args, options).await
    }
    async fn get_info(&self) -> Result<SandboxInfo> {
        self.inner.get_info().await
    }
    fn get_instructions(&self) -> String {
        self.inner.get_instructions()
    }
}
