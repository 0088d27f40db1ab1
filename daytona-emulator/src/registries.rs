//! The registries [`AppState`](crate::state::AppState) keeps beside its sandboxes: snapshots,
//! volumes and signed preview links. They hold records only; the routes' rules live with the
//! operations (`snapshots`, `volumes`, `preview`), which reach these through the state.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use daytona_api::snapshot::SnapshotDto;
use daytona_api::volume::{VolumeDto, VolumeState};

use crate::build::BuildLog;

/// One snapshot as the emulator tracks it.
#[derive(Debug)]
pub(crate) struct SnapshotEntry {
    pub(crate) dto: SnapshotDto,
    pub(crate) seq: u64,
    pub(crate) log: Arc<BuildLog>,
    /// The `ENV` of its Dockerfile, given to sandboxes made from it.
    pub(crate) env: BTreeMap<String, String>,
}

/// Every snapshot.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    pub(crate) entries: HashMap<String, SnapshotEntry>,
    pub(crate) next_seq: u64,
}

impl Snapshots {
    pub(crate) fn resolve(&self, id_or_name: &str) -> Option<&SnapshotEntry> {
        self.entries
            .get(id_or_name)
            .or_else(|| self.entries.values().find(|e| e.dto.name == id_or_name))
    }

    pub(crate) fn resolve_mut(&mut self, id_or_name: &str) -> Option<&mut SnapshotEntry> {
        let id = self.resolve(id_or_name)?.dto.id.clone();
        self.entries.get_mut(&id)
    }
}

/// One volume as the emulator tracks it.
#[derive(Debug)]
pub(crate) struct VolumeEntry {
    pub(crate) dto: VolumeDto,
    /// Its host directory.
    pub(crate) dir: PathBuf,
    pub(crate) seq: u64,
}

/// Every volume, deleted ones included.
#[derive(Debug, Default)]
pub(crate) struct Volumes {
    pub(crate) entries: HashMap<String, VolumeEntry>,
    pub(crate) next_seq: u64,
}

impl Volumes {
    /// A volume that is not deleted, by id, else by name.
    pub(crate) fn live(&self, id_or_name: &str) -> Option<&VolumeEntry> {
        let live = |e: &&VolumeEntry| e.dto.state != VolumeState::Deleted;
        self.entries.get(id_or_name).filter(live).or_else(|| {
            self.entries
                .values()
                .filter(live)
                .find(|e| e.dto.name == id_or_name)
        })
    }
}

/// A volume resolved for mounting into a new sandbox.
#[derive(Debug, Clone)]
pub(crate) struct VolumeMount {
    /// The volume's id (the create request may have named it).
    pub(crate) volume_id: String,
    /// Mount path as requested.
    pub(crate) mount_path: String,
    /// Host directory to mount (the volume's, or its `subpath`).
    pub(crate) dir: PathBuf,
    /// The subpath, if any.
    pub(crate) subpath: Option<String>,
}

/// One signed preview URL.
#[derive(Debug, Clone)]
pub(crate) struct SignedPreview {
    pub(crate) sandbox_id: String,
    pub(crate) port: u16,
    pub(crate) expires: Instant,
}

/// The signed preview URLs handed out, by token.
#[derive(Debug, Default)]
pub(crate) struct SignedPreviews {
    pub(crate) by_token: HashMap<String, SignedPreview>,
}
