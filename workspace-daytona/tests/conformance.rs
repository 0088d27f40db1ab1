//! The shared conformance suite against `DaytonaSandbox` on an in-process emulator: every check
//! of `workspace_core::testkit`, one test each, each with fresh sandboxes that are destroyed
//! afterwards.

mod provider_support;

use std::sync::Arc;

use workspace_core::WorkspaceSandbox;

async fn make() -> Arc<dyn WorkspaceSandbox> {
    let sandbox = provider_support::builder_for(&provider_support::shared_api_url())
        .build()
        .unwrap_or_else(|e| panic!("building a DaytonaSandbox: {e}"));
    Arc::new(sandbox)
}

workspace_core::conformance_tests!(make);
