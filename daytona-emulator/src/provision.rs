//! How the control plane gives a sandbox its host directory and toolbox runtime, and takes
//! them away again. The only place the lifecycle code touches [`crate::layout`] and
//! [`crate::toolbox`], so their APIs meet the control plane here.

use std::path::Path;
use std::sync::Arc;

use crate::error::ApiError;
use crate::layout::{Isolation, SandboxLayout, detect_isolation};
use crate::registries::VolumeMount;
use crate::runtime::SandboxRuntime;

/// The home directory (inside the sandbox) of `user`.
pub(crate) fn home_path(user: &str) -> String {
    if user == "root" {
        "/root".to_string()
    } else {
        format!("/home/{user}")
    }
}

/// Creates the directory tree of a new sandbox at `dir`, with its volumes mounted, its commands
/// confined as `isolation` says (probed when `None`). A mount path the layout refuses is a 400,
/// and leaves no directory behind.
pub(crate) async fn create_layout(
    dir: &Path,
    user: &str,
    volumes: &[VolumeMount],
    isolation: Option<Isolation>,
) -> Result<Arc<SandboxLayout>, ApiError> {
    let isolation = isolation.unwrap_or_else(detect_isolation);
    let mut layout = SandboxLayout::create_with(dir, &home_path(user), isolation).map_err(|e| {
        tracing::error!(dir = %dir.display(), error = %e, "cannot create sandbox directory");
        ApiError::internal()
    })?;
    for v in volumes {
        if let Err(e) = layout.add_volume(&v.mount_path, &v.dir) {
            remove_layout(Arc::new(layout)).await;
            return Err(e);
        }
    }
    Ok(Arc::new(layout))
}

/// A fresh runtime (no sessions, no processes) for a sandbox that is starting.
pub(crate) fn new_runtime(layout: &Arc<SandboxLayout>) -> Arc<SandboxRuntime> {
    Arc::new(SandboxRuntime::new(layout.clone()))
}

/// Kills every process of a sandbox and waits for them to be gone.
pub(crate) async fn shutdown_runtime(runtime: &SandboxRuntime) {
    runtime.shutdown().await;
}

/// Deletes a sandbox's directory tree (off the async threads: it may be large).
pub(crate) async fn remove_layout(layout: Arc<SandboxLayout>) {
    let result = tokio::task::spawn_blocking(move || layout.remove()).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot remove sandbox directory"),
        Err(e) => tracing::warn!(error = %e, "sandbox directory removal task failed"),
    }
}

/// What is alive in a sandbox, as JSON for `/_emulator/sandboxes/{id}/runtime`:
/// `{"sessions":[{"id","commands":[{"id","command","exitCode"}]}],"ptys":[id],"liveProcesses":n}`
/// (`exitCode` is `null` while a command runs).
pub(crate) fn runtime_snapshot(runtime: &SandboxRuntime) -> serde_json::Value {
    let snapshot = runtime.snapshot();
    let sessions: Vec<serde_json::Value> = snapshot
        .sessions
        .iter()
        .map(|s| {
            let commands: Vec<serde_json::Value> = s
                .commands
                .iter()
                .map(|(id, command, exit)| {
                    serde_json::json!({"id": id, "command": command, "exitCode": exit})
                })
                .collect();
            serde_json::json!({"id": s.id, "commands": commands})
        })
        .collect();
    serde_json::json!({
        "sessions": sessions,
        "ptys": snapshot.ptys,
        "liveProcesses": snapshot.live_processes,
    })
}
