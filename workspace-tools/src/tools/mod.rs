//! The tools themselves: each takes its typed arguments and answers with a [`ToolOutput`] or a
//! [`ToolError`] that [`crate::Workspace::call`] renders for the model.
//!
//! [`ToolOutput`]: crate::ToolOutput
//! [`ToolError`]: crate::output::ToolError

pub(crate) mod command;
pub(crate) mod files;
pub(crate) mod listing;
pub(crate) mod process;
pub(crate) mod search;

use workspace_core::{CancellationToken, ProcessManager, SandboxFilesystem, WorkspaceSandbox};

use crate::options::WorkspaceToolsOptions;
use crate::output::ToolError;

/// What a tool runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) sandbox: &'a dyn WorkspaceSandbox,
    pub(crate) options: &'a WorkspaceToolsOptions,
    /// The name the tool was called by, for messages.
    pub(crate) tool: &'a str,
    pub(crate) cancel: Option<CancellationToken>,
    /// What the model has read, and the per-file edit locks.
    pub(crate) ledger: &'a crate::ledger::Ledger,
}

impl Ctx<'_> {
    /// The file API. The tool is only offered when there is one, so `None` means the sandbox
    /// changed its mind; say so rather than panic.
    pub(crate) fn fs(&self) -> Result<&dyn SandboxFilesystem, ToolError> {
        self.sandbox.filesystem().ok_or_else(|| {
            ToolError::Sandbox(workspace_core::SandboxError::unsupported(
                "filesystem",
                self.sandbox.provider(),
            ))
        })
    }

    /// The process API, likewise.
    pub(crate) fn processes(&self) -> Result<&dyn ProcessManager, ToolError> {
        self.sandbox.processes().ok_or_else(|| {
            ToolError::Sandbox(workspace_core::SandboxError::unsupported(
                "processes",
                self.sandbox.provider(),
            ))
        })
    }
}
