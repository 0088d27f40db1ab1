//! Approval and hooks: the application's say over each tool call.
//!
//! A [`ToolPolicy`] is asked before every call the model makes and answers
//! [`PolicyDecision::Allow`], [`PolicyDecision::Deny`] (with a reason the model is shown) or
//! [`PolicyDecision::Modify`] (run with other arguments, checked like the model's own). A
//! [`ToolHook`] sees every answer afterwards and may change it (redact a secret, add a note,
//! record it). Both are async, so a policy can ask a human.
//!
//! Both are bounded: a policy that panics or does not answer within
//! [`WorkspaceToolsOptions::policy_timeout`](crate::WorkspaceToolsOptions::policy_timeout)
//! denies the call (fail closed, the reason says which), and a hook that panics or hangs
//! withholds the answer rather than pass on what it was meant to redact. They apply to every
//! way in: [`crate::Workspace::call`], the OpenAI/Anthropic dispatch built on it, and adapters
//! such as rig's.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use workspace_tools::{PolicyDecision, ToolCall, ToolKind, ToolPolicy, Workspace};
//! # use workspace_core::WorkspaceSandbox;
//!
//! struct NoNetwork;
//!
//! #[async_trait::async_trait]
//! impl ToolPolicy for NoNetwork {
//!     async fn check(&self, call: &ToolCall) -> PolicyDecision {
//!         let command = call.arguments["command"].as_str().unwrap_or_default();
//!         if call.kind == ToolKind::ExecuteCommand && command.contains("curl") {
//!             return PolicyDecision::deny("network commands are not allowed here");
//!         }
//!         PolicyDecision::Allow
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let sandbox = Arc::new(workspace_local::LocalSandbox::builder().build().unwrap());
//! let workspace = Workspace::new(sandbox.clone());
//! workspace.set_policy(Arc::new(NoNetwork));
//! let out = workspace.call("execute_command", json!({"command": "curl example.com"})).await;
//! assert!(out.is_error);
//! assert!(out.text.contains("network commands are not allowed here"));
//! sandbox.destroy().await.unwrap();
//! # });
//! ```

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::Value;

use crate::catalog::ToolKind;
use crate::output::{ToolErrorKind, ToolOutput};

/// A tool call as the application sees it before it runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The name the model called (with any prefix).
    pub tool: String,
    /// Which tool that is.
    pub kind: ToolKind,
    /// The arguments, parsed from what the model sent (not yet checked against the schema).
    pub arguments: Value,
}

/// What a [`ToolPolicy`] decided.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PolicyDecision {
    /// Run the call as it is.
    Allow,
    /// Do not run it; the model is told `reason`.
    Deny {
        /// Why, in words the model can act on.
        reason: String,
    },
    /// Run it with these arguments instead (checked against the tool's schema).
    Modify(Value),
}

impl PolicyDecision {
    /// [`PolicyDecision::Deny`] with `reason`.
    pub fn deny(reason: impl Into<String>) -> Self {
        PolicyDecision::Deny {
            reason: reason.into(),
        }
    }
}

/// Decides, before each tool call, whether it runs. See the [module docs](self).
#[async_trait]
pub trait ToolPolicy: Send + Sync {
    /// Allow, deny or modify `call`.
    async fn check(&self, call: &ToolCall) -> PolicyDecision;
}

/// Sees each tool call's answer before the model does, and may change it.
#[async_trait]
pub trait ToolHook: Send + Sync {
    /// Observe or edit `output` (e.g. redact a secret from `output.text`).
    async fn after(&self, call: &ToolCall, output: &mut ToolOutput);
}

/// Ask `policy`, bounded by `limit`; a panic or no answer denies.
pub(crate) async fn decide(
    policy: &dyn ToolPolicy,
    call: &ToolCall,
    limit: Duration,
) -> PolicyDecision {
    match tokio::time::timeout(limit, AssertUnwindSafe(policy.check(call)).catch_unwind()).await {
        Ok(Ok(decision)) => decision,
        Ok(Err(_)) => PolicyDecision::deny(
            "the application's approval policy failed (it panicked), so the call was not run",
        ),
        Err(_) => PolicyDecision::deny(format!(
            "no approval within {}s, so the call was not run",
            limit.as_secs()
        )),
    }
}

/// Run `hook` on `output`, bounded by `limit`; a panic or a hang withholds the answer.
pub(crate) async fn run_hook(
    hook: &dyn ToolHook,
    call: &ToolCall,
    output: ToolOutput,
    limit: Duration,
) -> ToolOutput {
    let mut edited = output.clone();
    let ran = tokio::time::timeout(
        limit,
        AssertUnwindSafe(hook.after(call, &mut edited)).catch_unwind(),
    )
    .await;
    match ran {
        Ok(Ok(())) => edited,
        Ok(Err(_)) | Err(_) => ToolOutput::failed(
            &call.tool,
            ToolErrorKind::Denied,
            format!(
                "error: `{}` ran, but the application's result hook failed, so its answer is \
                 withheld",
                call.tool
            ),
        ),
    }
}

/// The answer for a denied call.
pub(crate) fn denied(call: &ToolCall, reason: &str) -> ToolOutput {
    ToolOutput::failed(
        &call.tool,
        ToolErrorKind::Denied,
        format!(
            "error: `{}` was not run: the application denied it: {reason}",
            call.tool
        ),
    )
}
