//! Shared emulator state: the sandbox registry, settings, fault rules, request log and the
//! socket.io event bus. Handlers get it as axum state; tests reach it through
//! [`crate::EmulatorHandle::state`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use daytona_api::sandbox::{Sandbox, SandboxDesiredState, SandboxState};
use daytona_api::toolbox::codes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::build::BuildLog;
use crate::error::ApiError;
use crate::faults::{FaultAction, FaultRule, FaultSet, InstalledFault, WsDrop};
use crate::layout::{Isolation, SandboxLayout};
use crate::registries::{SignedPreviews, Snapshots, Volumes};
use crate::request_log::{RequestLog, RequestRecord};
use crate::runtime::SandboxRuntime;
use crate::sync::lock;
use crate::timestamp::rfc3339;

/// The label the SDKs use for the code-run language.
pub const LANGUAGE_LABEL: &str = "code-toolbox-language";

/// Buffered socket.io packets per subscriber before a slow one starts missing events.
const EVENT_BUFFER: usize = 1024;

/// Everything the toolbox needs to serve one request for one sandbox.
#[derive(Clone)]
pub struct ToolboxTarget {
    /// Sandbox id.
    pub sandbox_id: String,
    /// Its directories and path mapping.
    pub layout: Arc<SandboxLayout>,
    /// Its live sessions and processes.
    pub runtime: Arc<SandboxRuntime>,
    /// The sandbox env (`envVars` at creation).
    pub env: BTreeMap<String, String>,
    /// The sandbox user (default `daytona`).
    pub user: String,
    /// The `code-toolbox-language` label, if any.
    pub language: Option<String>,
}

impl fmt::Debug for ToolboxTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolboxTarget")
            .field("sandbox_id", &self.sandbox_id)
            .field("layout", &self.layout)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("user", &self.user)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

/// Settings fixed when the emulator starts.
pub(crate) struct Config {
    /// Required bearer token; `None` = no auth.
    pub(crate) api_key: Option<String>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// Where sandbox directories live (`<data_dir>/sandboxes/<id>`).
    pub(crate) data_dir: PathBuf,
    /// Real time of one emulated minute (auto-stop/archive/delete and TTL intervals).
    pub(crate) minute: Duration,
    /// How long lifecycle transitions take; zero = done before the response.
    pub(crate) transition_delay: Duration,
    /// socket.io ping interval announced and used.
    pub(crate) ping_interval: Duration,
    /// socket.io ping timeout announced and used.
    pub(crate) ping_timeout: Duration,
    /// Organization id reported on every sandbox.
    pub(crate) organization_id: String,
    /// How long one step of an emulated image build (or snapshot pull) takes.
    pub(crate) build_step: Duration,
    /// How sandbox commands are confined; `None` = [`crate::layout::detect_isolation`].
    pub(crate) isolation: Option<Isolation>,
}

/// One sandbox as the emulator tracks it.
pub(crate) struct SandboxEntry {
    /// The DTO as served (state and desired state inside are authoritative).
    pub(crate) dto: Sandbox,
    /// Creation order, for stable sorting.
    pub(crate) seq: u64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_activity_at: DateTime<Utc>,
    /// Monotonic twin of `last_activity_at`, for auto-stop.
    pub(crate) last_activity: Instant,
    /// When the current state was entered, for auto-archive/auto-delete.
    pub(crate) state_since: Instant,
    /// TTL deadline.
    pub(crate) destroy_at: Option<Instant>,
    /// A lifecycle transition is running ("pending" upstream); other transitions are refused.
    pub(crate) busy: bool,
    /// Toolbox requests in flight; auto-stop waits for them (the real proxy keeps refreshing
    /// activity while a request is open).
    pub(crate) in_flight: usize,
    /// Preview token (`X-Daytona-Preview-Token` / `DAYTONA_SANDBOX_AUTH_KEY`).
    pub(crate) auth_token: String,
    pub(crate) layout: Arc<SandboxLayout>,
    pub(crate) runtime: Arc<SandboxRuntime>,
    /// The log of its image build, for sandboxes created from an image.
    pub(crate) build: Option<Arc<BuildLog>>,
    /// When it last stopped (kept while archived), for auto-archive and auto-delete.
    pub(crate) stopped_since: Option<Instant>,
}

impl SandboxEntry {
    pub(crate) fn state(&self) -> SandboxState {
        self.dto.state.clone().unwrap_or(SandboxState::Unknown)
    }

    pub(crate) fn desired(&self) -> SandboxDesiredState {
        self.dto
            .desired_state
            .clone()
            .unwrap_or(SandboxDesiredState::Started)
    }

    /// The DTO as served now.
    pub(crate) fn render(&self) -> Sandbox {
        let mut dto = self.dto.clone();
        dto.last_activity_at = Some(rfc3339(self.last_activity_at));
        dto
    }

    pub(crate) fn touch(&mut self) {
        self.last_activity = Instant::now();
        self.last_activity_at = Utc::now();
    }

