//! Snapshot DTOs (control plane): `GET/POST /snapshots`, `GET/DELETE /snapshots/{id}`,
//! `POST /snapshots/{id}/activate`, `GET /snapshots/{id}/build-logs-url`.
//!
//! Several `SnapshotDto` fields are required *and* nullable in the spec (`size`, `entrypoint`,
//! `errorReason`, `lastUsedAt`, `sourceSandboxId`): they are `Option`s that serialise as `null`
//! rather than being left out.

use serde::{Deserialize, Serialize};

use crate::sandbox::{BuildInfo, CreateBuildInfo, SandboxClass, quantity, wire_enum};

wire_enum! {
    /// `SnapshotState`.
    SnapshotState {
        /// Its image is being built from `buildInfo`.
        Building => "building",
        /// Accepted, not yet processed.
        Pending => "pending",
        /// Its image is being pulled.
        Pulling => "pulling",
        /// Being taken from a sandbox.
        Snapshotting => "snapshotting",
        /// Usable for new sandboxes.
        Active => "active",
        /// Deactivated (unused for a long time, or by request); activate it to use it.
        Inactive => "inactive",
        /// Failed; see `errorReason`.
        Error => "error",
        /// The image build failed; see `errorReason`.
        BuildFailed => "build_failed",
        /// Being deleted.
        Removing => "removing",
    }
}

impl SnapshotState {
    /// States a snapshot does not leave on its own (`active`, `error`, `build_failed`), which
    /// the SDKs wait for after a create.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SnapshotState::Active | SnapshotState::Error | SnapshotState::BuildFailed
        )
    }
}

/// `SnapshotDto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDto {
    /// Snapshot id.
    pub id: String,
    /// Owning organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Whether it is a general (shared) snapshot.
    #[serde(default)]
    pub general: bool,
    /// Name, unique in the organization.
    pub name: String,
    /// Image it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// Where it is.
    pub state: SnapshotState,
    /// Size in GB (`null` until known).
    #[serde(default)]
    pub size: Option<f64>,
    /// Entrypoint command (`null` for the image's own).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// CPU cores of sandboxes made from it.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub cpu: f64,
    /// GPUs of sandboxes made from it.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub gpu: f64,
    /// GPU type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// Memory in GiB (note: `mem`, not `memory`).
    #[serde(default, serialize_with = "quantity::serialize")]
    pub mem: f64,
    /// Disk in GiB.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub disk: f64,
    /// Why it failed (`null` otherwise).
    #[serde(default)]
    pub error_reason: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339, `null` when never used.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// The build it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<BuildInfo>,
    /// Regions where it is available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_ids: Option<Vec<String>>,
    /// Runner that first held it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_runner_id: Option<String>,
    /// The image reference sandboxes run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<String>,
    /// Sandbox it was taken from (`null` otherwise).
    #[serde(default)]
    pub source_sandbox_id: Option<String>,
    /// Sandbox class it targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_class: Option<SandboxClass>,
}

/// `PaginatedSnapshots`: `GET /snapshots?page&limit&name&sort&order`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedSnapshots {
    /// This page.
    pub items: Vec<SnapshotDto>,
    /// Matching snapshots over all pages.
    #[serde(default)]
    pub total: u64,
    /// 1-based page number.
    #[serde(default)]
    pub page: u64,
    /// Number of pages.
    #[serde(default)]
    pub total_pages: u64,
}

/// `CreateSnapshot`: body of `POST /snapshots` (an image name, or a Dockerfile in `buildInfo`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSnapshot {
    /// Snapshot name.
    pub name: String,
    /// Image to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// Entrypoint command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<i64>,
    /// Preferred GPU types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<Vec<String>>,
    /// Memory in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Disk in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<i64>,
    /// A Dockerfile to build instead of an image to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<CreateBuildInfo>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    /// Target sandbox class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_class: Option<SandboxClass>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nullable_required_fields_are_sent_as_null() {
        let dto = SnapshotDto {
            id: "s".into(),
            organization_id: None,
            general: false,
            name: "n".into(),
            image_name: Some("python:3.12".into()),
            state: SnapshotState::Active,
            size: None,
            entrypoint: None,
            cpu: 1.0,
            gpu: 0.0,
            gpu_type: None,
            mem: 1.0,
            disk: 3.0,
            error_reason: None,
            created_at: "t".into(),
            updated_at: "t".into(),
            last_used_at: None,
            build_info: None,
            region_ids: None,
            initial_runner_id: None,
            r#ref: None,
            source_sandbox_id: None,
            sandbox_class: None,
        };
        let v = serde_json::to_value(&dto).unwrap();
        for key in [
            "size",
            "entrypoint",
            "errorReason",
            "lastUsedAt",
            "sourceSandboxId",
        ] {
            assert!(v[key].is_null(), "{key} should be null in {v}");
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["cpu"], 1);
        assert_eq!(v["state"], "active");
    }

    #[test]
    fn terminal_states() {
        assert!(SnapshotState::BuildFailed.is_terminal());
        assert!(!SnapshotState::Pulling.is_terminal());
    }
}
