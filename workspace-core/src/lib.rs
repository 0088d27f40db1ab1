//! # workspace-core
//!
//! The contract of the workspace-sandbox family: one async, object-safe trait,
//! [`WorkspaceSandbox`], that every provider (the local machine, Daytona, your own) implements,
//! plus the options, results and errors it speaks in.
//!
//! - Commands: [`WorkspaceSandbox::execute_command`] with [`ExecuteCommandOptions`] →
//!   [`CommandResult`]. A non-zero exit, a timeout (124) and a cancel (137) are results.
//! - Optional capabilities, discovered at run time: [`WorkspaceSandbox::filesystem`] and
//!   [`WorkspaceSandbox::processes`]; a provider without one returns `None`.
//! - One error enum, [`SandboxError`], with [`SandboxError::is_retryable`].
//! - [`lifecycle::Lifecycle`]: the coalesced start/stop/destroy state machine providers share.
//! - Feature `mock`: `MockWorkspaceSandbox` for testing agent code. Feature `testkit`: the
//!   conformance suite every provider runs.
//!
//! ```
//! use workspace_core::{SandboxError, ExecuteCommandOptions};
//! let err = ExecuteCommandOptions::new().env("BAD NAME", "x").validate().unwrap_err();
//! assert!(matches!(err, SandboxError::InvalidArgument { .. }));
//! ```

pub mod command;
pub mod error;
pub mod filesystem;
pub mod layer;
pub mod lifecycle;
pub mod output;
pub mod process;
pub mod sandbox;
pub mod search;

#[cfg(feature = "mock")]
pub mod mock;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use command::{
    CommandResult, CommandTimeout, EXIT_KILLED, EXIT_NOT_FOUND, EXIT_TIMEOUT,
    ExecuteCommandOptions, OutputCallback, Stdin, build_command_line, shell_quote,
    validate_env_name,
};
pub use error::{Result, SandboxError, TimeoutPhase};
pub use filesystem::{DirEntry, FileKind, FileStat, SandboxFilesystem};
pub use process::{
    OutputOffsets, ProcessEvent, ProcessId, ProcessInfo, ProcessManager, ProcessManagerExt,
    ProcessOutput, ProcessState, SpawnOptions, WaitForOutput, poll_for_change,
};
pub use sandbox::{
    Capabilities, PortUrl, Resources, SandboxInfo, SandboxStatus, StartOutcome, WorkspaceSandbox,
    WorkspaceSandboxExt,
};
pub use search::{
    GlobEntry, GlobRequest, GlobResult, GlobSort, GrepFile, GrepLine, GrepRequest, GrepResult,
};
/// Re-exported so callers need not depend on tokio-util for cancellation.
pub use tokio_util::sync::CancellationToken;
