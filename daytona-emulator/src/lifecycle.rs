//! Sandbox lifecycle as the API drives it: create, start, stop, archive, recover, delete, the
//! per-sandbox settings routes, and the background ticker for auto-stop, auto-archive,
//! auto-delete and TTL.
//!
//! Rules follow the upstream API (v0.190 source, v0.205 spec): a transition is refused with
//! 400 `State change in progress` while another runs or while state and desired state differ;
//! stop needs `started` (`Sandbox is not started`), archive needs `stopped`, start needs
//! `stopped` or `archived` and is a no-op on a started sandbox, recover needs `error`.
//!
//! Timing: with a zero transition delay (the default) every transition is complete when the
//! response is sent, and the response shows the final state (`started`, `stopped`,
//! `archived`, `destroyed`). With a delay, the response shows the transitional state
//! (`creating`, `starting`, `stopping`, `archiving`, `destroying`) and the final state follows
//! after the delay, announced on socket.io; polling clients see one consistent sequence.
//! Either way the work runs on a task of its own, so a client that disconnects mid-request
//! cannot leave a sandbox half-transitioned.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use daytona_api::sandbox::{
    BackupState, BuildInfo, CreateSandbox, ResizeSandbox, Sandbox, SandboxClass,
    SandboxDesiredState, SandboxState, SandboxVolume, UpdateSandboxNetworkSettings,
};
use rand::Rng;

use crate::build::{BuildLog, build_ref, dockerfile_env, parse_dockerfile, run_build};
use crate::defaults::check_resources;
pub use crate::defaults::{
    DAEMON_VERSION, DEFAULT_AUTO_ARCHIVE, DEFAULT_AUTO_STOP, DEFAULT_SNAPSHOT, DEFAULT_TARGET,
    DEFAULT_USER, GPU_TYPES, MAX_AUTO_ARCHIVE, RUNNER_ID,
};
use crate::error::ApiError;
use crate::layout::SandboxLayout;
use crate::provision;
use crate::state::{AppState, SandboxEntry};
use crate::timestamp::rfc3339;

const DEFAULT_CPU: i64 = 1;
const DEFAULT_MEMORY: i64 = 1;
const DEFAULT_DISK: i64 = 3;

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("Sandbox with ID or name {key} not found"))
}

fn in_progress() -> ApiError {
    ApiError::bad_request("State change in progress")
}

/// Whether state and desired state agree (no transition under way).
fn settled(entry: &SandboxEntry) -> bool {
    entry.state().as_str() == entry.desired().as_str()
}

/// `minutes` emulated minutes in real time.
fn minutes(minute: Duration, n: i64) -> Duration {
    let n = u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    minute.checked_mul(n).unwrap_or(Duration::MAX)
}

fn random_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Checks the rules the API applies to a create beyond JSON types.
fn check_create_rules(req: &CreateSandbox) -> Result<(), ApiError> {
    check_resources(req.cpu, req.gpu, req.memory, req.disk)?;
    if let Some(build) = &req.build_info {
        if req
            .snapshot
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
        {
            return Err(ApiError::bad_request(
                "Cannot specify a snapshot when using a build info entry",
            ));
        }
        if build.dockerfile_content.trim().is_empty() {
            return Err(ApiError::bad_request(
                "buildInfo.dockerfileContent should not be empty",
            ));
        }
    } else if [req.cpu, req.gpu, req.memory, req.disk]
        .iter()
        .any(|v| v.is_some_and(|v| v != 0))
    {
        return Err(ApiError::bad_request(
            "Cannot specify Sandbox resources when using a snapshot",
        ));
    }
    check_non_negative("Auto-stop interval", req.auto_stop_interval)?;
    check_non_negative("Auto-pause interval", req.auto_pause_interval)?;
    check_non_negative("Auto-archive interval", req.auto_archive_interval)?;
    check_non_negative("TTL", req.ttl_minutes)?;
    if req.auto_stop_interval.is_some_and(|v| v > 0)
        && req.auto_pause_interval.is_some_and(|v| v > 0)
    {
        return Err(ApiError::bad_request(
            "At most one of autoStopInterval and autoPauseInterval may be non-zero",
        ));
    }
    if let Some(types) = &req.gpu_type
        && let Some(bad) = types.iter().find(|t| !GPU_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "gpuType must be one of the following values: {} (got {bad})",
            GPU_TYPES.join(", ")
        )));
    }
    if let Some(volumes) = &req.volumes {
        let mut seen = Vec::new();
        for v in volumes {
            let path = v.mount_path.trim_end_matches('/');
            if !v.mount_path.starts_with('/') || path.is_empty() || v.mount_path.contains("..") {
                return Err(ApiError::bad_request(format!(
                    "Invalid mount path {:?}: must be an absolute path other than /",
                    v.mount_path
                )));
            }
            if v.volume_id.trim().is_empty() {
                return Err(ApiError::bad_request("volumeId should not be empty"));
            }
            if seen.contains(&path) {
                return Err(ApiError::bad_request(format!(
                    "Duplicate mount path {:?}",
                    v.mount_path
                )));
            }
            seen.push(path);
        }
    }
    if let Some(list) = &req.network_allow_list {
        check_allow_list(list)?;
    }
    if let Some(user) = &req.user {
        check_user(user.trim())?;
    }
    Ok(())
}

