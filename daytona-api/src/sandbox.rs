//! Control-plane DTOs: what `POST /sandbox`, `GET /sandbox[/{idOrName}]` and the lifecycle routes
//! send and receive, written from the v0.205.1 `api.json` (plus `kvm`, which the 0.218 clients add).
//!
//! Conventions, chosen so one set of types serves both the client and the emulator:
//! - Optional wire fields are `Option<_>`: absent on the wire when `None`, and `null` reads as
//!   `None`, so a newer or older server does not break deserialisation.
//! - Unknown JSON fields are ignored (no `deny_unknown_fields`): the real API adds fields often.
//! - String enums carry an `Other(String)` variant, so a state this crate does not know yet still
//!   parses and round-trips unchanged.
//! - `cpu`, `gpu`, `memory`, `disk` are JSON numbers (`f64` here) that serialise as JSON integers
//!   when they are whole, as the real API sends them.
//! - Timestamps are RFC 3339 strings, exactly as received (no date type is imposed on callers).
//! - `Debug` never prints environment variable values (they are often secrets).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// `cpu`/`gpu`/`memory`/`disk` as JSON numbers: whole values go out as integers (`2`, not `2.0`).
pub(crate) mod quantity {
    use serde::Serializer;

    /// Whole values in this range survive the round trip through `i64` exactly.
    const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0;

    pub(crate) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() && value.fract() == 0.0 && value.abs() < EXACT_INT_LIMIT {
            // The guard above makes the cast exact.
            #[allow(clippy::cast_possible_truncation)]
            let whole = *value as i64;
            serializer.serialize_i64(whole)
        } else {
            serializer.serialize_f64(*value)
        }
    }
}

/// Prints an env map's keys with their values hidden.
struct RedactedEnv<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for RedactedEnv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// Defines a wire string enum with a catch-all `Other(String)` variant, its `as_str`, `Display`
/// and serde impls (as a plain JSON string).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know (a newer server); kept verbatim.
            Other(String),
        }

        impl $name {
            /// The exact wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(s) => s.as_str(),
                }
            }

            /// Parses a wire string; unknown strings become `Other`.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )+
                    other => $name::Other(other.to_string()),
                }
            }

            /// Every known value, in the spec's order.
            pub const KNOWN: &'static [$name] = &[ $( $name::$variant, )+ ];
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::from_wire(s))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok($name::from_wire(&s))
            }
        }
    };
}

/// Lets the other DTO modules declare their string enums the same way.
pub(crate) use wire_enum;

wire_enum! {
    /// `SandboxState`: where a sandbox is. The API reports `started` with desired `stopped` as
    /// `stopping`, and `started` with desired `destroyed` as `destroying`.
    SandboxState {
        /// Being created.
        Creating => "creating",
        /// Being restored from an archive.
        Restoring => "restoring",
        /// Gone.
        Destroyed => "destroyed",
        /// Being deleted.
        Destroying => "destroying",
        /// Running; the toolbox answers.
        Started => "started",
        /// Stopped; files kept.
        Stopped => "stopped",
        /// Being started.
        Starting => "starting",
        /// Being stopped.
        Stopping => "stopping",
        /// Failed; see `errorReason` and `recoverable`.
        Error => "error",
        /// The image build failed.
        BuildFailed => "build_failed",
        /// Waiting for an image build.
        PendingBuild => "pending_build",
        /// Building its snapshot.
        BuildingSnapshot => "building_snapshot",
        /// Unknown to the API itself.
        Unknown => "unknown",
        /// Pulling its snapshot.
        PullingSnapshot => "pulling_snapshot",
        /// Archived (stopped, files moved to object storage).
        Archived => "archived",
        /// Being archived.
        Archiving => "archiving",
        /// Being resized.
        Resizing => "resizing",
        /// A snapshot of it is being taken.
        Snapshotting => "snapshotting",
        /// Being forked.
        Forking => "forking",
        /// Being paused.
        Pausing => "pausing",
        /// Paused (memory kept).
        Paused => "paused",
        /// Being resumed from pause.
        Resuming => "resuming",
    }
}

