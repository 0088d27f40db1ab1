//! # workspace-sandbox
//!
//! A place for AI agents to run code: one async trait, [`WorkspaceSandbox`], with providers for
//! the local machine (feature `local`, on by default) and Daytona cloud sandboxes.
//!
//! This facade re-exports [`workspace_core`] (the contract) and the provider crates enabled by
//! features, so one dependency is enough.

pub use workspace_core::*;

/// The local-machine provider.
#[cfg(feature = "local")]
pub use workspace_local as local;
#[cfg(feature = "local")]
pub use workspace_local::LocalSandbox;
