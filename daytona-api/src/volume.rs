//! Volume DTOs (control plane): `GET/POST /volumes`, `GET/DELETE /volumes/{volumeId}`,
//! `GET /volumes/by-name/{name}`. A volume is mounted into a sandbox with
//! [`crate::sandbox::SandboxVolume`] in the create request.
//!
//! `VolumeDto.errorReason` (and `lastUsedAt`) are nullable: they serialise as `null`.

use serde::{Deserialize, Serialize};

use crate::sandbox::wire_enum;

wire_enum! {
    /// `VolumeState`.
    VolumeState {
        /// Being created.
        Creating => "creating",
        /// Mountable.
        Ready => "ready",
        /// Accepted, not yet created.
        PendingCreate => "pending_create",
        /// Deletion accepted.
        PendingDelete => "pending_delete",
        /// Being deleted.
        Deleting => "deleting",
        /// Gone (listed only with `includeDeleted=true`).
        Deleted => "deleted",
        /// Failed; see `errorReason`.
        Error => "error",
    }
}

/// `VolumeDto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeDto {
    /// Volume id.
    pub id: String,
    /// Name, unique in the organization.
    pub name: String,
    /// Owning organization.
    pub organization_id: String,
    /// Where it is.
    pub state: VolumeState,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339, `null` when never mounted.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// Why it failed (`null` otherwise).
    #[serde(default)]
    pub error_reason: Option<String>,
}

/// `CreateVolume`: body of `POST /volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateVolume {
    /// Volume name.
    pub name: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volume_round_trips_with_nulls() {
        let v = json!({"id": "v", "name": "data", "organizationId": "o", "state": "pending_delete",
            "createdAt": "t", "updatedAt": "t", "lastUsedAt": null, "errorReason": null});
        let dto: VolumeDto = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(dto.state, VolumeState::PendingDelete);
        assert_eq!(serde_json::to_value(&dto).unwrap(), v);
    }
}