impl SandboxState {
    /// States a lifecycle wait treats as failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, SandboxState::Error | SandboxState::BuildFailed)
    }

    /// States that are on their way somewhere else (a client should keep polling).
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            SandboxState::Creating
                | SandboxState::Restoring
                | SandboxState::Destroying
                | SandboxState::Starting
                | SandboxState::Stopping
                | SandboxState::PendingBuild
                | SandboxState::BuildingSnapshot
                | SandboxState::PullingSnapshot
                | SandboxState::Archiving
                | SandboxState::Resizing
                | SandboxState::Snapshotting
                | SandboxState::Forking
                | SandboxState::Pausing
                | SandboxState::Resuming
        )
    }
}

wire_enum! {
    /// `SandboxDesiredState`: where the API is driving a sandbox.
    SandboxDesiredState {
        /// To be deleted.
        Destroyed => "destroyed",
        /// To be running.
        Started => "started",
        /// To be stopped.
        Stopped => "stopped",
        /// To be resized.
        Resized => "resized",
        /// To be archived.
        Archived => "archived",
        /// To be paused.
        Paused => "paused",
    }
}

wire_enum! {
    /// `Sandbox.backupState` (deprecated upstream, still sent).
    BackupState {
        /// No backup.
        None => "None",
        /// Backup queued.
        Pending => "Pending",
        /// Backup running.
        InProgress => "InProgress",
        /// Backup done.
        Completed => "Completed",
        /// Backup failed.
        Error => "Error",
    }
}

wire_enum! {
    /// `SandboxClass`: the kind of machine behind a sandbox.
    SandboxClass {
        /// A Linux VM.
        LinuxVm => "linux-vm",
        /// A container.
        Container => "container",
        /// An Android machine.
        Android => "android",
        /// A Windows machine.
        Windows => "windows",
    }
}

/// `SandboxVolume`: a volume mounted into a sandbox (in `CreateSandbox.volumes` and `Sandbox.volumes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxVolume {
    /// Volume id or name (the API resolves names to ids on create).
    pub volume_id: String,
    /// Where it is mounted inside the sandbox.
    pub mount_path: String,
    /// Only this prefix of the volume is mounted, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// `CreateBuildInfo`: an image to build (the SDKs turn `image: "debian:12"` into
/// `{"dockerfileContent": "FROM debian:12\n"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBuildInfo {
    /// The Dockerfile.
    pub dockerfile_content: String,
    /// Hashes of uploaded build-context archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_hashes: Option<Vec<String>>,
}

/// `BuildInfo`: the build a sandbox came from, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// The Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_content: Option<String>,
    /// Hashes of the build-context archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_hashes: Option<Vec<String>>,
    /// RFC 3339.
    #[serde(default)]
    pub created_at: String,
    /// RFC 3339.
    #[serde(default)]
    pub updated_at: String,
    /// The snapshot the build produced (a content hash).
    #[serde(default)]
    pub snapshot_ref: String,
}

/// `CreateSandbox`: the body of `POST /sandbox`. Every field is optional; the SDKs drop undefined
/// fields, which `skip_serializing_if` mirrors.
///
/// Server rules worth knowing (v0.190+): `buildInfo` and `snapshot` are mutually exclusive, and
/// non-zero `cpu`/`gpu`/`memory`/`disk` are only accepted together with `buildInfo`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSandbox {
    /// Unique per organization; defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Snapshot id or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// OS user; defaults to `daytona`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment of every process in the sandbox (the SDKs' `envVars`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Labels; the SDKs put the code-run language in `code-toolbox-language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Whether port previews need no token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Block all outbound network traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_block_all: Option<bool>,
    /// Comma-separated CIDRs allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_allow_list: Option<String>,
    /// Comma-separated domains allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_allow_list: Option<String>,
    /// HTTP(S) proxy for outbound traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_proxy_url: Option<String>,
    /// OTel collector override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel_endpoint_override: Option<String>,
    /// Region, e.g. `us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// CPU cores (only with `buildInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// GPUs (only with `buildInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<i64>,
    /// Preferred GPU types, in order (`H100`, `H200`, `RTX-PRO-6000`, `RTX-4090`, `RTX-5090`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<Vec<String>>,
    /// GPU spot sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<bool>,
    /// Memory in GiB (only with `buildInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Disk in GiB (only with `buildInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<i64>,
    /// Minutes idle before auto-stop; 0 = never. Server default 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_stop_interval: Option<i64>,
    /// Minutes idle before auto-pause; 0 = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pause_interval: Option<i64>,
    /// Minutes stopped before auto-archive; 0 = the maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_archive_interval: Option<i64>,
    /// Minutes stopped before auto-delete; negative = never, 0 = delete on stop (ephemeral).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete_interval: Option<i64>,
    /// Wall-clock lifetime in minutes; 0 = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<i64>,
    /// Volumes to mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<SandboxVolume>>,
    /// An image to build instead of a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<CreateBuildInfo>,
    /// Co-locate with this sandbox (id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_sandbox: Option<String>,
    /// `[{ENV_NAME: secretName}, ...]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<BTreeMap<String, String>>>,
    /// Expose KVM (0.218 clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm: Option<bool>,
}

