//! Shared test setup: an in-process emulator on port 0 and a client pointed at it.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::time::Duration;

use daytona_emulator::{Emulator, EmulatorHandle, RequestRecord};
use workspace_daytona::{CreateSandboxParams, DaytonaClient, DaytonaConfig, RetryConfig, Sandbox};

pub const API_KEY: &str = "test-key-0123456789";
pub const T: Option<Duration> = Some(Duration::from_secs(30));

/// Fast retries so fault tests finish quickly.
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_secs(3),
        base: 2.0,
        max_elapsed: Duration::from_secs(20),
    }
}

pub async fn emulator() -> EmulatorHandle {
    Emulator::builder()
        .api_key(API_KEY)
        .start()
        .await
        .expect("emulator starts")
}

pub fn config(emu: &EmulatorHandle) -> DaytonaConfig {
    DaytonaConfig::with_api_key(API_KEY)
        .api_url(&emu.api_url())
        .unwrap()
        .retry(fast_retry())
}

pub fn client(emu: &EmulatorHandle) -> DaytonaClient {
    DaytonaClient::new(config(emu)).unwrap()
}

pub async fn setup() -> (EmulatorHandle, DaytonaClient, Sandbox) {
    let emu = emulator().await;
    let client = client(&emu);
    let sandbox = client
        .create(
            CreateSandboxParams::new().label("suite", "workspace-daytona"),
            T,
        )
        .await
        .expect("create");
    (emu, client, sandbox)
}

/// Requests the emulator saw with this method whose path ends with `suffix`.
pub fn hits(emu: &EmulatorHandle, method: &str, suffix: &str) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.ends_with(suffix))
        .collect()
}
