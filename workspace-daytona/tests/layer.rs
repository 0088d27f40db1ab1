//! `workspace_core::layer::Hooked` over `DaytonaSandbox` on the emulator: an after-start hook
//! sees the overlay, a before-stop hook runs, a failing hook is a typed error naming it.

mod provider_support;

use std::sync::Arc;

use workspace_core::layer::Hooked;
use workspace_core::{SandboxError, WorkspaceSandbox, WorkspaceSandboxExt};

fn daytona() -> Arc<dyn WorkspaceSandbox> {
    Arc::new(
        provider_support::builder_for(&provider_support::shared_api_url())
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_and_overlay_on_daytona() {
    let sandbox = Hooked::new(daytona())
        .after_start("setup", "printf '%s\\n' \"$STAGE\" > hook.txt")
        .before_stop("flush", "printf flushed > flushed.txt");
    sandbox
        .set_env("STAGE", "prepared")
        .unwrap_or_else(|e| panic!("{e}"));
    let r = sandbox
        .run("cat hook.txt; echo \"$STAGE\"")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "prepared\nprepared\n");
    sandbox.stop().await.unwrap_or_else(|e| panic!("{e}"));
    let r = sandbox
        .run("cat flushed.txt")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "flushed");
    sandbox.destroy().await.unwrap_or_else(|e| panic!("{e}"));

    let failing = Hooked::new(daytona()).after_start("clone", "exit 7");
    match failing.start().await {
        Err(SandboxError::Hook { hook, message, .. }) => {
            assert_eq!(hook, "clone");
            assert!(message.contains("exited with code 7"), "{message}");
        }
        other => panic!("expected a hook error, got {other:?}"),
    }
    failing.destroy().await.unwrap_or_else(|e| panic!("{e}"));
}