impl CreateSandbox {
    /// An empty request (every field unset).
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for CreateSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateSandbox")
            .field("name", &self.name)
            .field("snapshot", &self.snapshot)
            .field("user", &self.user)
            .field("env", &self.env.as_ref().map(RedactedEnv))
            .field("labels", &self.labels)
            .field("public", &self.public)
            .field("network_block_all", &self.network_block_all)
            .field("network_allow_list", &self.network_allow_list)
            .field("domain_allow_list", &self.domain_allow_list)
            .field(
                "outbound_proxy_url",
                &self.outbound_proxy_url.as_ref().map(|_| "<redacted>"),
            )
            .field("otel_endpoint_override", &self.otel_endpoint_override)
            .field("target", &self.target)
            .field("cpu", &self.cpu)
            .field("gpu", &self.gpu)
            .field("gpu_type", &self.gpu_type)
            .field("spot", &self.spot)
            .field("memory", &self.memory)
            .field("disk", &self.disk)
            .field("auto_stop_interval", &self.auto_stop_interval)
            .field("auto_pause_interval", &self.auto_pause_interval)
            .field("auto_archive_interval", &self.auto_archive_interval)
            .field("auto_delete_interval", &self.auto_delete_interval)
            .field("ttl_minutes", &self.ttl_minutes)
            .field("volumes", &self.volumes)
            .field("build_info", &self.build_info)
            .field("linked_sandbox", &self.linked_sandbox)
            .field("secrets", &self.secrets)
            .field("kvm", &self.kvm)
            .finish()
    }
}

/// `Sandbox`: a sandbox as `POST /sandbox`, `GET /sandbox/{idOrName}` and the lifecycle routes
/// return it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Sandbox {
    /// Id (a UUID on Daytona Cloud).
    pub id: String,
    /// Owning organization.
    #[serde(default)]
    pub organization_id: String,
    /// Name (defaults to the id).
    #[serde(default)]
    pub name: String,
    /// Snapshot it was created from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// OS user.
    #[serde(default)]
    pub user: String,
    /// Environment of every process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether port previews need no token.
    #[serde(default)]
    pub public: bool,
    /// All outbound traffic blocked.
    #[serde(default)]
    pub network_block_all: bool,
    /// Comma-separated CIDRs allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_allow_list: Option<String>,
    /// Comma-separated domains allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_allow_list: Option<String>,
    /// Outbound proxy (single-sandbox reads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_proxy_url: Option<String>,
    /// OTel collector override (single-sandbox reads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel_endpoint_override: Option<String>,
    /// Region.
    #[serde(default)]
    pub target: String,
    /// CPU cores.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub cpu: f64,
    /// GPUs.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub gpu: f64,
    /// Memory, GiB.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub memory: f64,
    /// Disk, GiB.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub disk: f64,
    /// GPU spot sandbox (absent = false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<bool>,
    /// When spot preemption destroyed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_evicted_at: Option<String>,
    /// GPU type assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// Current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SandboxState>,
    /// Where the API is driving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_state: Option<SandboxDesiredState>,
    /// Why it is in `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Whether `POST .../recover` can fix the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recoverable: Option<bool>,
    /// Warm pool it waits in (unclaimed members only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_pool_id: Option<String>,
    /// Backup state (deprecated upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_state: Option<BackupState>,
    /// Last backup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_created_at: Option<String>,
    /// Minutes idle before auto-stop; 0 = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_stop_interval: Option<i64>,
    /// Minutes idle before auto-pause; 0 = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pause_interval: Option<i64>,
    /// Minutes stopped before auto-archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_archive_interval: Option<i64>,
    /// Minutes stopped before auto-delete; negative = never, 0 = on stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete_interval: Option<i64>,
    /// When the TTL destroys it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy_at: Option<String>,
    /// Mounted volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<SandboxVolume>>,
    /// The image build it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<BuildInfo>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<String>,
    /// Machine class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_class: Option<SandboxClass>,
    /// Version of the in-sandbox daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_version: Option<String>,
    /// Runner it lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    /// Sandbox it is co-located with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_sandbox_id: Option<String>,
    /// Base of the toolbox URLs: `{toolboxProxyUrl}/{id}/...`.
    #[serde(default)]
    pub toolbox_proxy_url: String,
    /// KVM exposed (0.218 clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm: Option<bool>,
}

