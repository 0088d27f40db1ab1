//! # daytona-emulator
//!
//! A local server that speaks Daytona's control-plane API (under `/api`) and toolbox API (under
//! `/toolbox/{sandboxId}`), so that the Rust client, `DaytonaSandbox` and the official TypeScript
//! SDK can be tested over real HTTP and WebSocket without the cloud.
//!
//! **Emulated sandboxes are not isolated from the host.** Commands are real local processes,
//! confined with bubblewrap when it is installed, never with a VM or container.
//!
//! ## Internal seams (who owns what)
//! - [`state`]: the emulator's shared state ([`state::AppState`]), sandboxes and their
//!   lifecycle, fault rules, request log. Hands the toolbox a [`state::ToolboxTarget`].
//! - [`api`]: control-plane routes (`/api/...`), socket.io, auth, fault middleware.
//! - [`layout`]: a sandbox's directory on the host, the mapping between sandbox paths and host
//!   paths (confinement), and how a command line becomes a local process (bwrap or plain).
//! - [`toolbox`]: toolbox routes and [`toolbox::SandboxRuntime`], the sessions and processes
//!   alive in one sandbox.
//! - [`error`]: API and daemon error bodies.

pub mod api;
pub mod error;
pub mod layout;
pub mod state;
pub mod toolbox;
