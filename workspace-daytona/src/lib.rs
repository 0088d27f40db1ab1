//! # workspace-daytona
//!
//! A Rust client for [Daytona](https://daytona.io) cloud sandboxes: the control-plane REST API
//! (create, find, list, start, stop, archive, delete sandboxes) and each sandbox's toolbox
//! (commands, persistent shell sessions with live split stdout/stderr, files). It speaks the
//! wire protocol of the official TypeScript SDK 0.218, in Rust idiom.
//!
//! - [`DaytonaClient`] (cheap to clone, one connection pool) creates and finds [`Sandbox`]es.
//! - [`Sandbox::process`] runs commands ([`Process::execute`]) and sessions, including
//!   [`Process::follow_session_command_logs`], a WebSocket stream demultiplexed by
//!   [`demux::Demuxer`] that reports whether it ended cleanly or was dropped.
//! - [`Sandbox::fs`] uploads and downloads (streamed from and to disk) and manages files.
//! - Errors are one typed enum, [`DaytonaError`], classified by HTTP status and the daemon's
//!   error code, convertible into [`workspace_core::SandboxError`].
//! - Transient failures are retried per [`RetryConfig`] — only where replaying is safe: a
//!   command is never run twice.
//! - Every call is a `tracing` span (`daytona.call`: operation, sandbox id, status, attempts,
//!   duration). Credentials are wrapped in [`Secret`] and never logged.
//!
//! ## Example
//!
//! Against a local emulator (the same code runs against Daytona Cloud with
//! [`DaytonaClient::from_env`]):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use workspace_daytona::{CreateSandboxParams, DaytonaClient, DaytonaConfig, ExecuteOptions};
//!
//! let emulator = daytona_emulator::Emulator::builder().api_key("test-key").start().await?;
//! let client = DaytonaClient::new(
//!     DaytonaConfig::with_api_key("test-key").api_url(&emulator.api_url())?,
//! )?;
//!
//! let mut sandbox = client
//!     .create(CreateSandboxParams::new().label("example", "doc"), Some(Duration::from_secs(60)))
//!     .await?;
//! let out = sandbox
//!     .process()
//!     .execute("echo hello", &ExecuteOptions::new().timeout(Duration::from_secs(10)))
//!     .await?;
//! assert_eq!(out.exit_code, 0);
//! assert_eq!(out.result.trim(), "hello");
//! sandbox.delete(Some(Duration::from_secs(60))).await?;
//! # Ok(())
//! # }
//! ```

pub mod build_logs;
pub mod client;
pub mod code_run;
pub mod config;
pub mod demux;
pub mod error;
pub mod follow;
pub mod fs;
pub mod git;
pub mod multipart;
pub mod params;
mod preconnect;
pub mod preview;
pub mod process;
pub mod provider;
pub mod pty;
pub mod pty_handle;
pub mod retry;
pub mod sandbox;
pub mod secret;
pub mod snapshot;
mod toolbox;
mod transport;
pub mod volume;

pub use client::{DaytonaClient, ListFilter};
pub use code_run::{CodeRunOptions, CodeRunResult};
pub use config::{Credentials, DaytonaConfig};
pub use error::{DaytonaError, ErrorDetails, Result};
pub use follow::{FollowEnd, LogEvent, LogStream, RawLogEvent, RawLogStream};
pub use fs::{FilePermissions, FileSystem, FileUpload, UploadSource};
pub use git::{Git, GitCloneOptions, GitErrorKind, GitRemoteOptions};
pub use params::{CodeLanguage, CreateSandboxParams, Resources};
pub use preview::{PREVIEW_TOKEN_HEADER, PreviewLink, SignedPreviewUrl};
pub use process::{ExecuteOptions, ExecuteResult, Process};
pub use provider::{DaytonaSandbox, DaytonaSandboxBuilder};
pub use pty::PtyOptions;
pub use pty_handle::{PTY_CONNECT_TIMEOUT, PtyExit, PtyHandle, PtyWriter};
pub use retry::RetryConfig;
pub use sandbox::Sandbox;
pub use secret::Secret;
pub use snapshot::{CreateSnapshotParams, SnapshotSource, Snapshots};
pub use transport::{SDK_COMPAT_VERSION, SDK_SOURCE};
pub use volume::Volumes;

/// The wire types this client sends and receives (re-exported from `daytona-api`).
pub use daytona_api as api;