impl Sandbox {
    /// A sandbox with the required fields set and everything optional unset.
    pub fn new(id: impl Into<String>, toolbox_proxy_url: impl Into<String>) -> Self {
        let id = id.into();
        Sandbox {
            name: id.clone(),
            id,
            organization_id: String::new(),
            snapshot: None,
            user: String::new(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            public: false,
            network_block_all: false,
            network_allow_list: None,
            domain_allow_list: None,
            outbound_proxy_url: None,
            otel_endpoint_override: None,
            target: String::new(),
            cpu: 0.0,
            gpu: 0.0,
            memory: 0.0,
            disk: 0.0,
            spot: None,
            spot_evicted_at: None,
            gpu_type: None,
            state: None,
            desired_state: None,
            error_reason: None,
            recoverable: None,
            warm_pool_id: None,
            backup_state: None,
            backup_created_at: None,
            auto_stop_interval: None,
            auto_pause_interval: None,
            auto_archive_interval: None,
            auto_delete_interval: None,
            auto_destroy_at: None,
            volumes: None,
            build_info: None,
            created_at: None,
            updated_at: None,
            last_activity_at: None,
            sandbox_class: None,
            daemon_version: None,
            runner_id: None,
            linked_sandbox_id: None,
            toolbox_proxy_url: toolbox_proxy_url.into(),
            kvm: None,
        }
    }

    /// The toolbox base for this sandbox: `toolboxProxyUrl` + `/` (if missing) + `id`.
    pub fn toolbox_base_url(&self) -> String {
        let base = self.toolbox_proxy_url.trim_end_matches('/');
        format!("{base}/{}", self.id)
    }
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("name", &self.name)
            .field("snapshot", &self.snapshot)
            .field("user", &self.user)
            .field("env", &RedactedEnv(&self.env))
            .field("labels", &self.labels)
            .field("public", &self.public)
            .field("network_block_all", &self.network_block_all)
            .field("network_allow_list", &self.network_allow_list)
            .field("domain_allow_list", &self.domain_allow_list)
            .field(
                "outbound_proxy_url",
                &self.outbound_proxy_url.as_ref().map(|_| "<redacted>"),
            )
            .field("otel_endpoint_override", &self.otel_endpoint_override)
            .field("target", &self.target)
            .field("cpu", &self.cpu)
            .field("gpu", &self.gpu)
            .field("memory", &self.memory)
            .field("disk", &self.disk)
            .field("spot", &self.spot)
            .field("spot_evicted_at", &self.spot_evicted_at)
            .field("gpu_type", &self.gpu_type)
            .field("state", &self.state)
            .field("desired_state", &self.desired_state)
            .field("error_reason", &self.error_reason)
            .field("recoverable", &self.recoverable)
            .field("warm_pool_id", &self.warm_pool_id)
            .field("backup_state", &self.backup_state)
            .field("backup_created_at", &self.backup_created_at)
            .field("auto_stop_interval", &self.auto_stop_interval)
            .field("auto_pause_interval", &self.auto_pause_interval)
            .field("auto_archive_interval", &self.auto_archive_interval)
            .field("auto_delete_interval", &self.auto_delete_interval)
            .field("auto_destroy_at", &self.auto_destroy_at)
            .field("volumes", &self.volumes)
            .field("build_info", &self.build_info)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_activity_at", &self.last_activity_at)
            .field("sandbox_class", &self.sandbox_class)
            .field("daemon_version", &self.daemon_version)
            .field("runner_id", &self.runner_id)
            .field("linked_sandbox_id", &self.linked_sandbox_id)
            .field("toolbox_proxy_url", &self.toolbox_proxy_url)
            .field("kvm", &self.kvm)
            .finish()
    }
}

