#![doc = include_str!("../README.md")]
//!
//! ## This crate
//!
//! A facade: it re-exports [`workspace_core`] (the contract) and the provider crates enabled by
//! features (`local`, on by default), so one dependency is enough.

pub use workspace_core::*;

/// The local-machine provider.
#[cfg(feature = "local")]
pub use workspace_local as local;
#[cfg(feature = "local")]
pub use workspace_local::{Isolation, IsolationTier, LocalSandbox};

/// The sandbox as LLM tools: JSON-Schema definitions, one dispatcher, output shaped for a model.
#[cfg(feature = "tools")]
pub use workspace_tools as tools;

/// The Daytona provider: the Rust Daytona client and [`DaytonaSandbox`].
#[cfg(feature = "daytona")]
pub use workspace_daytona as daytona;
#[cfg(feature = "daytona")]
pub use workspace_daytona::DaytonaSandbox;