fn check_non_negative(what: &str, value: Option<i64>) -> Result<(), ApiError> {
    if value.is_some_and(|v| v < 0) {
        return Err(ApiError::bad_request(format!(
            "{what} must be non-negative"
        )));
    }
    Ok(())
}

/// An OS user name that can become a home directory.
fn check_user(user: &str) -> Result<(), ApiError> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !user.starts_with(['-', '.']);
    if user.is_empty() || ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid user {user:?}: use letters, digits, '_', '-' or '.'"
        )))
    }
}

/// Comma-separated IPv4 CIDRs.
fn check_allow_list(list: &str) -> Result<(), ApiError> {
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let valid = item.split_once('/').is_some_and(|(addr, bits)| {
            addr.parse::<Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
        });
        if !valid {
            return Err(ApiError::bad_request(format!(
                "Invalid network allow list: {item:?} is not an IPv4 CIDR (a.b.c.d/n)"
            )));
        }
    }
    Ok(())
}

fn non_empty(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl AppState {
    /// `POST /sandbox`.
    pub async fn create_sandbox(&self, req: CreateSandbox) -> Result<Sandbox, ApiError> {
        check_create_rules(&req)?;
        let id = uuid::Uuid::new_v4().to_string();
        let name = non_empty(req.name.as_ref()).unwrap_or_else(|| id.clone());
        let user = non_empty(req.user.as_ref()).unwrap_or_else(|| DEFAULT_USER.to_string());
        let linked_sandbox_id = match non_empty(req.linked_sandbox.as_ref()) {
            None => None,
            Some(linked) => {
                if req.auto_delete_interval != Some(0) {
                    return Err(ApiError::bad_request(
                        "Linked sandboxes must be ephemeral (autoDeleteInterval=0)",
                    ));
                }
                let registry = self.registry();
                let target = registry.get(&linked).ok_or_else(|| {
                    ApiError::bad_request(format!("Linked sandbox {linked} not found"))
                })?;
                Some(target.dto.id.clone())
            }
        };
        if self.registry().name_taken(&name) {
            return Err(ApiError::conflict(format!(
                "Sandbox with name {name} already exists"
            )));
        }

        let from_snapshot = match (&req.build_info, non_empty(req.snapshot.as_ref())) {
            (None, Some(snapshot)) => self.use_snapshot(&snapshot)?,
            _ => None,
        };
        let mounts = self.volumes_for_mount(req.volumes.as_deref().unwrap_or_default())?;

        let dir = self.config().data_dir.join("sandboxes").join(&id);
        let layout =
            provision::create_layout(&dir, &user, &mounts, self.config().isolation).await?;
        let runtime = provision::new_runtime(&layout);

        let now = Utc::now();
        let created = rfc3339(now);
        let delayed = !self.config().transition_delay.is_zero();
        let (cpu, gpu, memory, disk) = if req.build_info.is_some() {
            let pick = |v: Option<i64>, d: i64| v.filter(|v| *v != 0).unwrap_or(d);
            (
                pick(req.cpu, DEFAULT_CPU),
                pick(req.gpu, 0),
                pick(req.memory, DEFAULT_MEMORY),
                pick(req.disk, DEFAULT_DISK),
            )
        } else {
            (DEFAULT_CPU, 0, DEFAULT_MEMORY, DEFAULT_DISK)
        };
        let (cpu, gpu, memory, disk) = match &from_snapshot {
            Some(s) => (s.cpu, s.gpu, s.memory, s.disk),
            None => (cpu as f64, gpu as f64, memory as f64, disk as f64),
        };
        let auto_archive = match req.auto_archive_interval {
            None => DEFAULT_AUTO_ARCHIVE,
            Some(0) => MAX_AUTO_ARCHIVE,
            Some(v) => v.min(MAX_AUTO_ARCHIVE),
        };
        let ttl = req.ttl_minutes.filter(|t| *t > 0);
        let minute = self.config().minute;

        let mut dto = Sandbox::new(id.clone(), self.toolbox_proxy_url());
        dto.organization_id = self.config().organization_id.clone();
        dto.name = name.clone();
        dto.snapshot = if req.build_info.is_some() {
            None
        } else if let Some(s) = &from_snapshot {
            Some(s.name.clone())
        } else {
            Some(non_empty(req.snapshot.as_ref()).unwrap_or_else(|| DEFAULT_SNAPSHOT.to_string()))
        };
        dto.user = user.clone();
        // The snapshot's Dockerfile `ENV` first; the request's own `env` wins.
        let mut env = from_snapshot.map(|s| s.env).unwrap_or_default();
        env.extend(req.env.clone().unwrap_or_default());
        dto.env = env;
        dto.labels = req.labels.clone().unwrap_or_default();
        dto.public = req.public.unwrap_or(false);
        dto.network_block_all = req.network_block_all.unwrap_or(false);
        dto.network_allow_list = req.network_allow_list.clone();
        dto.domain_allow_list = req.domain_allow_list.clone();
        dto.outbound_proxy_url = req.outbound_proxy_url.clone();
        dto.otel_endpoint_override = req.otel_endpoint_override.clone();
        dto.target = non_empty(req.target.as_ref()).unwrap_or_else(|| DEFAULT_TARGET.to_string());
        dto.cpu = cpu;
        dto.gpu = gpu;
        dto.memory = memory;
        dto.disk = disk;
        dto.spot = Some(req.spot.unwrap_or(false));
        dto.gpu_type = req
            .gpu_type
            .as_ref()
            .and_then(|t| t.first().cloned())
            .filter(|_| gpu > 0.0);
        let building = req.build_info.is_some();
        dto.state = Some(if building {
            // A build always takes time, so clients see (and can follow) it.
            SandboxState::PendingBuild
        } else if delayed {
            SandboxState::Creating
        } else {
            SandboxState::Started
        });
        dto.desired_state = Some(SandboxDesiredState::Started);
        dto.backup_state = Some(BackupState::None);
        dto.auto_stop_interval = Some(req.auto_stop_interval.unwrap_or(DEFAULT_AUTO_STOP));
        dto.auto_pause_interval = Some(req.auto_pause_interval.unwrap_or(0));
        dto.auto_archive_interval = Some(auto_archive);
        dto.auto_delete_interval = Some(req.auto_delete_interval.unwrap_or(-1));
        dto.auto_destroy_at = ttl.map(|t| rfc3339(now + chrono_minutes(minute, t)));
        dto.volumes = Some(
            mounts
                .iter()
                .map(|m| SandboxVolume {
                    volume_id: m.volume_id.clone(),
                    mount_path: m.mount_path.clone(),
                    subpath: m.subpath.clone(),
                })
                .collect(),
        );
        dto.build_info = req.build_info.as_ref().map(|b| BuildInfo {
            dockerfile_content: Some(b.dockerfile_content.clone()),
            context_hashes: Some(b.context_hashes.clone().unwrap_or_default()),
            created_at: created.clone(),
            updated_at: created.clone(),
            snapshot_ref: build_ref(
                &b.dockerfile_content,
                b.context_hashes.as_deref().unwrap_or_default(),
            ),
        });
        dto.created_at = Some(created.clone());
        dto.updated_at = Some(created);
        dto.sandbox_class = Some(SandboxClass::Container);
        dto.daemon_version = Some(DAEMON_VERSION.to_string());
        dto.runner_id = Some(RUNNER_ID.to_string());
        dto.linked_sandbox_id = linked_sandbox_id;
        dto.kvm = Some(req.kvm.unwrap_or(false));

        let build_log = building.then(|| Arc::new(BuildLog::default()));
        let inserted = {
            let mut registry = self.registry();
            // Checked again: another create may have taken the name while the directory was made.
            if registry.name_taken(&name) {
                Err(layout)
            } else {
                registry.next_seq += 1;
                let instant = Instant::now();
                let entry = SandboxEntry {
                    dto,
                    seq: registry.next_seq,
                    created_at: now,
                    last_activity_at: now,
                    last_activity: instant,
                    state_since: instant,
                    destroy_at: ttl.map(|t| instant + minutes(minute, t)),
                    busy: delayed && !building,
                    in_flight: 0,
                    auth_token: random_token(),
                    layout,
                    runtime,
                    build: build_log.clone(),
                    stopped_since: None,
                };
                let rendered = entry.render();
                registry.entries.insert(id.clone(), entry);
                Ok(rendered)
            }
        };
        let rendered = match inserted {
            Ok(rendered) => rendered,
            Err(layout) => {
                provision::remove_layout(layout).await;
                return Err(ApiError::conflict(format!(
                    "Sandbox with name {name} already exists"
                )));
            }
        };
        tracing::info!(sandbox = %id, name = %rendered.name, "sandbox created");
        self.emit(
            "sandbox.created",
            serde_json::to_value(&rendered).unwrap_or_default(),
        );
        if let (Some(log), Some(build)) = (build_log, req.build_info.clone()) {
            let this = self.clone();
            let snapshot_ref = rendered
                .build_info
                .as_ref()
                .map(|b| b.snapshot_ref.clone())
                .unwrap_or_default();
            self.tasks().spawn(async move {
                this.build_sandbox(&id, &build.dockerfile_content, &snapshot_ref, &log)
                    .await;
                log.finish();
            });
        } else if delayed {
            let this = self.clone();
            self.tasks().spawn(async move {
                if this.transition_pause().await {
                    this.finish(&id, SandboxState::Started, |e| e.touch());
                }
            });
        } else {
            self.emit_state(&rendered, &SandboxState::Creating);
        }
        Ok(rendered)
    }

    /// The image build of a new sandbox: `pending_build` for one step, `building_snapshot`
    /// while [`run_build`] walks the Dockerfile, then `started` (through `starting` with a
    /// transition delay) with the Dockerfile's `ENV` added under the request's env; or
    /// `build_failed` with `errorReason`. Stops quietly if the sandbox is deleted meanwhile.
    async fn build_sandbox(&self, id: &str, dockerfile: &str, snapshot_ref: &str, log: &BuildLog) {
        let step = self.config().build_step;
        let cancel = self.shutdown_token();
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = cancel.cancelled() => return,
        }
        let steps = match parse_dockerfile(dockerfile) {
            Ok(steps) => steps,
            Err(reason) => {
                log.push(reason.clone());
                self.finish(id, SandboxState::BuildFailed, |e| {
                    e.dto.error_reason = Some(reason);
                    e.dto.recoverable = Some(false);
                });
                return;
            }
        };
        if self
            .finish(id, SandboxState::BuildingSnapshot, |_| {})
            .is_none()
        {
            return;
        }
        if let Err(reason) = run_build(log, &steps, snapshot_ref, step, &cancel).await {
            self.finish(id, SandboxState::BuildFailed, |e| {
                e.dto.error_reason = Some(reason);
                e.dto.recoverable = Some(false);
            });
            return;
        }
        let image_env = dockerfile_env(&steps);
        let apply_env = |e: &mut SandboxEntry| {
            for (k, v) in &image_env {
                e.dto.env.entry(k.clone()).or_insert_with(|| v.clone());
            }
        };
        if !self.config().transition_delay.is_zero()
            && (self.finish(id, SandboxState::Starting, |_| {}).is_none()
                || !self.transition_pause().await)
        {
            return;
        }
        self.finish(id, SandboxState::Started, |e| {
            apply_env(e);
            e.touch();
        });
    }

    /// `GET /sandbox/{idOrName}`.
    pub fn get_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ApiError> {
        self.sandbox(id_or_name)
            .ok_or_else(|| not_found(id_or_name))
    }

    /// `POST /sandbox/{idOrName}/start`.
    pub async fn start_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ApiError> {
        let (id, provisional, layout) = {
            let mut registry = self.registry();
            let entry = registry
                .get_mut(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            let state = entry.state();
            if state == SandboxState::Started && entry.desired() == SandboxDesiredState::Started {
                return Ok(entry.render());
            }
            if entry.busy || !settled(entry) {
                return Err(in_progress());
            }
            if !matches!(state, SandboxState::Stopped | SandboxState::Archived) {
                return Err(ApiError::bad_request("Sandbox is not in valid state"));
            }
            let next = if state == SandboxState::Archived {
                SandboxState::Restoring
            } else {
                SandboxState::Starting
            };
            let provisional = self.begin(entry, next, SandboxDesiredState::Started);
            (entry.dto.id.clone(), provisional, entry.layout.clone())
        };
        let this = self.clone();
        Ok(self
            .drive(provisional, async move {
                if !this.transition_pause().await {
                    return None;
                }
                let runtime = provision::new_runtime(&layout);
                this.finish(&id, SandboxState::Started, |e| {
                    e.runtime = runtime;
                    e.stopped_since = None;
                    e.touch();
                })
            })
            .await)
    }

    /// `POST /sandbox/{idOrName}/stop`. Kills every process of the sandbox; an ephemeral
    /// sandbox (`autoDeleteInterval` 0) is deleted instead of stopped.
    pub async fn stop_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ApiError> {
        let (id, provisional, runtime, ephemeral) = {
            let mut registry = self.registry();
            let entry = registry
                .get_mut(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            if entry.busy || !settled(entry) {
                return Err(in_progress());
            }
            if entry.state() != SandboxState::Started {
                return Err(ApiError::bad_request("Sandbox is not started"));
            }
            let ephemeral = entry.dto.auto_delete_interval == Some(0);
            let provisional = if ephemeral {
                self.begin(
                    entry,
                    SandboxState::Destroying,
                    SandboxDesiredState::Destroyed,
                )
            } else {
                self.begin(entry, SandboxState::Stopping, SandboxDesiredState::Stopped)
            };
            (
                entry.dto.id.clone(),
                provisional,
                entry.runtime.clone(),
                ephemeral,
            )
        };
        tracing::info!(sandbox = %id, ephemeral, "stopping sandbox");
        let this = self.clone();
        Ok(self
            .drive(provisional, async move {
                provision::shutdown_runtime(&runtime).await;
                if !this.transition_pause().await {
                    return None;
                }
                if ephemeral {
                    this.finish_delete(&id).await
                } else {
                    this.finish(&id, SandboxState::Stopped, |e| {
                        e.stopped_since = Some(Instant::now());
                    })
                }
            })
            .await)
    }

    /// `POST /sandbox/{idOrName}/archive`.
    pub async fn archive_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ApiError> {
        let (id, provisional) = {
            let mut registry = self.registry();
            let entry = registry
                .get_mut(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            if entry.busy || !settled(entry) {
                return Err(in_progress());
            }
            if entry.state() != SandboxState::Stopped {
                return Err(ApiError::bad_request("Sandbox is not stopped"));
            }
            if entry.dto.auto_delete_interval == Some(0) {
                return Err(ApiError::bad_request(
                    "Ephemeral sandboxes cannot be archived",
                ));
            }
            let provisional = self.begin(
                entry,
                SandboxState::Archiving,
                SandboxDesiredState::Archived,
            );
            (entry.dto.id.clone(), provisional)
        };
        let this = self.clone();
        Ok(self
            .drive(provisional, async move {
                if !this.transition_pause().await {
                    return None;
                }
                this.finish(&id, SandboxState::Archived, |_| {})
            })
            .await)
    }

    /// `POST /sandbox/{idOrName}/recover`: out of `error`, to `started` (or `stopped` with
    /// `skip_start`).
    pub async fn recover_sandbox(
        &self,
        id_or_name: &str,
        skip_start: bool,
    ) -> Result<Sandbox, ApiError> {
        let (id, provisional, layout) = {
            let mut registry = self.registry();
            let entry = registry
                .get_mut(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            if entry.busy {
                return Err(in_progress());
            }
            if entry.state() != SandboxState::Error {
                return Err(ApiError::bad_request("Sandbox is not in an error state"));
            }
            if entry.dto.recoverable == Some(false) {
                return Err(ApiError::bad_request("Sandbox error is not recoverable"));
            }
            let provisional = if skip_start {
                self.begin(entry, SandboxState::Stopped, SandboxDesiredState::Stopped)
            } else {
                self.begin(entry, SandboxState::Starting, SandboxDesiredState::Started)
            };
            (entry.dto.id.clone(), provisional, entry.layout.clone())
        };
        let this = self.clone();
        Ok(self
            .drive(provisional, async move {
                if !this.transition_pause().await {
                    return None;
                }
                let next = if skip_start {
                    SandboxState::Stopped
                } else {
                    SandboxState::Started
                };
                let runtime = provision::new_runtime(&layout);
                this.finish(&id, next, |e| {
                    e.dto.error_reason = None;
                    e.dto.recoverable = None;
                    e.runtime = runtime;
                    e.stopped_since = skip_start.then(Instant::now);
                    e.touch();
                })
            })
            .await)
    }

    /// `DELETE /sandbox/{idOrName}`: kills every process, removes the directory; the sandbox
    /// is 404 from then on.
    pub async fn delete_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ApiError> {
        let entry = {
            let mut registry = self.registry();
            let id = registry
                .resolve(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            if registry.entries.get(&id).is_some_and(|e| e.busy) {
                return Err(ApiError::bad_request("Sandbox state change in progress"));
            }
            registry
                .entries
                .remove(&id)
                .ok_or_else(|| not_found(id_or_name))?
        };
        tracing::info!(sandbox = %entry.dto.id, "deleting sandbox");
        let old_state = entry.state();
        let old_desired = entry.desired();
        let mut provisional = entry.render();
        provisional.state = Some(SandboxState::Destroying);
        provisional.desired_state = Some(SandboxDesiredState::Destroyed);
        self.emit_desired(&provisional, &old_desired);
        self.emit_state(&provisional, &old_state);
        let this = self.clone();
        let gone = provisional.clone();
        Ok(self
            .drive(provisional, async move {
                this.teardown(entry.runtime, entry.layout).await;
                // Cancellation only shortens the pause; the sandbox is already gone.
                this.transition_pause().await;
                let mut done = gone;
                done.state = Some(SandboxState::Destroyed);
                this.emit_state(&done, &SandboxState::Destroying);
                Some(done)
            })
            .await)
    }

    /// Puts a sandbox in `error` (kills its processes), as a runner failure would.
    pub async fn fail_sandbox(
        &self,
        id_or_name: &str,
        reason: &str,
        recoverable: bool,
    ) -> Result<Sandbox, ApiError> {
        let (dto, old, runtime) = {
            let mut registry = self.registry();
            let entry = registry
                .get_mut(id_or_name)
                .ok_or_else(|| not_found(id_or_name))?;
            let old = entry.state();
            entry.dto.state = Some(SandboxState::Error);
            entry.dto.error_reason = Some(reason.to_string());
            entry.dto.recoverable = Some(recoverable);
            entry.busy = false;
            entry.state_since = Instant::now();
            entry.mark_updated();
            (entry.render(), old, entry.runtime.clone())
        };
        self.emit_state(&dto, &old);
        provision::shutdown_runtime(&runtime).await;
        Ok(dto)
    }

    /// `PUT /sandbox/{idOrName}/labels`: replaces every label; returns the new labels.
    pub fn replace_labels(
        &self,
        id_or_name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let dto = self.update(id_or_name, |e| {
            e.dto.labels = labels;
            Ok(())
        })?;
        Ok(dto.labels)
    }

    /// `POST /sandbox/{idOrName}/autostop/{interval}`.
    pub fn set_auto_stop(&self, id_or_name: &str, interval: i64) -> Result<Sandbox, ApiError> {
        check_non_negative("Auto-stop interval", Some(interval))?;
        self.update(id_or_name, |e| {
            e.dto.auto_stop_interval = Some(interval);
            Ok(())
        })
    }

    /// `POST /sandbox/{idOrName}/autopause/{interval}` (stored; pausing is not emulated).
    pub fn set_auto_pause(&self, id_or_name: &str, interval: i64) -> Result<Sandbox, ApiError> {
        check_non_negative("Auto-pause interval", Some(interval))?;
        self.update(id_or_name, |e| {
            e.dto.auto_pause_interval = Some(interval);
            Ok(())
        })
    }

    /// `POST /sandbox/{idOrName}/autoarchive/{interval}` (0 = the maximum).
    pub fn set_auto_archive(&self, id_or_name: &str, interval: i64) -> Result<Sandbox, ApiError> {
        check_non_negative("Auto-archive interval", Some(interval))?;
        let interval = if interval == 0 {
            MAX_AUTO_ARCHIVE
        } else {
            interval.min(MAX_AUTO_ARCHIVE)
        };
        self.update(id_or_name, |e| {
            e.dto.auto_archive_interval = Some(interval);
            Ok(())
        })
    }

    /// `POST /sandbox/{idOrName}/autodelete/{interval}` (negative = off, 0 = delete on stop).
    pub fn set_auto_delete(&self, id_or_name: &str, interval: i64) -> Result<Sandbox, ApiError> {
        self.update(id_or_name, |e| {
            e.dto.auto_delete_interval = Some(interval);
            Ok(())
        })
    }

    /// `POST /sandbox/{idOrName}/ttl/{ttlMinutes}` (0 = none), counted from now.
    pub fn set_ttl(&self, id_or_name: &str, ttl: i64) -> Result<Sandbox, ApiError> {
        check_non_negative("TTL", Some(ttl))?;
        let minute = self.config().minute;
        self.update(id_or_name, |e| {
            if ttl == 0 {
                e.destroy_at = None;
                e.dto.auto_destroy_at = None;
            } else {
                e.destroy_at = Some(Instant::now() + minutes(minute, ttl));
                e.dto.auto_destroy_at = Some(rfc3339(Utc::now() + chrono_minutes(minute, ttl)));
            }
            Ok(())
        })
    }

    /// `POST /sandbox/{idOrName}/public/{isPublic}`.
    pub fn set_public(&self, id_or_name: &str, public: bool) -> Result<Sandbox, ApiError> {
        self.update(id_or_name, |e| {
            e.dto.public = public;
            Ok(())
        })
    }

    /// `POST /sandbox/{idOrName}/network-settings`.
    pub fn update_network_settings(
        &self,
        id_or_name: &str,
        settings: UpdateSandboxNetworkSettings,
    ) -> Result<Sandbox, ApiError> {
        if let Some(list) = &settings.network_allow_list {
            check_allow_list(list)?;
        }
        self.update(id_or_name, |e| {
            if let Some(block) = settings.network_block_all {
                e.dto.network_block_all = block;
            }
            if let Some(list) = settings.network_allow_list {
                e.dto.network_allow_list = Some(list);
            }
            if let Some(list) = settings.domain_allow_list {
                e.dto.domain_allow_list = Some(list);
            }
            Ok(())
        })
    }

    /// `POST /sandbox/{idOrName}/resize`: cpu/memory ≥ 1, disk ≥ 1 and never smaller.
    pub fn resize_sandbox(
        &self,
        id_or_name: &str,
        resize: ResizeSandbox,
    ) -> Result<Sandbox, ApiError> {
        for (field, value) in [
            ("cpu", resize.cpu),
            ("memory", resize.memory),
            ("disk", resize.disk),
        ] {
            if value.is_some_and(|v| v < 1) {
                return Err(ApiError::bad_request(format!(
                    "{field} must not be less than 1"
                )));
            }
        }
        self.update(id_or_name, |e| {
            if e.busy || !settled(e) {
                return Err(in_progress());
            }
            if let Some(disk) = resize.disk
                && (disk as f64) < e.dto.disk
            {
                return Err(ApiError::bad_request("Disk size can only be increased"));
            }
            if let Some(cpu) = resize.cpu {
                e.dto.cpu = cpu as f64;
            }
            if let Some(memory) = resize.memory {
                e.dto.memory = memory as f64;
            }
            if let Some(disk) = resize.disk {
                e.dto.disk = disk as f64;
            }
            Ok(())
        })
    }

    /// `POST /sandbox/{sandboxId}/last-activity` (by id only, as upstream).
    pub fn update_last_activity(&self, sandbox_id: &str) -> Result<(), ApiError> {
        let mut registry = self.registry();
        let entry = registry.entries.get_mut(sandbox_id).ok_or_else(|| {
            ApiError::not_found(format!("Sandbox with ID {sandbox_id} not found"))
        })?;
        entry.touch();
        Ok(())
    }

    /// Applies a settings change to one sandbox and returns it.
    fn update(
        &self,
        id_or_name: &str,
        change: impl FnOnce(&mut SandboxEntry) -> Result<(), ApiError>,
    ) -> Result<Sandbox, ApiError> {
        let mut registry = self.registry();
        let entry = registry
            .get_mut(id_or_name)
            .ok_or_else(|| not_found(id_or_name))?;
        change(entry)?;
        entry.mark_updated();
        Ok(entry.render())
    }

    /// Enters a transitional state under the registry lock; emits the events; returns the DTO.
    fn begin(
        &self,
        entry: &mut SandboxEntry,
        state: SandboxState,
        desired: SandboxDesiredState,
    ) -> Sandbox {
        let old_state = entry.state();
        let old_desired = entry.desired();
        entry.busy = true;
        entry.dto.state = Some(state);
        entry.dto.desired_state = Some(desired);
        entry.state_since = Instant::now();
        entry.mark_updated();
        let dto = entry.render();
        self.emit_desired(&dto, &old_desired);
        self.emit_state(&dto, &old_state);
        dto
    }

    /// Ends a transition if the sandbox still exists: sets `state`, applies `extra`, emits.
    fn finish(
        &self,
        id: &str,
        state: SandboxState,
        extra: impl FnOnce(&mut SandboxEntry),
    ) -> Option<Sandbox> {
        let (dto, old) = {
            let mut registry = self.registry();
            let entry = registry.entries.get_mut(id)?;
            let old = entry.state();
            entry.dto.state = Some(state);
            entry.busy = false;
            entry.state_since = Instant::now();
            entry.mark_updated();
            extra(entry);
            (entry.render(), old)
        };
        self.emit_state(&dto, &old);
        Some(dto)
    }

    /// Removes a sandbox at the end of an ephemeral stop; returns its last DTO (`destroyed`).
    async fn finish_delete(&self, id: &str) -> Option<Sandbox> {
        let entry = self.registry().entries.remove(id)?;
        let old = entry.state();
        let mut dto = entry.render();
        dto.state = Some(SandboxState::Destroyed);
        dto.desired_state = Some(SandboxDesiredState::Destroyed);
        self.teardown(entry.runtime, entry.layout).await;
        self.emit_state(&dto, &old);
        Some(dto)
    }

    async fn teardown(
        &self,
        runtime: Arc<crate::runtime::SandboxRuntime>,
        layout: Arc<SandboxLayout>,
    ) {
        provision::shutdown_runtime(&runtime).await;
        drop(runtime);
        provision::remove_layout(layout).await;
    }

    /// Waits out the transition delay; false when the emulator shuts down meanwhile.
    pub(crate) async fn transition_pause(&self) -> bool {
        let delay = self.config().transition_delay;
        if delay.is_zero() {
            return true;
        }
        let shutdown = self.shutdown_token();
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = shutdown.cancelled() => false,
        }
    }

    /// Runs the rest of a transition on its own task; waits for it when there is no
    /// transition delay. Returns the DTO to answer with.
    async fn drive<F>(&self, provisional: Sandbox, work: F) -> Sandbox
    where
        F: Future<Output = Option<Sandbox>> + Send + 'static,
    {
        let task = self.tasks().spawn(work);
        if !self.config().transition_delay.is_zero() {
            return provisional;
        }
        match task.await {
            Ok(Some(done)) => done,
            _ => provisional,
        }
    }

    /// One pass of the background lifecycle: auto-stop idle started sandboxes, auto-delete and
    /// auto-archive long-stopped ones, destroy those past their TTL.
    pub(crate) async fn lifecycle_tick(&self) {
        let minute = self.config().minute;
        let now = Instant::now();
        let (mut stop, mut archive, mut delete) = (Vec::new(), Vec::new(), Vec::new());
        {
            let registry = self.registry();
            for (id, e) in &registry.entries {
                if e.busy {
                    continue;
                }
                if e.destroy_at.is_some_and(|at| now >= at) {
                    delete.push(id.clone());
                    continue;
                }
                if !settled(e) {
                    continue;
                }
                let idle = now.saturating_duration_since(e.last_activity);
                // Auto-archive and auto-delete count from the stop (archiving does not reset it).
                let stopped_for =
                    now.saturating_duration_since(e.stopped_since.unwrap_or(e.state_since));
                let del = e.dto.auto_delete_interval.unwrap_or(-1);
                match e.state() {
                    SandboxState::Started => {
                        let limit = e.dto.auto_stop_interval.unwrap_or(0);
                        if limit > 0 && e.in_flight == 0 && idle >= minutes(minute, limit) {
                            stop.push(id.clone());
                        }
                    }
                    SandboxState::Stopped => {
                        let arch = e.dto.auto_archive_interval.unwrap_or(0);
                        // 0 means "delete on stop": a sandbox set to it while already stopped
                        // goes at the next tick.
                        if del >= 0 && stopped_for >= minutes(minute, del) {
                            delete.push(id.clone());
                        } else if arch > 0 && stopped_for >= minutes(minute, arch) {
                            archive.push(id.clone());
                        }
                    }
                    SandboxState::Archived if del >= 0 && stopped_for >= minutes(minute, del) => {
                        delete.push(id.clone());
                    }
                    _ => {}
                }
            }
        }
        for id in stop {
            tracing::info!(sandbox = %id, "auto-stop: idle too long");
            if let Err(e) = self.stop_sandbox(&id).await {
                tracing::debug!(sandbox = %id, error = %e, "auto-stop skipped");
            }
        }
        for id in archive {
            tracing::info!(sandbox = %id, "auto-archive");
            if let Err(e) = self.archive_sandbox(&id).await {
                tracing::debug!(sandbox = %id, error = %e, "auto-archive skipped");
            }
        }
        for id in delete {
            tracing::info!(sandbox = %id, "auto-delete");
            if let Err(e) = self.delete_sandbox(&id).await {
                tracing::debug!(sandbox = %id, error = %e, "auto-delete skipped");
            }
        }
    }
}

fn chrono_minutes(minute: Duration, n: i64) -> chrono::Duration {
    chrono::Duration::from_std(minutes(minute, n)).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resources_need_build_info() {
        let req = CreateSandbox {
            cpu: Some(2),
            ..CreateSandbox::default()
        };
        let err = check_create_rules(&req).unwrap_err();
        assert_eq!(
            err.message,
            "Cannot specify Sandbox resources when using a snapshot"
        );
        let req = CreateSandbox {
            cpu: Some(0),
            ..CreateSandbox::default()
        };
        assert!(
            check_create_rules(&req).is_ok(),
            "zero counts as unset upstream"
        );
    }

    #[test]
    fn allow_list_must_be_cidrs() {
        assert!(check_allow_list("10.0.0.0/8, 192.168.1.0/24").is_ok());
        assert!(check_allow_list("10.0.0.0").is_err());
        assert!(check_allow_list("10.0.0.0/33").is_err());
    }

    #[test]
    fn users_must_be_path_safe() {
        assert!(check_user("daytona").is_ok());
        assert!(check_user("../etc").is_err());
        assert!(check_user("a/b").is_err());
    }

    #[test]
    fn emulated_minutes_scale() {
        assert_eq!(
            minutes(Duration::from_millis(10), 15),
            Duration::from_millis(150)
        );
        assert_eq!(minutes(Duration::from_millis(10), -1), Duration::ZERO);
    }
}
