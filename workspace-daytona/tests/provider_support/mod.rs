//! Test support for the `DaytonaSandbox` tests: emulators to run against, and handles on them.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use daytona_emulator::{Emulator, EmulatorHandle, RequestRecord};
use workspace_daytona::{DaytonaSandbox, DaytonaSandboxBuilder};

pub const API_KEY: &str = "provider-test-key";

/// One emulator for the whole test binary, serving from a thread and runtime of its own, so
/// that tests on their own runtimes (the conformance tests build one each) can share it.
static SHARED: LazyLock<String> = LazyLock::new(|| {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    Emulator::builder()
        .api_key(API_KEY)
        .data_dir(daytona_emulator::process_data_dir(
            tmp,
            "daytona-provider-emulator-",
        ))
        .start_detached()
        .expect("the shared emulator starts")
});

/// The API URL of the shared emulator.
pub fn shared_api_url() -> String {
    SHARED.clone()
}

/// A builder pointed at `api_url` with the test key.
pub fn builder_for(api_url: &str) -> DaytonaSandboxBuilder {
    DaytonaSandbox::builder().api_key(API_KEY).api_url(api_url)
}

/// A fresh emulator on the current runtime, for tests that inspect or disturb it.
pub async fn emulator() -> EmulatorHandle {
    Emulator::builder()
        .api_key(API_KEY)
        .start()
        .await
        .expect("emulator starts")
}

/// A fresh emulator whose emulated minute lasts `minute`.
pub async fn emulator_with_minute(minute: Duration) -> EmulatorHandle {
    Emulator::builder()
        .api_key(API_KEY)
        .auto_stop_unit(minute)
        .start()
        .await
        .expect("emulator starts")
}

/// Requests with this method whose path matches `pred`.
pub fn requests(
    emu: &EmulatorHandle,
    method: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method) && pred(&r.path))
        .collect()
}

/// The bodies of every `POST /api/sandbox` (create) the emulator received.
pub fn create_bodies(emu: &EmulatorHandle) -> Vec<serde_json::Value> {
    requests(emu, "POST", |p| p == "/api/sandbox")
        .into_iter()
        .filter_map(|r| r.body)
        .collect()
}

/// Poll `check` until it holds or `within` passes; whether it held.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prefix of a handle's resident shell session.
pub const RESIDENT_PREFIX: &str = "ws-sh-";

/// `(sessions that ran a command, live process groups)` of a sandbox in the emulator: what a
/// command or process left behind. The idle spare session a handle keeps ready is not counted
/// (see [`idle_sessions`]), nor its resident shell: its session and the loop's process group
/// (see [`resident_sessions`]).
pub fn runtime_load(emu: &EmulatorHandle, daytona_id: &str) -> (usize, usize) {
    match emu.state().runtime(daytona_id) {
        Some(rt) => {
            let snap = rt.snapshot();
            let resident = snap
                .sessions
                .iter()
                .filter(|s| s.id.starts_with(RESIDENT_PREFIX))
                .count();
            let used = snap
                .sessions
                .iter()
                .filter(|s| !s.commands.is_empty() && !s.id.starts_with(RESIDENT_PREFIX))
                .count();
            (used, snap.live_processes.saturating_sub(resident))
        }
        None => (0, 0),
    }
}

/// Resident shell sessions of a sandbox in the emulator.
pub fn resident_sessions(emu: &EmulatorHandle, daytona_id: &str) -> usize {
    emu.state().runtime(daytona_id).map_or(0, |rt| {
        rt.snapshot()
            .sessions
            .iter()
            .filter(|s| s.id.starts_with(RESIDENT_PREFIX))
            .count()
    })
}

/// Sessions of a sandbox in the emulator that never ran a command (a handle's spare).
pub fn idle_sessions(emu: &EmulatorHandle, daytona_id: &str) -> usize {
    emu.state().runtime(daytona_id).map_or(0, |rt| {
        rt.snapshot()
            .sessions
            .iter()
            .filter(|s| s.commands.is_empty())
            .count()
    })
}
