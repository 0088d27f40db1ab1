//! [`DaytonaSandbox`]: the [`workspace_core::WorkspaceSandbox`] on Daytona, built on this
//! crate's client.
//!
//! What lives where:
//! - [`builder`]: the options ([`DaytonaSandboxBuilder`]) and the creation-mode rules.
//! - `sandbox`: the handle, the state its parts share, and retry-once-after-a-stop.
//! - `connect`: finding, starting, creating (adopting on a name conflict), stopping and
//!   deleting the Daytona sandbox.
//! - `classify`: the one function that reads a failure as "sandbox not running".
//! - `command`, `session`, `spare`, `collector`, `script`, `output`: running one command in a
//!   session of its own (made ahead of need when it can be), and reading its output back.
//! - `files`, `processes`, `info`: the file API, background processes, info and instructions.
//! - `search`: `grep` and `glob` through the toolbox's search routes or a command in the
//!   sandbox, contents never downloaded.

pub mod builder;
mod classify;
mod collector;
mod command;
mod connect;
mod deadline;
mod files;
mod info;
mod keepalive;
mod output;
mod processes;
mod resident;
mod sandbox;
mod script;
mod search;
mod session;
mod shared;
mod shell;
mod spare;
mod sync;

pub use builder::{
    DEFAULT_AUTO_STOP_MINUTES, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CREATION_TIMEOUT, DEFAULT_WORK_DIR,
    DaytonaSandboxBuilder, ID_LABEL,
};
pub use sandbox::{DaytonaSandbox, PROVIDER};
