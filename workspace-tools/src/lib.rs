//! # workspace-tools
//!
//! A [`WorkspaceSandbox`](workspace_core::WorkspaceSandbox) as tools for LLM tool calling.
//!
//! [`Workspace`] wraps any sandbox (`Arc<dyn WorkspaceSandbox>`) and offers the tools it
//! supports:
//!
//! | tool | needs | does |
//! |---|---|---|
//! | `execute_command` | — | run a shell command; `background: true` starts a process (needs processes) |
//! | `get_process_output`, `kill_process` | processes | follow a background process by byte offsets; kill it |
//! | `read_file`, `write_file`, `edit_file`, `multi_edit` | filesystem | read with line numbers; write; exact unique replace; several replacements, all or none |
//! | `list_files`, `delete`, `mkdir`, `file_stat` | filesystem | tree or glob listing; remove; create; describe |
//! | `grep`, `glob` | filesystem | content search (regex, `.gitignore`-aware, capped); files by path pattern |
//!
//! - **Definitions** come from typed argument structs ([`args`]) through `schemars`, rendered for
//!   OpenAI chat completions ([`Workspace::definitions_openai`]) and Anthropic Messages
//!   ([`Workspace::definitions_anthropic`]).
//! - **One dispatcher**, [`Workspace::call`], takes the tool name and the model's arguments (JSON
//!   value or text) and always answers with a [`ToolOutput`]: unknown tools, bad arguments and
//!   sandbox errors come back as `is_error: true` texts that name the problem and the fix, for the
//!   model to act on. Nothing panics and nothing aborts the agent loop.
//! - **Output is shaped for the model**: terminal escape codes removed and carriage-return
//!   progress bars rendered ([`ansi`]), each answer fitted to a byte budget by cutting the middle
//!   of long output behind a marker with exact byte and line counts ([`trim`]), exit codes,
//!   timeouts and the sandbox's own truncation flagged in the text.
//! - **Edits are safe by default**: changing an existing file needs a `read_file` of it in this
//!   workspace first, and is refused ("file changed since you read it: read it again") when
//!   the file changed underneath; edits to one file run one at a time; `multi_edit` applies
//!   all its replacements or none ([`WorkspaceToolsOptions::edit_safety`] turns the checks off).
//! - **The application decides**: a [`ToolPolicy`] ([`Workspace::set_policy`]) allows, denies
//!   (with a reason the model sees) or rewrites each call before it runs, and [`ToolHook`]s
//!   ([`Workspace::add_hook`]) see or redact every answer; both are bounded ([`policy`]).
//! - [`Workspace::instructions`] is the system-prompt text: the sandbox's own instructions and the
//!   tool list.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use workspace_local::LocalSandbox;
//! use workspace_tools::Workspace;
//! # use workspace_core::WorkspaceSandbox;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let sandbox = Arc::new(LocalSandbox::builder().build().unwrap());
//! let workspace = Workspace::new(sandbox.clone());
//!
//! // Hand these to the model as `tools`, and this as (part of) its system prompt.
//! let tools = workspace.definitions_openai();
//! assert!(tools.iter().any(|t| t["function"]["name"] == "execute_command"));
//! let system_prompt = workspace.instructions();
//! assert!(system_prompt.contains("`read_file`"));
//!
//! // Run what the model asked for and hand the text back.
//! let out = workspace.call("execute_command", json!({"command": "echo hi"})).await;
//! assert!(!out.is_error);
//! assert_eq!(out.text, "exit code: 0\nhi");
//!
//! // Mistakes come back as text the model can act on.
//! let out = workspace.call("execute_command", json!({"cmd": "echo hi"})).await;
//! assert!(out.is_error);
//! assert!(out.text.contains("unknown argument `cmd`"));
//!
//! sandbox.destroy().await.unwrap();
//! # });
//! ```
//!
//! Feature `testkit` exposes [`testkit`]: the checks of this crate's tests as functions over an
//! `Arc<dyn WorkspaceSandbox>`, so any provider can run them (`tests/local.rs` runs them on
//! `LocalSandbox`).

pub mod ansi;
pub mod args;
pub mod catalog;
mod ledger;
pub mod options;
pub mod output;
pub mod policy;
mod report;
mod tools;
pub mod trim;
mod validate;
pub mod workspace;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use catalog::{ToolKind, ToolSpec};
pub use options::WorkspaceToolsOptions;
pub use output::{ToolErrorKind, ToolOutput};
pub use policy::{PolicyDecision, ToolCall, ToolHook, ToolPolicy};
pub use workspace::{ToolArgs, Workspace};
