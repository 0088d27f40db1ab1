//! Volumes: `GET/POST /volumes`, `GET/DELETE /volumes/{volumeId}`,
//! `GET /volumes/by-name/{name}`, and what a sandbox create needs to mount them.
//!
//! A volume is a host directory, `<data dir>/volumes/<id>`, that outlives sandboxes: mounted
//! at its `mountPath` in every sandbox created with it (see
//! [`crate::layout::SandboxLayout::add_volume`] for where mount paths may go). States follow the
//! spec: with no transition delay a create answers `ready` and a delete leaves the volume
//! `deleted` (listed with `includeDeleted=true`); with a delay they pass through
//! `pending_create` and `pending_delete`. A volume mounted by a sandbox that still exists
//! cannot be deleted (409). Names are unique among volumes that are not deleted; `get(name,
//! create=true)` in the SDKs is a client-side get-then-create.

use chrono::Utc;
use daytona_api::sandbox::{SandboxState, SandboxVolume};
use daytona_api::volume::{VolumeDto, VolumeState};

use crate::error::ApiError;
use crate::registries::{VolumeEntry, VolumeMount};
use crate::state::AppState;
use crate::timestamp::rfc3339;

/// Longest volume name accepted.
const MAX_NAME: usize = 255;

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("Volume with ID or name {key} not found"))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid volume name {name:?}: use 1-{MAX_NAME} letters, digits, '-', '_' or '.'"
        )))
    }
}

impl AppState {
    /// `POST /volumes` `{name}`.
    pub fn create_volume(&self, name: &str) -> Result<VolumeDto, ApiError> {
        let name = name.trim();
        check_name(name)?;
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.config().data_dir.join("volumes").join(&id);
        let delayed = !self.config().transition_delay.is_zero();
        let dto = {
            let mut volumes = self.volumes();
            if volumes.live(name).is_some_and(|e| e.dto.name == name) {
                return Err(ApiError::conflict(format!(
                    "Volume with name {name} already exists"
                )));
            }
            std::fs::create_dir_all(&dir).map_err(|e| {
                tracing::error!(dir = %dir.display(), error = %e, "cannot create volume directory");
                ApiError::internal()
            })?;
            let now = rfc3339(Utc::now());
            let dto = VolumeDto {
                id: id.clone(),
                name: name.to_string(),
                organization_id: self.config().organization_id.clone(),
                state: if delayed {
                    VolumeState::PendingCreate
                } else {
                    VolumeState::Ready
                },
                created_at: now.clone(),
                updated_at: now,
                last_used_at: None,
                error_reason: None,
            };
            volumes.next_seq += 1;
            let seq = volumes.next_seq;
            volumes.entries.insert(
                id.clone(),
                VolumeEntry {
                    dto: dto.clone(),
                    dir,
                    seq,
                },
            );
            dto
        };
        self.emit(
            "volume.created",
            serde_json::to_value(&dto).unwrap_or_default(),
        );
        if delayed {
            let this = self.clone();
            self.tasks().spawn(async move {
                if this.transition_pause().await {
                    this.set_volume_state(&id, VolumeState::Ready);
                }
            });
        }
        Ok(dto)
    }

    /// `GET /volumes?includeDeleted=`: oldest first.
    pub fn list_volumes(&self, include_deleted: bool) -> Vec<VolumeDto> {
        let volumes = self.volumes();
        let mut entries: Vec<&VolumeEntry> = volumes
            .entries
            .values()
            .filter(|e| include_deleted || e.dto.state != VolumeState::Deleted)
            .collect();
        entries.sort_by_key(|e| e.seq);
        entries.iter().map(|e| e.dto.clone()).collect()
    }

    /// `GET /volumes/{volumeId}` (deleted volumes too, as their final state).
    pub fn get_volume(&self, id: &str) -> Result<VolumeDto, ApiError> {
        let volumes = self.volumes();
        volumes
            .entries
            .get(id)
            .or_else(|| volumes.live(id))
            .map(|e| e.dto.clone())
            .ok_or_else(|| not_found(id))
    }

    /// `GET /volumes/by-name/{name}` (live volumes only).
    pub fn get_volume_by_name(&self, name: &str) -> Result<VolumeDto, ApiError> {
        let volumes = self.volumes();
        volumes
            .entries
            .values()
            .find(|e| e.dto.name == name && e.dto.state != VolumeState::Deleted)
            .map(|e| e.dto.clone())
            .ok_or_else(|| ApiError::not_found(format!("Volume with name {name} not found")))
    }

