//! What the control plane assumes when a create leaves something out, and the rule every
//! resource request follows; sandbox and snapshot creates share them.

use crate::error::ApiError;

/// Snapshot reported when a create names none (the real API uses its configured default).
pub const DEFAULT_SNAPSHOT: &str = "daytonaio/sandbox:latest";
/// Region reported when a create names none.
pub const DEFAULT_TARGET: &str = "us";
/// OS user when a create names none.
pub const DEFAULT_USER: &str = "daytona";
/// Upstream default auto-stop interval, minutes.
pub const DEFAULT_AUTO_STOP: i64 = 15;
/// Upstream default auto-archive interval, minutes (7 days).
pub const DEFAULT_AUTO_ARCHIVE: i64 = 7 * 24 * 60;
/// Upstream maximum auto-archive interval, minutes (30 days); `0` means this.
pub const MAX_AUTO_ARCHIVE: i64 = 30 * 24 * 60;
/// Reported daemon version.
pub const DAEMON_VERSION: &str = "v0.205.1-emulator";
/// Reported runner id.
pub const RUNNER_ID: &str = "emulator-runner";
/// GPU types the API accepts.
pub const GPU_TYPES: &[&str] = &["H100", "H200", "RTX-PRO-6000", "RTX-4090", "RTX-5090"];

/// The API's rule for resources, in sandbox and snapshot creates alike: none below zero.
pub(crate) fn check_resources(
    cpu: Option<i64>,
    gpu: Option<i64>,
    memory: Option<i64>,
    disk: Option<i64>,
) -> Result<(), ApiError> {
    for (field, value) in [
        ("cpu", cpu),
        ("gpu", gpu),
        ("memory", memory),
        ("disk", disk),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::bad_request(format!(
                "{field} must not be less than 0"
            )));
        }
    }
    Ok(())
}
