//! # workspace-local
//!
//! [`LocalSandbox`]: the [`WorkspaceSandbox`](workspace_core::WorkspaceSandbox) that runs
//! commands on this machine. What it provides:
//!
//! - by default, OS isolation where the host allows it ([`isolation`]): with bubblewrap on
//!   Linux, commands see the host read-only except the sandbox root, homes and `/tmp` hidden,
//!   no network unless allowed, only their own processes; [`Isolation::Required`] refuses to
//!   run without it and [`Isolation::None`] turns it off (commands then run as the current
//!   user with full access to the host);
//! - every command runs as `<shell> -c <line>` in its own process group, so a timeout (exit 124),
//!   a cancel (exit 137) or dropping the call's future kills the whole tree;
//! - output is streamed to callbacks and retained up to a cap (head and tail kept, the middle
//!   counted), and a chatty or daemonising command never deadlocks the call;
//! - a minimal environment by default, so host secrets do not reach commands;
//! - a file API confined to the sandbox root ([`files::LocalFilesystem`]);
//! - background processes ([`process_manager::LocalProcessManager`]).
//!
//! The building blocks are public for other providers that run processes on the host (the
//! Daytona emulator uses them): [`runner`] for one foreground command, [`background`] for
//! long-lived processes, [`group`] for process-group signalling.
//!
//! ```
//! use workspace_core::{ExecuteCommandOptions, WorkspaceSandbox};
//! use workspace_local::LocalSandbox;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let sandbox = LocalSandbox::builder().root(dir.path()).build().unwrap();
//! let result = sandbox
//!     .execute_command("echo", &["hello, world".into()], ExecuteCommandOptions::new())
//!     .await
//!     .unwrap();
//! assert_eq!(result.stdout, "hello, world\n");
//! assert!(result.success);
//! sandbox.destroy().await.unwrap();
//! // The directory was ours, so it is still there.
//! assert!(dir.path().is_dir());
//! # });
//! ```

pub mod background;
pub mod files;
pub mod group;
pub mod host;
pub mod isolation;
mod namespace;
pub mod process_manager;
pub mod runner;
pub mod sandbox;
mod search;

pub use files::LocalFilesystem;
pub use isolation::{Isolation, IsolationTier};
pub use process_manager::LocalProcessManager;
pub use sandbox::{LocalSandbox, LocalSandboxBuilder};