/// `SandboxListItem`: a sandbox in `GET /sandbox` (no `env`, `volumes`, `buildInfo`,
/// `outboundProxyUrl` or `otelEndpointOverride`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SandboxListItem {
    /// Id.
    pub id: String,
    /// Owning organization.
    #[serde(default)]
    pub organization_id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Region.
    #[serde(default)]
    pub target: String,
    /// Runner it lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    /// Machine class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_class: Option<SandboxClass>,
    /// Current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SandboxState>,
    /// Where the API is driving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_state: Option<SandboxDesiredState>,
    /// Snapshot it was created from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// OS user.
    #[serde(default)]
    pub user: String,
    /// Why it is in `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Whether the error is recoverable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recoverable: Option<bool>,
    /// Whether port previews need no token.
    #[serde(default)]
    pub public: bool,
    /// All outbound traffic blocked.
    #[serde(default)]
    pub network_block_all: bool,
    /// Comma-separated CIDRs allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_allow_list: Option<String>,
    /// Comma-separated domains allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_allow_list: Option<String>,
    /// CPU cores.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub cpu: f64,
    /// GPUs.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub gpu: f64,
    /// GPU spot sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<bool>,
    /// When spot preemption marked it for eviction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_evicted_at: Option<String>,
    /// GPU type assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// Memory, GiB.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub memory: f64,
    /// Disk, GiB.
    #[serde(default, serialize_with = "quantity::serialize")]
    pub disk: f64,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Backup state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_state: Option<BackupState>,
    /// Minutes idle before auto-stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_stop_interval: Option<i64>,
    /// Minutes idle before auto-pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pause_interval: Option<i64>,
    /// Minutes stopped before auto-archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_archive_interval: Option<i64>,
    /// Minutes stopped before auto-delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete_interval: Option<i64>,
    /// When the TTL destroys it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<String>,
    /// Version of the in-sandbox daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_version: Option<String>,
    /// Warm pool it waits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_pool_id: Option<String>,
    /// Base of the toolbox URLs.
    #[serde(default)]
    pub toolbox_proxy_url: String,
}

impl From<&Sandbox> for SandboxListItem {
    fn from(s: &Sandbox) -> Self {
        SandboxListItem {
            id: s.id.clone(),
            organization_id: s.organization_id.clone(),
            name: s.name.clone(),
            target: s.target.clone(),
            runner_id: s.runner_id.clone(),
            sandbox_class: s.sandbox_class.clone(),
            state: s.state.clone(),
            desired_state: s.desired_state.clone(),
            snapshot: s.snapshot.clone(),
            user: s.user.clone(),
            error_reason: s.error_reason.clone(),
            recoverable: s.recoverable,
            public: s.public,
            network_block_all: s.network_block_all,
            network_allow_list: s.network_allow_list.clone(),
            domain_allow_list: s.domain_allow_list.clone(),
            cpu: s.cpu,
            gpu: s.gpu,
            spot: s.spot,
            spot_evicted_at: s.spot_evicted_at.clone(),
            gpu_type: s.gpu_type.clone(),
            memory: s.memory,
            disk: s.disk,
            labels: s.labels.clone(),
            backup_state: s.backup_state.clone(),
            auto_stop_interval: s.auto_stop_interval,
            auto_pause_interval: s.auto_pause_interval,
            auto_archive_interval: s.auto_archive_interval,
            auto_delete_interval: s.auto_delete_interval,
            auto_destroy_at: s.auto_destroy_at.clone(),
            created_at: s.created_at.clone(),
            updated_at: s.updated_at.clone(),
            last_activity_at: s.last_activity_at.clone(),
            daemon_version: s.daemon_version.clone(),
            warm_pool_id: s.warm_pool_id.clone(),
            toolbox_proxy_url: s.toolbox_proxy_url.clone(),
        }
    }
}

