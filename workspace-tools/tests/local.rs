//! Every tool check of [`workspace_tools::testkit`] on `LocalSandbox`, each in a fresh temporary
//! root that `destroy` removes, plus the checks specific to a local root.

use std::sync::Arc;

use workspace_core::WorkspaceSandbox;
use workspace_local::LocalSandbox;

async fn local_sandbox() -> Arc<dyn WorkspaceSandbox> {
    Arc::new(
        LocalSandbox::builder()
            .build()
            .expect("a LocalSandbox with a temporary root builds"),
    )
}

workspace_tools::tool_checks!(local_sandbox);

/// Paths that climb out of the root, absolutely or relatively, are the sandbox's
/// `PermissionDenied`, surfaced as error text.
#[test]
fn path_outside_root_is_denied() {
    for outside in ["../outside.txt", "/etc/hostname", "sub/../../x"] {
        workspace_tools::testkit::run_check(local_sandbox, |sandbox| {
            Box::pin(async move {
                workspace_tools::testkit::path_outside_root_is_denied(sandbox, outside).await
            })
        });
    }
}

/// The check list and the generated tests cover the same checks.
#[test]
fn every_check_is_listed() {
    assert_eq!(workspace_tools::testkit::CHECKS.len(), 21);
}