    pub(crate) fn mark_updated(&mut self) {
        self.dto.updated_at = Some(rfc3339(Utc::now()));
    }
}

/// All live sandboxes.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) entries: HashMap<String, SandboxEntry>,
    pub(crate) next_seq: u64,
}

impl Registry {
    /// The id of the sandbox with this id, else with this name.
    pub(crate) fn resolve(&self, id_or_name: &str) -> Option<String> {
        if self.entries.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        self.entries
            .values()
            .find(|e| e.dto.name == id_or_name)
            .map(|e| e.dto.id.clone())
    }

    pub(crate) fn get_mut(&mut self, id_or_name: &str) -> Option<&mut SandboxEntry> {
        let id = self.resolve(id_or_name)?;
        self.entries.get_mut(&id)
    }

    pub(crate) fn get(&self, id_or_name: &str) -> Option<&SandboxEntry> {
        let id = self.resolve(id_or_name)?;
        self.entries.get(&id)
    }

    pub(crate) fn name_taken(&self, name: &str) -> bool {
        self.entries.values().any(|e| e.dto.name == name)
    }
}

/// The emulator's shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    registry: Mutex<Registry>,
    volumes: Mutex<Volumes>,
    snapshots: Mutex<Snapshots>,
    previews: Mutex<SignedPreviews>,
    faults: FaultSet,
    requests: RequestLog,
    events: broadcast::Sender<Arc<str>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("base_url", &self.inner.config.base_url)
            .field("auth", &self.inner.config.api_key.is_some())
            .field("data_dir", &self.inner.config.data_dir)
            .field("sandboxes", &self.registry().entries.len())
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub(crate) fn new(config: Config) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        AppState {
            inner: Arc::new(Inner {
                config,
                registry: Mutex::new(Registry::default()),
                volumes: Mutex::new(Volumes::default()),
                snapshots: Mutex::new(Snapshots::default()),
                previews: Mutex::new(SignedPreviews::default()),
                faults: FaultSet::default(),
                requests: RequestLog::default(),
                events,
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.inner.registry)
    }

    pub(crate) fn volumes(&self) -> MutexGuard<'_, Volumes> {
        lock(&self.inner.volumes)
    }

    pub(crate) fn snapshots(&self) -> MutexGuard<'_, Snapshots> {
        lock(&self.inner.snapshots)
    }

    pub(crate) fn previews(&self) -> MutexGuard<'_, SignedPreviews> {
        lock(&self.inner.previews)
    }

    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    pub(crate) fn request_log(&self) -> &RequestLog {
        &self.inner.requests
    }

    /// Cancelled when the emulator shuts down; long-lived handlers (WebSockets) should stop.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// Where sandbox (`sandboxes/<id>`) and volume (`volumes/<id>`) directories live.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.config.data_dir
    }

    /// `http://127.0.0.1:PORT/toolbox`, the `toolboxProxyUrl` of every sandbox.
    pub fn toolbox_proxy_url(&self) -> String {
        format!("{}/toolbox", self.inner.config.base_url)
    }

    /// Whether requests need `Authorization: Bearer <key>`.
    pub fn auth_required(&self) -> bool {
        self.inner.config.api_key.is_some()
    }

    /// Whether `token` is the configured API key (always true without one).
    pub fn api_key_matches(&self, token: Option<&str>) -> bool {
        match &self.inner.config.api_key {
            None => true,
            Some(key) => token.is_some_and(|t| constant_time_eq(t.as_bytes(), key.as_bytes())),
        }
    }

    /// The toolbox target for a *started* sandbox, recording activity (for auto-stop).
    ///
    /// Errors: unknown (or deleted) sandbox → 404 daemon shape, code `NOT_FOUND`. A sandbox that
    /// exists but is not `started` → **502** `{"statusCode":502,"error":"Bad Gateway",...}` in
    /// the API shape, as the real proxy answers when it cannot reach a stopped sandbox's daemon;
    /// the message names the state.
    pub fn toolbox_target(&self, sandbox_id: &str) -> Result<ToolboxTarget, ApiError> {
        let mut registry = self.registry();
        let Some(entry) = registry.entries.get_mut(sandbox_id) else {
            return Err(ApiError::daemon(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                format!("sandbox {sandbox_id} not found"),
            ));
        };
        let state = entry.state();
        if state != SandboxState::Started || entry.desired() != SandboxDesiredState::Started {
            return Err(ApiError::api(
                StatusCode::BAD_GATEWAY,
                format!("Sandbox {sandbox_id} is not running (state: {state})"),
            ));
        }
        entry.touch();
        Ok(ToolboxTarget {
            sandbox_id: entry.dto.id.clone(),
            layout: entry.layout.clone(),
            runtime: entry.runtime.clone(),
            env: entry.dto.env.clone(),
            user: entry.dto.user.clone(),
            language: entry.dto.labels.get(LANGUAGE_LABEL).cloned(),
        })
    }

    /// Whether a WebSocket opened by a request to `path` (e.g.
    /// `/toolbox/{id}/process/session/s/command/c/logs`) must be cut by a fault rule, and when.
    /// Each call consumes one hit of the matching rule, so call it once per upgrade. To cut,
    /// drop the socket without sending a close frame (call [`crate::ConnHandle::abort`] first,
    /// taken from the request extensions, for a TCP reset instead of a plain close).
    pub fn ws_drop_after(&self, path: &str) -> Option<WsDrop> {
        self.inner.faults.take_ws_drop(path)
    }

    /// Marks activity on a sandbox now (resets its auto-stop timer). Unknown ids are ignored.
    pub fn record_activity(&self, sandbox_id: &str) {
        if let Some(entry) = self.registry().entries.get_mut(sandbox_id) {
            entry.touch();
        }
    }

    /// Counts a toolbox request as in flight until the guard drops (auto-stop waits for it).
    pub fn begin_toolbox_request(&self, sandbox_id: &str) -> Option<ActivityGuard> {
        let mut registry = self.registry();
        let entry = registry.entries.get_mut(sandbox_id)?;
        entry.in_flight += 1;
        entry.touch();
        Some(ActivityGuard {
            state: self.clone(),
            sandbox_id: sandbox_id.to_string(),
        })
    }

    /// The preview token of a sandbox.
    pub fn preview_token(&self, sandbox_id: &str) -> Option<String> {
        self.registry()
            .entries
            .get(sandbox_id)
            .map(|e| e.auth_token.clone())
    }

    /// Every live sandbox, oldest first.
    pub fn sandboxes(&self) -> Vec<Sandbox> {
        let registry = self.registry();
        let mut entries: Vec<&SandboxEntry> = registry.entries.values().collect();
        entries.sort_by_key(|e| e.seq);
        entries.iter().map(|e| e.render()).collect()
    }

    /// One sandbox by id or name.
    pub fn sandbox(&self, id_or_name: &str) -> Option<Sandbox> {
        self.registry().get(id_or_name).map(SandboxEntry::render)
    }

    /// The live runtime of a sandbox (sessions and processes), for inspection.
    pub fn runtime(&self, id_or_name: &str) -> Option<Arc<SandboxRuntime>> {
        self.registry().get(id_or_name).map(|e| e.runtime.clone())
    }

    /// The host directory tree of a sandbox.
    pub fn layout(&self, id_or_name: &str) -> Option<Arc<SandboxLayout>> {
        self.registry().get(id_or_name).map(|e| e.layout.clone())
    }

    /// Every request received so far (oldest first), credentials redacted.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.requests.snapshot()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.inner.requests.clear();
    }

    /// Installs a fault rule; returns its id. The error names what is wrong with the rule.
    pub fn add_fault(&self, rule: FaultRule) -> Result<u64, String> {
        self.inner.faults.add(rule)
    }

    /// Removes a fault rule; false when no rule has that id.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.inner.faults.remove(id)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.inner.faults.clear();
    }

    /// The installed fault rules with their hit counts.
    pub fn faults(&self) -> Vec<InstalledFault> {
        self.inner.faults.list()
    }

    /// The HTTP fault for a request, if a rule matches (counts a hit).
    pub(crate) fn take_http_fault(&self, method: &str, path: &str) -> Option<FaultAction> {
        self.inner.faults.take_http(method, path)
    }

    /// Subscribes to socket.io packets (`42[...]`) for every sandbox event.
    pub(crate) fn subscribe_events(&self) -> broadcast::Receiver<Arc<str>> {
        self.inner.events.subscribe()
    }

    /// Sends a socket.io event to every connected client.
    pub(crate) fn emit(&self, event: &str, payload: serde_json::Value) {
        let packet = format!("42{}", serde_json::json!([event, payload]));
        // No subscribers is the normal case when no SDK is connected.
        let _ = self.inner.events.send(Arc::from(packet));
    }

    /// Emits `sandbox.state.updated` when the state changed.
    pub(crate) fn emit_state(&self, dto: &Sandbox, old: &SandboxState) {
        let Some(new) = dto.state.as_ref() else {
            return;
        };
        if new == old {
            return;
        }
        self.emit(
            "sandbox.state.updated",
            serde_json::json!({"sandbox": dto, "oldState": old, "newState": new}),
        );
    }

    /// Emits `sandbox.desired-state.updated` when the desired state changed.
    pub(crate) fn emit_desired(&self, dto: &Sandbox, old: &SandboxDesiredState) {
        let Some(new) = dto.desired_state.as_ref() else {
            return;
        };
        if new == old {
            return;
        }
        self.emit(
            "sandbox.desired-state.updated",
            serde_json::json!({"sandbox": dto, "oldDesiredState": old, "newDesiredState": new}),
        );
    }
}

/// Keeps a toolbox request counted as in flight; see [`AppState::begin_toolbox_request`].
pub struct ActivityGuard {
    state: AppState,
    sandbox_id: String,
}

impl fmt::Debug for ActivityGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityGuard")
            .field("sandbox_id", &self.sandbox_id)
            .finish()
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if let Some(entry) = self.state.registry().entries.get_mut(&self.sandbox_id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.touch();
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
