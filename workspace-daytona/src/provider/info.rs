//! `get_info` (Daytona's view of the sandbox, mapped) and `get_instructions` (a fixed text
//! built from the options alone, so it is the same before and after a start).

use daytona_api::sandbox::SandboxState;
use workspace_core::{Resources, Result, SandboxInfo, SandboxStatus};

use super::builder::{DEFAULT_WORK_DIR, DaytonaSandboxBuilder};
use super::shared::Shared;

/// The provider name reported by [`WorkspaceSandbox::provider`](workspace_core::WorkspaceSandbox::provider).
pub const PROVIDER: &str = "daytona";

/// The trait's status for a Daytona state; `None` for states that say nothing (`unknown`).
pub(crate) fn status_of(state: &SandboxState) -> Option<SandboxStatus> {
    Some(match state {
        SandboxState::Started
        | SandboxState::Resizing
        | SandboxState::Snapshotting
        | SandboxState::Forking => SandboxStatus::Running,
        SandboxState::Creating
        | SandboxState::Restoring
        | SandboxState::Starting
        | SandboxState::PendingBuild
        | SandboxState::BuildingSnapshot
        | SandboxState::PullingSnapshot
        | SandboxState::Resuming => SandboxStatus::Starting,
        SandboxState::Stopping | SandboxState::Archiving | SandboxState::Pausing => {
            SandboxStatus::Stopping
        }
        SandboxState::Stopped | SandboxState::Archived | SandboxState::Paused => {
            SandboxStatus::Stopped
        }
        SandboxState::Destroying => SandboxStatus::Destroying,
        SandboxState::Destroyed => SandboxStatus::Destroyed,
        SandboxState::Error | SandboxState::BuildFailed => SandboxStatus::Error,
        _ => return None,
    })
}

/// GiB as the API reports them, in MiB.
fn gib_to_mib(gib: f64) -> Option<u64> {
    (gib.is_finite() && gib > 0.0).then(|| (gib * 1024.0).round() as u64)
}

pub(crate) async fn get_info(shared: &Shared) -> Result<SandboxInfo> {
    shared.lifecycle.check_usable()?;
    let b = shared.builder();
    let mut status = shared.lifecycle.status();
    let mut created_at = shared.created_at();
    let mut info_meta = serde_json::Map::new();
    info_meta.insert("language".into(), b.language.as_str().into());
    info_meta.insert("ephemeral".into(), b.ephemeral.into());
    if let Some(s) = &b.snapshot {
        info_meta.insert("snapshot".into(), s.clone().into());
    } else if let Some(i) = &b.image {
        info_meta.insert("image".into(), i.clone().into());
    }
    let mut resources = None;
    let mut timeout_at = None;
    if let Some(attached) = shared.current() {
        let mut sb = attached.sandbox.clone();
        match sb.refresh().await {
            Ok(()) => {
                let data = sb.data();
                if let Some(mapped) = data.state.as_ref().and_then(status_of) {
                    status = mapped;
                }
                if let Some(at) = data
                    .created_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                {
                    created_at = at.with_timezone(&chrono::Utc);
                }
                resources = Some(Resources {
                    cpu_cores: (data.cpu > 0.0).then_some(data.cpu),
                    memory_mb: gib_to_mib(data.memory),
                    disk_mb: gib_to_mib(data.disk),
                });
                let minutes = data
                    .auto_stop_interval
                    .and_then(|m| u32::try_from(m).ok())
                    .filter(|m| *m > 0);
                if status == SandboxStatus::Running
                    && let (Some(minutes), Some(last)) = (
                        minutes,
                        data.last_activity_at
                            .as_deref()
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()),
                    )
                    && let Some(span) = b.interval_unit.checked_mul(minutes)
                    && let Ok(span) = chrono::Duration::from_std(span)
                {
                    timeout_at = Some(last.with_timezone(&chrono::Utc) + span);
                }
                if !data.target.is_empty() {
                    info_meta.insert("target".into(), data.target.clone().into());
                }
                if let Some(state) = &data.state {
                    info_meta.insert("daytona_state".into(), state.to_string().into());
                }
                if let Some(m) = data.auto_stop_interval {
                    info_meta.insert("auto_stop_interval".into(), m.into());
                }
            }
            // Deleted underneath: the next command creates a new one.
            Err(e) if e.is_not_found() => {
                status = SandboxStatus::Stopped;
                info_meta.insert("daytona_state".into(), "not_found".into());
            }
            Err(e) => return Err(e.into()),
        }
        info_meta.insert("daytona_id".into(), sb.id().to_string().into());
    }
    let mut info = SandboxInfo::new(
        shared.opts.id.clone(),
        shared.opts.name.clone(),
        PROVIDER,
        status,
        created_at,
    );
    info.last_used_at = shared.last_used_at();
    info.timeout_at = timeout_at;
    info.resources = resources;
    info.metadata = info_meta.into_iter().collect();
    Ok(info)
}

/// The instructions text: Mastra's format, from the options only.
pub(crate) fn instructions(b: &DaytonaSandboxBuilder) -> String {
    if let Some(text) = &b.instructions {
        return text.clone();
    }
    let timeout_secs = {
        let d = b.default_timeout;
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    };
    let mut text = format!(
        "Cloud sandbox with isolated execution ({} runtime). Default working directory: {}. \
         Command timeout: {timeout_secs}s. Running as user: {}.",
        b.language.as_str(),
        b.working_directory.as_deref().unwrap_or(DEFAULT_WORK_DIR),
        b.user.as_deref().unwrap_or("daytona"),
    );
    if !b.volumes.is_empty() {
        text.push_str(&format!(" {} volume(s) attached.", b.volumes.len()));
    }
    if b.network_block_all == Some(true) {
        text.push_str(" Network access is blocked.");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::CodeLanguage;
    use std::time::Duration;

    #[test]
    fn instructions_match_the_documented_text() {
        assert_eq!(
            instructions(&DaytonaSandboxBuilder::default()),
            "Cloud sandbox with isolated execution (typescript runtime). Default working \
             directory: /home/daytona. Command timeout: 300s. Running as user: daytona."
        );
        let all = DaytonaSandboxBuilder::default()
            .language(CodeLanguage::Python)
            .default_timeout(Duration::from_secs(60))
            .user("app")
            .volume("vol-123", "/data")
            .network_block_all(true);
        assert_eq!(
            instructions(&all),
            "Cloud sandbox with isolated execution (python runtime). Default working \
             directory: /home/daytona. Command timeout: 60s. Running as user: app. 1 volume(s) \
             attached. Network access is blocked."
        );
        let rounded = DaytonaSandboxBuilder::default().default_timeout(Duration::from_millis(1500));
        assert!(instructions(&rounded).contains("Command timeout: 2s."));
        let custom = DaytonaSandboxBuilder::default().instructions("mine");
        assert_eq!(instructions(&custom), "mine");
    }

    #[test]
    fn states_map() {
        assert_eq!(
            status_of(&SandboxState::Started),
            Some(SandboxStatus::Running)
        );
        assert_eq!(
            status_of(&SandboxState::Archived),
            Some(SandboxStatus::Stopped)
        );
        assert_eq!(
            status_of(&SandboxState::BuildFailed),
            Some(SandboxStatus::Error)
        );
        assert_eq!(
            status_of(&SandboxState::PullingSnapshot),
            Some(SandboxStatus::Starting)
        );
        assert_eq!(status_of(&SandboxState::Unknown), None);
        assert_eq!(gib_to_mib(4.0), Some(4096));
        assert_eq!(gib_to_mib(0.0), None);
    }
}
