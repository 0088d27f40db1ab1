//! Snapshots: `GET/POST /snapshots`, `GET/DELETE /snapshots/{idOrName}`,
//! `POST /snapshots/{id}/activate|deactivate`, their build logs, and what a sandbox created
//! from a snapshot takes from it (resources, the `ENV` of its Dockerfile).
//!
//! A snapshot from an image name goes `pending` → `pulling` → `active`; one from a Dockerfile
//! (`buildInfo`) goes `pending` → `building` → `active`, or `build_failed` with `errorReason`
//! (see [`crate::build`] for what a build does and does not do: nothing is pulled or run).
//! Each phase takes one build step delay. A sandbox created with `snapshot: <name>` needs that
//! snapshot `active` (400 otherwise); names the emulator does not know (such as the default
//! `daytonaio/sandbox:latest`) are accepted as they always were, with default resources.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use daytona_api::sandbox::{BuildInfo, SandboxClass};
use daytona_api::snapshot::{CreateSnapshot, PaginatedSnapshots, SnapshotDto, SnapshotState};

use crate::build::{BuildLog, build_ref, dockerfile_env, parse_dockerfile, run_build};
use crate::defaults::{DEFAULT_TARGET, RUNNER_ID, check_resources};
use crate::error::ApiError;
use crate::registries::SnapshotEntry;
use crate::state::AppState;
use crate::timestamp::rfc3339;

/// Default resources of a snapshot, as upstream.
const DEFAULT_CPU: i64 = 1;
const DEFAULT_MEMORY: i64 = 1;
const DEFAULT_DISK: i64 = 3;
/// Largest page of `GET /snapshots`.
const MAX_LIMIT: usize = 200;

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("Snapshot {key} not found"))
}

/// Query of `GET /snapshots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotQuery {
    /// 1-based page.
    pub page: usize,
    /// Page size, 1..=200.
    pub limit: usize,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Only snapshots taken from this sandbox.
    pub source_sandbox_id: Option<String>,
    /// `name`, `state`, `lastUsedAt` or `createdAt`.
    pub sort: String,
    /// Descending order.
    pub descending: bool,
}

impl SnapshotQuery {
    /// Parses the raw query string (400 naming the bad parameter).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = SnapshotQuery {
            page: 1,
            limit: 100,
            name: None,
            source_sandbox_id: None,
            sort: "lastUsedAt".to_string(),
            descending: true,
        };
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "page" => {
                    q.page = v
                        .parse()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| ApiError::bad_request("page must not be less than 1"))?;
                }
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "limit must be a number between 1 and {MAX_LIMIT}"
                            ))
                        })?;
                }
                "name" => q.name = Some(v.into_owned()).filter(|n| !n.is_empty()),
                "sourceSandboxId" => {
                    q.source_sandbox_id = Some(v.into_owned()).filter(|n| !n.is_empty());
                }
                "sort" => {
                    if !["name", "state", "lastUsedAt", "createdAt"].contains(&v.as_ref()) {
                        return Err(ApiError::bad_request(
                            "sort must be one of the following values: name, state, lastUsedAt, createdAt",
                        ));
                    }
                    q.sort = v.into_owned();
                }
                "order" => {
                    q.descending = match v.as_ref() {
                        "asc" => false,
                        "desc" => true,
                        _ => {
                            return Err(ApiError::bad_request(
                                "order must be one of the following values: asc, desc",
                            ));
                        }
                    };
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// What a sandbox created from a registered snapshot takes from it.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotUse {
    pub(crate) name: String,
    pub(crate) cpu: f64,
    pub(crate) gpu: f64,
    pub(crate) memory: f64,
    pub(crate) disk: f64,
    pub(crate) env: BTreeMap<String, String>,
}

fn check_create(req: &CreateSnapshot) -> Result<(), ApiError> {
    if req.name.trim().is_empty() {
        return Err(ApiError::bad_request("name should not be empty"));
    }
    let image = req
        .image_name
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty());
    match (image, &req.build_info) {
        (None, None) => {
            return Err(ApiError::bad_request(
                "Either imageName or buildInfo must be provided",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "imageName and buildInfo cannot be used together",
            ));
        }
        (Some(image), None) if image.contains(char::is_whitespace) => {
            return Err(ApiError::bad_request(format!(
                "Invalid image name {image:?}"
            )));
        }
        (None, Some(build)) if build.dockerfile_content.trim().is_empty() => {
            return Err(ApiError::bad_request(
                "buildInfo.dockerfileContent should not be empty",
            ));
        }
        _ => {}
    }
    check_resources(req.cpu, req.gpu, req.memory, req.disk)
}