    /// `DELETE /volumes/{volumeId}`: 409 while a sandbox that still exists mounts it; its
    /// directory is removed.
    pub async fn delete_volume(&self, id: &str) -> Result<(), ApiError> {
        let (volume_id, dir) = {
            let volumes = self.volumes();
            let entry = volumes.live(id).ok_or_else(|| not_found(id))?;
            if entry.dto.state != VolumeState::Ready && entry.dto.state != VolumeState::Error {
                return Err(ApiError::bad_request(format!(
                    "Volume {} is not in a deletable state (state: {})",
                    entry.dto.name, entry.dto.state
                )));
            }
            (entry.dto.id.clone(), entry.dir.clone())
        };
        let users: Vec<String> = self
            .registry()
            .entries
            .values()
            .filter(|e| e.dto.state != Some(SandboxState::Destroyed))
            .filter(|e| {
                e.dto
                    .volumes
                    .as_ref()
                    .is_some_and(|v| v.iter().any(|m| m.volume_id == volume_id))
            })
            .map(|e| e.dto.id.clone())
            .collect();
        if let Some(user) = users.first() {
            return Err(ApiError::conflict(format!(
                "Volume {id} is in use by sandbox {user}; delete the sandbox first"
            )));
        }
        let delayed = !self.config().transition_delay.is_zero();
        self.set_volume_state(
            &volume_id,
            if delayed {
                VolumeState::PendingDelete
            } else {
                VolumeState::Deleted
            },
        );
        let remove = async move {
            let result = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
            if let Ok(Err(e)) = result
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, "cannot remove a volume directory");
            }
        };
        if delayed {
            let this = self.clone();
            self.tasks().spawn(async move {
                this.transition_pause().await;
                remove.await;
                this.set_volume_state(&volume_id, VolumeState::Deleted);
            });
        } else {
            remove.await;
        }
        Ok(())
    }

    /// Resolves the volumes of a sandbox create: each must exist and be `ready`; a `subpath`
    /// is created inside the volume. Marks them used.
    pub(crate) fn volumes_for_mount(
        &self,
        requested: &[SandboxVolume],
    ) -> Result<Vec<VolumeMount>, ApiError> {
        let mut volumes = self.volumes();
        let mut out = Vec::new();
        for v in requested {
            let entry = volumes
                .live(v.volume_id.trim())
                .ok_or_else(|| not_found(&v.volume_id))?;
            if entry.dto.state != VolumeState::Ready {
                return Err(ApiError::bad_request(format!(
                    "Volume {} is not ready (state: {})",
                    entry.dto.name, entry.dto.state
                )));
            }
            let mut dir = entry.dir.clone();
            let subpath = v
                .subpath
                .as_deref()
                .map(|s| s.trim_matches('/'))
                .filter(|s| !s.is_empty());
            if let Some(sub) = subpath {
                if sub
                    .split('/')
                    .any(|c| c == ".." || c == "." || c.is_empty())
                {
                    return Err(ApiError::bad_request(format!(
                        "Invalid volume subpath {sub:?}: use a relative path without `.` or `..`"
                    )));
                }
                dir = dir.join(sub);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot create a volume subpath");
                    ApiError::internal()
                })?;
            }
            out.push(VolumeMount {
                volume_id: entry.dto.id.clone(),
                mount_path: v.mount_path.clone(),
                dir,
                subpath: subpath.map(str::to_string),
            });
        }
        let now = rfc3339(Utc::now());
        for m in &out {
            if let Some(e) = volumes.entries.get_mut(&m.volume_id) {
                e.dto.last_used_at = Some(now.clone());
            }
        }
        Ok(out)
    }

    fn set_volume_state(&self, id: &str, state: VolumeState) {
        let dto = {
            let mut volumes = self.volumes();
            let Some(entry) = volumes.entries.get_mut(id) else {
                return;
            };
            entry.dto.state = state;
            entry.dto.updated_at = rfc3339(Utc::now());
            entry.dto.clone()
        };
        self.emit(
            "volume.state.updated",
            serde_json::json!({"volume": dto, "newState": dto.state}),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("my-data_1.v2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("../x").is_err());
        assert!(check_name("a b").is_err());
    }
}
