//! Shared emulator state. (Skeleton: the control-plane helper fills it in.)

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::ApiError;
use crate::layout::SandboxLayout;
use crate::toolbox::SandboxRuntime;

/// Everything the toolbox needs to serve one request for one sandbox.
#[derive(Clone)]
pub struct ToolboxTarget {
    /// Sandbox id.
    pub sandbox_id: String,
    /// Its directories and path mapping.
    pub layout: Arc<SandboxLayout>,
    /// Its live sessions and processes.
    pub runtime: Arc<SandboxRuntime>,
    /// The sandbox env (`envVars` at creation).
    pub env: BTreeMap<String, String>,
    /// The sandbox user (default `daytona`).
    pub user: String,
    /// The `code-toolbox-language` label, if any.
    pub language: Option<String>,
}

/// The emulator's shared state, cheap to clone.
#[derive(Clone, Default)]
pub struct AppState {}

impl AppState {
    /// The toolbox target for a *started* sandbox: 404 (daemon shape) when unknown or deleted,
    /// an error when not started (as the proxy answers for a stopped sandbox). Also records activity.
    pub fn toolbox_target(&self, sandbox_id: &str) -> Result<ToolboxTarget, ApiError> {
        let _ = sandbox_id;
        Err(ApiError::daemon(axum::http::StatusCode::NOT_FOUND, "NOT_FOUND", "not implemented"))
    }
}