impl AppState {
    /// `POST /snapshots`: answers `pending`; the pull or build follows on its own task.
    pub fn create_snapshot(&self, req: CreateSnapshot) -> Result<SnapshotDto, ApiError> {
        check_create(&req)?;
        let name = req.name.trim().to_string();
        let id = uuid::Uuid::new_v4().to_string();
        let now = rfc3339(Utc::now());
        let pick = |v: Option<i64>, d: i64| v.filter(|v| *v > 0).unwrap_or(d) as f64;
        let build_info = req.build_info.as_ref().map(|b| BuildInfo {
            dockerfile_content: Some(b.dockerfile_content.clone()),
            context_hashes: Some(b.context_hashes.clone().unwrap_or_default()),
            created_at: now.clone(),
            updated_at: now.clone(),
            snapshot_ref: build_ref(
                &b.dockerfile_content,
                b.context_hashes.as_deref().unwrap_or_default(),
            ),
        });
        let image_name = req
            .image_name
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_string);
        let image_ref = build_info
            .as_ref()
            .map(|b| b.snapshot_ref.clone())
            .or_else(|| image_name.clone());
        let dto = SnapshotDto {
            id: id.clone(),
            organization_id: Some(self.config().organization_id.clone()),
            general: false,
            name: name.clone(),
            image_name,
            state: SnapshotState::Pending,
            size: None,
            entrypoint: req.entrypoint.clone(),
            cpu: pick(req.cpu, DEFAULT_CPU),
            gpu: req.gpu.filter(|g| *g > 0).unwrap_or(0) as f64,
            gpu_type: req.gpu_type.as_ref().and_then(|t| t.first().cloned()),
            mem: pick(req.memory, DEFAULT_MEMORY),
            disk: pick(req.disk, DEFAULT_DISK),
            error_reason: None,
            created_at: now.clone(),
            updated_at: now,
            last_used_at: None,
            build_info,
            region_ids: Some(vec![
                req.region_id
                    .clone()
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| DEFAULT_TARGET.to_string()),
            ]),
            initial_runner_id: Some(RUNNER_ID.to_string()),
            r#ref: image_ref.clone(),
            source_sandbox_id: None,
            sandbox_class: Some(req.sandbox_class.clone().unwrap_or(SandboxClass::Container)),
        };
        let log = Arc::new(BuildLog::default());
        {
            let mut snapshots = self.snapshots();
            if snapshots.entries.values().any(|e| e.dto.name == name) {
                return Err(ApiError::conflict(format!(
                    "Snapshot with name {name} already exists"
                )));
            }
            snapshots.next_seq += 1;
            let seq = snapshots.next_seq;
            snapshots.entries.insert(
                id.clone(),
                SnapshotEntry {
                    dto: dto.clone(),
                    seq,
                    log: log.clone(),
                    env: BTreeMap::new(),
                },
            );
        }
        self.emit(
            "snapshot.created",
            serde_json::to_value(&dto).unwrap_or_default(),
        );
        let this = self.clone();
        let dockerfile = req.build_info.map(|b| b.dockerfile_content);
        let image_ref = image_ref.unwrap_or_default();
        self.tasks().spawn(async move {
            this.process_snapshot(&id, dockerfile, &image_ref, &log)
                .await;
            log.finish();
        });
        Ok(dto)
    }

    /// Pulls (emulated) or builds a snapshot, moving it through its states.
    async fn process_snapshot(
        &self,
        id: &str,
        dockerfile: Option<String>,
        image_ref: &str,
        log: &BuildLog,
    ) {
        let step = self.config().build_step;
        let cancel = self.shutdown_token();
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = cancel.cancelled() => return,
        }
        let Some(dockerfile) = dockerfile else {
            self.set_snapshot_state(id, SnapshotState::Pulling, None);
            log.push(format!("Pulling image {image_ref}"));
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = cancel.cancelled() => return,
            }
            log.push(format!(
                " ---> {image_ref}: not pulled (emulated: sandboxes run on this machine's own system)"
            ));
            self.set_snapshot_state(id, SnapshotState::Active, None);
            return;
        };
        let steps = match parse_dockerfile(&dockerfile) {
            Ok(steps) => steps,
            Err(reason) => {
                log.push(reason.clone());
                self.set_snapshot_state(id, SnapshotState::BuildFailed, Some(reason));
                return;
            }
        };
        self.set_snapshot_state(id, SnapshotState::Building, None);
        match run_build(log, &steps, image_ref, step, &cancel).await {
            Ok(()) => {
                if let Some(e) = self.snapshots().entries.get_mut(id) {
                    e.env = dockerfile_env(&steps);
                }
                self.set_snapshot_state(id, SnapshotState::Active, None);
            }
            Err(reason) => self.set_snapshot_state(id, SnapshotState::BuildFailed, Some(reason)),
        }
    }

    fn set_snapshot_state(&self, id: &str, state: SnapshotState, reason: Option<String>) {
        let dto = {
            let mut snapshots = self.snapshots();
            let Some(e) = snapshots.entries.get_mut(id) else {
                return;
            };
            e.dto.state = state;
            if reason.is_some() {
                e.dto.error_reason = reason;
            }
            if e.dto.state == SnapshotState::Active {
                e.dto.size = Some(0.0);
            }
            e.dto.updated_at = rfc3339(Utc::now());
            e.dto.clone()
        };
        self.emit(
            "snapshot.state.updated",
            serde_json::json!({"snapshot": dto, "newState": dto.state}),
        );
    }

    /// `GET /snapshots?page&limit&name&sourceSandboxId&sort&order`.
    pub fn list_snapshots(&self, q: &SnapshotQuery) -> PaginatedSnapshots {
        let snapshots = self.snapshots();
        let needle = q.name.as_deref().map(str::to_lowercase);
        let mut items: Vec<&SnapshotEntry> = snapshots
            .entries
            .values()
            .filter(|e| {
                needle
                    .as_deref()
                    .is_none_or(|n| e.dto.name.to_lowercase().contains(n))
            })
            .filter(|e| {
                q.source_sandbox_id
                    .as_deref()
                    .is_none_or(|s| e.dto.source_sandbox_id.as_deref() == Some(s))
            })
            .collect();
        items.sort_by(|a, b| {
            let ord = match q.sort.as_str() {
                "name" => a.dto.name.cmp(&b.dto.name),
                "state" => a.dto.state.as_str().cmp(b.dto.state.as_str()),
                "createdAt" => a.seq.cmp(&b.seq),
                // Never-used snapshots sort as oldest, newest creation first among them.
                _ => (&a.dto.last_used_at, a.seq).cmp(&(&b.dto.last_used_at, b.seq)),
            };
            if q.descending { ord.reverse() } else { ord }
        });
        let total = items.len();
        let start = q.page.saturating_sub(1).saturating_mul(q.limit).min(total);
        let end = start.saturating_add(q.limit).min(total);
        PaginatedSnapshots {
            items: items[start..end].iter().map(|e| e.dto.clone()).collect(),
            total: total as u64,
            page: q.page as u64,
            total_pages: total.div_ceil(q.limit) as u64,
        }
    }

    /// `GET /snapshots/{idOrName}`.
    pub fn get_snapshot(&self, id_or_name: &str) -> Result<SnapshotDto, ApiError> {
        self.snapshots()
            .resolve(id_or_name)
            .map(|e| e.dto.clone())
            .ok_or_else(|| not_found(id_or_name))
    }

    /// `DELETE /snapshots/{idOrName}`: gone at once (`removing` is announced first).
    pub fn delete_snapshot(&self, id_or_name: &str) -> Result<(), ApiError> {
        let entry = {
            let mut snapshots = self.snapshots();
            let id = snapshots
                .resolve(id_or_name)
                .map(|e| e.dto.id.clone())
                .ok_or_else(|| not_found(id_or_name))?;
            snapshots.entries.remove(&id)
        };
        if let Some(mut entry) = entry {
            entry.log.finish();
            entry.dto.state = SnapshotState::Removing;
            self.emit(
                "snapshot.state.updated",
                serde_json::json!({"snapshot": entry.dto, "newState": "removing"}),
            );
        }
        Ok(())
    }

    /// `POST /snapshots/{idOrName}/activate`: `inactive` → `active`.
    pub fn activate_snapshot(&self, id_or_name: &str) -> Result<SnapshotDto, ApiError> {
        let id = {
            let snapshots = self.snapshots();
            let e = snapshots
                .resolve(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            match e.dto.state {
                SnapshotState::Inactive => e.dto.id.clone(),
                SnapshotState::Active => {
                    return Err(ApiError::bad_request(format!(
                        "Snapshot {} is already active",
                        e.dto.name
                    )));
                }
                ref other => {
                    return Err(ApiError::bad_request(format!(
                        "Snapshot {} cannot be activated in state {other}",
                        e.dto.name
                    )));
                }
            }
        };
        self.set_snapshot_state(&id, SnapshotState::Active, None);
        self.get_snapshot(&id)
    }

    /// `POST /snapshots/{idOrName}/deactivate`: `active` → `inactive`.
    pub fn deactivate_snapshot(&self, id_or_name: &str) -> Result<(), ApiError> {
        let id = {
            let snapshots = self.snapshots();
            let e = snapshots
                .resolve(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            if e.dto.state != SnapshotState::Active {
                return Err(ApiError::bad_request(format!(
                    "Snapshot {} is not active (state: {})",
                    e.dto.name, e.dto.state
                )));
            }
            e.dto.id.clone()
        };
        self.set_snapshot_state(&id, SnapshotState::Inactive, None);
        Ok(())
    }

    /// The build log of a snapshot.
    pub(crate) fn snapshot_log(
        &self,
        id_or_name: &str,
    ) -> Result<(String, Arc<BuildLog>), ApiError> {
        self.snapshots()
            .resolve(id_or_name)
            .map(|e| (e.dto.id.clone(), e.log.clone()))
            .ok_or_else(|| not_found(id_or_name))
    }

    /// For a sandbox create naming `snapshot`: what it takes from that snapshot when the
    /// emulator knows it (400 unless `active`); `None` for names it does not know.
    pub(crate) fn use_snapshot(&self, snapshot: &str) -> Result<Option<SnapshotUse>, ApiError> {
        let mut snapshots = self.snapshots();
        let Some(entry) = snapshots.resolve_mut(snapshot) else {
            return Ok(None);
        };
        if entry.dto.state != SnapshotState::Active {
            return Err(ApiError::bad_request(format!(
                "Snapshot {} is not active (state: {})",
                entry.dto.name, entry.dto.state
            )));
        }
        entry.dto.last_used_at = Some(rfc3339(Utc::now()));
        Ok(Some(SnapshotUse {
            name: entry.dto.name.clone(),
            cpu: entry.dto.cpu,
            gpu: entry.dto.gpu,
            memory: entry.dto.mem,
            disk: entry.dto.disk,
            env: entry.env.clone(),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_checked() {
        let q = SnapshotQuery::parse(Some("page=2&limit=5&name=py&sort=name&order=asc")).unwrap();
        assert_eq!((q.page, q.limit, q.descending), (2, 5, false));
        assert_eq!(q.name.as_deref(), Some("py"));
        assert!(SnapshotQuery::parse(Some("limit=0")).is_err());
        assert!(SnapshotQuery::parse(Some("sort=size")).is_err());
        assert!(SnapshotQuery::parse(Some("order=up")).is_err());
    }

    #[test]
    fn creates_need_exactly_one_source() {
        let mut req = CreateSnapshot {
            name: "s".into(),
            ..Default::default()
        };
        assert!(check_create(&req).is_err());
        req.image_name = Some("python:3.12".into());
        assert!(check_create(&req).is_ok());
        req.build_info = Some(daytona_api::sandbox::CreateBuildInfo {
            dockerfile_content: "FROM x".into(),
            context_hashes: None,
        });
        assert!(check_create(&req).is_err());
    }
}
