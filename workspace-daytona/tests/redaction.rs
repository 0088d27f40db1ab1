//! Credentials and env values never reach Debug output or error messages.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use workspace_daytona::{CreateSandboxParams, DaytonaClient, DaytonaConfig, ExecuteOptions};

#[tokio::test]
async fn debug_output_is_redacted() {
    let emu = emulator().await;
    let client = client(&emu);
    let sandbox = client
        .create(
            CreateSandboxParams::new().env("TOKEN", "env-secret-value"),
            T,
        )
        .await
        .unwrap();
    let outputs = [
        format!("{client:?}"),
        format!("{:?}", client.config()),
        format!("{sandbox:?}"),
        format!("{:?}", sandbox.process()),
        format!("{:?}", sandbox.fs()),
        format!(
            "{:?}",
            CreateSandboxParams::new().env("TOKEN", "env-secret-value")
        ),
        format!(
            "{:?}",
            ExecuteOptions::new().env("TOKEN", "env-secret-value")
        ),
    ];
    for out in outputs {
        assert!(!out.contains(API_KEY), "{out}");
        assert!(!out.contains("env-secret-value"), "{out}");
    }
    let err = DaytonaClient::new(DaytonaConfig::with_api_key("bad\nkey-secret")).unwrap_err();
    assert!(!format!("{err:?} {err}").contains("key-secret"));
}