/// `ListSandboxesResponse`: `GET /sandbox` (cursor pagination). Keep requesting with
/// `cursor=nextCursor` until it is `null` (or empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSandboxesResponse {
    /// This page.
    #[serde(default)]
    pub items: Vec<SandboxListItem>,
    /// Cursor of the next page; `null` on the last page (always present on the wire).
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `PaginatedSandboxes_deprecated`: `GET /sandbox/paginated` (page-based, deprecated upstream,
/// gone from the 0.218 clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedSandboxes {
    /// This page.
    #[serde(default)]
    pub items: Vec<Sandbox>,
    /// Matching sandboxes over all pages.
    #[serde(default)]
    pub total: u64,
    /// 1-based page number.
    #[serde(default)]
    pub page: u64,
    /// Number of pages.
    #[serde(default)]
    pub total_pages: u64,
}

/// `SandboxLabels`: body and response of `PUT /sandbox/{idOrName}/labels` (replaces all labels).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SandboxLabels {
    /// The labels.
    pub labels: BTreeMap<String, String>,
}

/// `ToolboxProxyUrl`: `GET /sandbox/{id}/toolbox-proxy-url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolboxProxyUrl {
    /// Base URL without the sandbox id, e.g. `https://proxy.app.daytona.io/toolbox`.
    pub url: String,
}

/// `Url`: a bare `{url}` answer (e.g. `GET /sandbox/{idOrName}/build-logs-url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlResponse {
    /// The URL.
    pub url: String,
}

/// `PortPreviewUrl`: `GET /sandbox/{idOrName}/ports/{port}/preview-url`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortPreviewUrl {
    /// Sandbox id.
    pub sandbox_id: String,
    /// Preview URL of the port.
    pub url: String,
    /// Access token (`X-Daytona-Preview-Token` header or `DAYTONA_SANDBOX_AUTH_KEY` query).
    pub token: String,
}

impl fmt::Debug for PortPreviewUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortPreviewUrl")
            .field("sandbox_id", &self.sandbox_id)
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `SignedPortPreviewUrl`: `GET /sandbox/{idOrName}/ports/{port}/signed-preview-url`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPortPreviewUrl {
    /// Sandbox id.
    pub sandbox_id: String,
    /// The port.
    pub port: u16,
    /// The signing token (also embedded in the URL).
    pub token: String,
    /// Signed preview URL.
    pub url: String,
}

impl fmt::Debug for SignedPortPreviewUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPortPreviewUrl")
            .field("sandbox_id", &self.sandbox_id)
            .field("port", &self.port)
            .field("token", &"<redacted>")
            .field("url", &"<redacted>")
            .finish()
    }
}

/// `UpdateLastActivity`: optional body of `POST /sandbox/{id}/last-activity` (answers 201).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateLastActivity {
    /// What kind of interaction reset the timer, e.g. `toolbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_type: Option<String>,
}

/// `ResizeSandbox`: body of `POST /sandbox/{idOrName}/resize`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResizeSandbox {
    /// CPU cores (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Memory GiB (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Disk GiB (≥ 1, can only grow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<i64>,
}

/// `UpdateSandboxNetworkSettings`: body of `POST /sandbox/{idOrName}/network-settings`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSandboxNetworkSettings {
    /// Block all outbound traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_block_all: Option<bool>,
    /// Comma-separated CIDRs allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_allow_list: Option<String>,
    /// Comma-separated domains allowed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_allow_list: Option<String>,
}

/// Payload of the socket.io event `sandbox.state.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStateUpdatedEvent {
    /// The sandbox after the change.
    pub sandbox: Sandbox,
    /// State before.
    pub old_state: SandboxState,
    /// State after.
    pub new_state: SandboxState,
}

/// Payload of the socket.io event `sandbox.desired-state.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxDesiredStateUpdatedEvent {
    /// The sandbox after the change.
    pub sandbox: Sandbox,
    /// Desired state before.
    pub old_desired_state: SandboxDesiredState,
    /// Desired state after.
    pub new_desired_state: SandboxDesiredState,
}

