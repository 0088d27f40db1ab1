//! Session ids and [`SessionGuard`], which makes sure a command's session is deleted however
//! the command ends: normally, by timeout or cancel, by error, or by its future being dropped.

use std::time::Duration;

use crate::process::Process;

/// Prefix of the sessions commands run in.
pub(crate) const COMMAND_SESSION_PREFIX: &str = "ws-cmd-";

/// A fresh session id: `<prefix><unix millis>-<8 hex>`. The time lets a later handle tell when
/// a background process started.
pub(crate) fn new_session_id(prefix: &str) -> String {
    let millis = chrono::Utc::now().timestamp_millis();
    format!("{prefix}{millis}-{:08x}", rand::random::<u32>())
}

/// The start time encoded by [`new_session_id`].
pub(crate) fn session_started_at(prefix: &str, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let rest = id.strip_prefix(prefix)?;
    let (millis, _) = rest.split_once('-')?;
    chrono::DateTime::from_timestamp_millis(millis.parse().ok()?)
}

/// Deletes its session when dropped, unless told how to delete it first.
pub(crate) struct SessionGuard {
    process: Process,
    id: String,
    armed: bool,
}

impl SessionGuard {
    pub(crate) fn new(process: Process, id: String) -> Self {
        SessionGuard {
            process,
            id,
            armed: true,
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Keep the session (something lives on in it); its id.
    pub(crate) fn keep(mut self) -> String {
        self.armed = false;
        std::mem::take(&mut self.id)
    }

    /// Delete it off the caller's path (the command is done; nothing waits on the delete).
    pub(crate) fn delete_in_background(mut self) {
        self.armed = false;
        spawn_delete(self.process.clone(), std::mem::take(&mut self.id));
    }

    /// Delete it now, which kills what still runs in it; waits at most `bound`.
    pub(crate) async fn delete_now(mut self, bound: Duration) {
        self.armed = false;
        let id = std::mem::take(&mut self.id);
        match tokio::time::timeout(bound, self.process.delete_session(&id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_not_found() => {}
            Ok(Err(e)) => tracing::warn!(session = %id, error = %e, "deleting a session failed"),
            Err(_) => {
                tracing::warn!(session = %id, "deleting a session timed out; retrying in the background");
                spawn_delete(self.process.clone(), id);
            }
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.armed {
            spawn_delete(self.process.clone(), std::mem::take(&mut self.id));
        }
    }
}

/// Delete `id` on the current runtime without waiting for it.
fn spawn_delete(process: Process, id: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(session = %id, "no async runtime left to delete a session; it is left running");
        return;
    };
    runtime.spawn(async move {
        match process.delete_session(&id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(session = %id, error = %e, "deleting a session failed"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_start_time() {
        let before = chrono::Utc::now().timestamp_millis();
        let id = new_session_id("ws-proc-");
        let at = session_started_at("ws-proc-", &id).map(|t| t.timestamp_millis());
        assert!(at.is_some_and(|t| t >= before && t <= chrono::Utc::now().timestamp_millis()));
        assert_ne!(id, new_session_id("ws-proc-"));
        assert_eq!(session_started_at("ws-proc-", "ws-proc-x-1"), None);
        assert_eq!(session_started_at("ws-proc-", "other"), None);
    }
}
