//! Keeping a sandbox from idling out while a command runs: Daytona stops a sandbox after its
//! auto-stop interval without API activity, and a long command makes none of its own.

use std::convert::Infallible;
use std::time::Duration;

use tokio::time::Instant;

use crate::sandbox::Sandbox;

use super::shared::Shared;

/// A third of the auto-stop interval, in real time; `None` when auto-stop is off.
pub(crate) fn keepalive_period(shared: &Shared, sandbox: &Sandbox) -> Option<Duration> {
    let minutes = sandbox
        .data()
        .auto_stop_interval
        .unwrap_or_else(|| i64::from(shared.builder().auto_stop_interval));
    let minutes = u32::try_from(minutes).ok().filter(|m| *m > 0)?;
    let period = shared.builder().interval_unit.checked_mul(minutes)? / 3;
    Some(period.max(Duration::from_millis(10)))
}

/// Refresh the sandbox's activity every `period` for as long as it is polled.
pub(crate) async fn keepalive(sandbox: &Sandbox, period: Option<Duration>) -> Infallible {
    let Some(period) = period else {
        return std::future::pending().await;
    };
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = sandbox.refresh_activity().await {
            tracing::debug!(error = %e, "refreshing the sandbox's activity failed");
        }
    }
}