/// An error body from either server. The API (NestJS) sends
/// `{statusCode, error, message, path, timestamp}`; the toolbox daemon sends
/// `{statusCode, message, code, timestamp, path, method, source}`. Every field is optional here
/// so one type reads both (and older daemons that omit `source`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Status text (`Not Found`), API shape only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Human message. Validation errors that arrive as an array are joined with `, `.
    #[serde(default, deserialize_with = "message_text")]
    pub message: String,
    /// Daemon error code (`FILE_NOT_FOUND`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Request method (daemon shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// `DAYTONA_DAEMON` on daemon errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `message` as a string, an array of strings (NestJS validation), or absent/null.
fn message_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sandbox_round_trips_and_keeps_integers_integral() {
        let mut s = Sandbox::new("abc", "http://127.0.0.1:1/toolbox");
        s.cpu = 2.0;
        s.memory = 0.5;
        s.state = Some(SandboxState::Started);
        s.env.insert("SECRET".into(), "hunter2".into());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"], json!(2));
        assert!(v["cpu"].is_i64());
        assert_eq!(v["memory"], json!(0.5));
        assert_eq!(v["state"], json!("started"));
        assert_eq!(v["toolboxProxyUrl"], json!("http://127.0.0.1:1/toolbox"));
        assert!(
            v.get("snapshot").is_none(),
            "unset optional fields are absent"
        );
        let back: Sandbox = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn unknown_states_and_fields_survive() {
        let v = json!({"id":"x","state":"teleporting","desiredState":"started","brandNew":1,
                        "errorReason":null,"cpu":1.5});
        let s: Sandbox = serde_json::from_value(v).unwrap();
        assert_eq!(s.state, Some(SandboxState::Other("teleporting".into())));
        assert_eq!(s.error_reason, None);
        assert_eq!(s.cpu, 1.5);
        assert_eq!(
            serde_json::to_value(&s).unwrap()["state"],
            json!("teleporting")
        );
    }

    #[test]
    fn debug_hides_env_values() {
        let mut s = Sandbox::new("abc", "u");
        s.env.insert("TOKEN".into(), "hunter2".into());
        let out = format!("{s:?}");
        assert!(out.contains("TOKEN") && !out.contains("hunter2"));
        let c = CreateSandbox {
            env: Some(s.env.clone()),
            ..CreateSandbox::default()
        };
        let out = format!("{c:?}");
        assert!(out.contains("TOKEN") && !out.contains("hunter2"));
    }

    #[test]
    fn create_sandbox_omits_unset_fields() {
        let c = CreateSandbox {
            labels: Some(BTreeMap::from([("a".to_string(), "b".to_string())])),
            env: Some(BTreeMap::new()),
            ..CreateSandbox::default()
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"env":{},"labels":{"a":"b"}})
        );
    }

    #[test]
    fn list_response_always_has_next_cursor() {
        let r = ListSandboxesResponse {
            items: vec![],
            next_cursor: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"items":[],"nextCursor":null})
        );
    }

    #[test]
    fn error_body_reads_both_shapes() {
        let api: ErrorBody = serde_json::from_value(json!({"statusCode":400,"error":"Bad Request",
            "message":["cpu must be an integer number","x"],"path":"/api/sandbox","timestamp":"t"}))
        .unwrap();
        assert_eq!(api.message, "cpu must be an integer number, x");
        let daemon: ErrorBody = serde_json::from_value(json!({"statusCode":404,"message":"nope",
            "code":"FILE_NOT_FOUND","source":"DAYTONA_DAEMON"}))
        .unwrap();
        assert_eq!(daemon.code.as_deref(), Some("FILE_NOT_FOUND"));
    }

    #[test]
    fn enums_round_trip_every_known_value() {
        for s in SandboxState::KNOWN {
            assert_eq!(&SandboxState::from_wire(s.as_str()), s);
        }
        assert_eq!(SandboxClass::from_wire("linux-vm"), SandboxClass::LinuxVm);
        assert_eq!(
            BackupState::from_wire("InProgress"),
            BackupState::InProgress
        );
    }
}
