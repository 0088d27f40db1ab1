//! [`CreateSandboxParams`]: what a new sandbox should be, in the official SDKs' terms, and its
//! translation to the `POST /sandbox` body.

use std::collections::BTreeMap;
use std::fmt;

use daytona_api::sandbox::{CreateBuildInfo, CreateSandbox, SandboxVolume};

use crate::error::DaytonaError;

/// The label through which the SDKs tell the toolbox which language `codeRun` uses.
pub const LANGUAGE_LABEL: &str = "code-toolbox-language";

/// Language of the sandbox's code runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodeLanguage {
    /// Python (the default).
    #[default]
    Python,
    /// TypeScript.
    TypeScript,
    /// JavaScript.
    JavaScript,
}

impl CodeLanguage {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeLanguage::Python => "python",
            CodeLanguage::TypeScript => "typescript",
            CodeLanguage::JavaScript => "javascript",
        }
    }
}

/// Resources for a sandbox built from an image. Daytona refuses resources together with a
/// snapshot (the snapshot fixes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU cores.
    pub cpu: Option<u32>,
    /// Memory in GiB.
    pub memory: Option<u32>,
    /// Disk in GiB.
    pub disk: Option<u32>,
    /// GPUs.
    pub gpu: Option<u32>,
}

/// What to create. Every field is optional; [`Default`] gives Daytona's defaults (the default
/// snapshot, Python, auto-stop after 15 idle minutes).
///
/// ```
/// use workspace_daytona::{CreateSandboxParams, CodeLanguage};
/// let p = CreateSandboxParams::new()
///     .name("agent-a")
///     .language(CodeLanguage::TypeScript)
///     .env("NODE_ENV", "development")
///     .label("project", "mvp")
///     .auto_stop_interval(15)
///     .ephemeral(true);
/// let body = p.to_wire(None).unwrap();
/// assert_eq!(body.auto_delete_interval, Some(0));
/// assert_eq!(body.labels.unwrap()["code-toolbox-language"], "typescript");
/// assert!(!format!("{p:?}").contains("development"));
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct CreateSandboxParams {
    /// Unique name in the organization. With a name, a create whose outcome is unknown (the
    /// connection broke) can be retried safely; without one it never is.
    pub name: Option<String>,
    /// Snapshot id or name.
    pub snapshot: Option<String>,
    /// A Docker image to build from (sent as a one-line Dockerfile `FROM <image>`).
    pub image: Option<String>,
    /// CPU, memory, disk and GPU (only with `image`).
    pub resources: Option<Resources>,
    /// Environment variables of every process in the sandbox.
    pub env_vars: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The OS user.
    pub user: Option<String>,
    /// Whether port previews are public.
    pub public: Option<bool>,
    /// Code-runner language (sent as the `code-toolbox-language` label; Python when unset).
    pub language: Option<CodeLanguage>,
    /// Idle minutes before auto-stop; 0 disables.
    pub auto_stop_interval: Option<u32>,
    /// Stopped minutes before auto-archive; 0 means the maximum.
    pub auto_archive_interval: Option<u32>,
    /// Stopped minutes before auto-delete; negative disables, 0 deletes on stop.
    pub auto_delete_interval: Option<i32>,
    /// Delete the sandbox as soon as it stops (auto-delete interval 0).
    pub ephemeral: bool,
    /// Volumes to mount.
    pub volumes: Vec<SandboxVolume>,
    /// Block all outbound network traffic.
    pub network_block_all: Option<bool>,
    /// CIDRs allowed out (sent comma-separated).
    pub network_allow_list: Option<Vec<String>>,
    /// Region; overrides the client's configured target.
    pub target: Option<String>,
}

impl fmt::Debug for CreateSandboxParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&String> = self.env_vars.keys().collect();
        f.debug_struct("CreateSandboxParams")
            .field("name", &self.name)
            .field("snapshot", &self.snapshot)
            .field("image", &self.image)
            .field("resources", &self.resources)
            .field("env_vars (values redacted)", &env_keys)
            .field("labels", &self.labels)
            .field("user", &self.user)
            .field("public", &self.public)
            .field("language", &self.language)
            .field("auto_stop_interval", &self.auto_stop_interval)
            .field("auto_archive_interval", &self.auto_archive_interval)
            .field("auto_delete_interval", &self.auto_delete_interval)
            .field("ephemeral", &self.ephemeral)
            .field("volumes", &self.volumes)
            .field("network_block_all", &self.network_block_all)
            .field("network_allow_list", &self.network_allow_list)
            .field("target", &self.target)
            .finish()
    }
}

impl CreateSandboxParams {
    /// Daytona's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Creates from a snapshot.
    pub fn snapshot(mut self, snapshot: impl Into<String>) -> Self {
        self.snapshot = Some(snapshot.into());
        self
    }

    /// Builds from a Docker image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Sets resources (image builds only).
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = Some(resources);
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env_vars.insert(key.into(), value.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the OS user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Makes port previews public (or not).
    pub fn public(mut self, public: bool) -> Self {
        self.public = Some(public);
        self
    }

    /// Sets the code-runner language.
    pub fn language(mut self, language: CodeLanguage) -> Self {
        self.language = Some(language);
        self
    }

    /// Idle minutes before auto-stop (0 disables).
    pub fn auto_stop_interval(mut self, minutes: u32) -> Self {
        self.auto_stop_interval = Some(minutes);
        self
    }

    /// Stopped minutes before auto-archive (0 = maximum).
    pub fn auto_archive_interval(mut self, minutes: u32) -> Self {
        self.auto_archive_interval = Some(minutes);
        self
    }

    /// Stopped minutes before auto-delete (negative disables, 0 = on stop).
    pub fn auto_delete_interval(mut self, minutes: i32) -> Self {
        self.auto_delete_interval = Some(minutes);
        self
    }

    /// Delete on stop.
    pub fn ephemeral(mut self, ephemeral: bool) -> Self {
        self.ephemeral = ephemeral;
        self
    }

    /// Mounts a volume (id or name) at `mount_path`.
    pub fn volume(mut self, volume_id: impl Into<String>, mount_path: impl Into<String>) -> Self {
        self.volumes.push(SandboxVolume {
            volume_id: volume_id.into(),
            mount_path: mount_path.into(),
            subpath: None,
        });
        self
    }

    /// Blocks (or unblocks) all outbound traffic.
    pub fn network_block_all(mut self, block: bool) -> Self {
        self.network_block_all = Some(block);
        self
    }

    /// Allows outbound traffic only to these CIDRs.
    pub fn network_allow_list<I, S>(mut self, cidrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.network_allow_list = Some(cidrs.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the region.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// The `POST /sandbox` body, as the official SDKs would send it. `default_target` is the
    /// client's configured region, used when [`target`](Self::target) is unset.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] naming the field for contradictory or malformed values.
    pub fn to_wire(&self, default_target: Option<&str>) -> Result<CreateSandbox, DaytonaError> {
        if self.image.is_some() && self.snapshot.is_some() {
            return Err(DaytonaError::invalid(
                "image",
                "set either image or snapshot, not both",
            ));
        }
        if let Some(name) = &self.name
            && name.trim().is_empty()
        {
            return Err(DaytonaError::invalid("name", "must not be empty"));
        }
        for key in self.env_vars.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(DaytonaError::invalid(
                    format!("env_vars.{key}"),
                    "names must be non-empty and contain no '=' or NUL",
                ));
            }
        }
        if self.labels.keys().any(|k| k.trim().is_empty()) {
            return Err(DaytonaError::invalid(
                "labels",
                "label keys must not be empty",
            ));
        }
        if self.ephemeral
            && let Some(d) = self.auto_delete_interval
            && d != 0
        {
            return Err(DaytonaError::invalid(
                "auto_delete_interval",
                "an ephemeral sandbox is deleted on stop (interval 0); do not set another interval",
            ));
        }
        let mut body = CreateSandbox::new();
        body.name = self.name.clone();
        body.snapshot = self.snapshot.clone();
        body.user = self.user.clone();
        body.env = Some(self.env_vars.clone());
        let mut labels = self.labels.clone();
        labels.insert(
            LANGUAGE_LABEL.to_string(),
            self.language.unwrap_or_default().as_str().to_string(),
        );
        body.labels = Some(labels);
        body.public = self.public;
        body.network_block_all = self.network_block_all;
        if let Some(list) = &self.network_allow_list {
            if let Some(bad) = list.iter().find(|c| c.contains(',') || c.trim().is_empty()) {
                return Err(DaytonaError::invalid(
                    "network_allow_list",
                    format!("`{bad}` is not a single CIDR"),
                ));
            }
            body.network_allow_list =
                Some(list.iter().map(|c| c.trim()).collect::<Vec<_>>().join(","));
        }
        body.target = self
            .target
            .clone()
            .or_else(|| default_target.map(str::to_string));
        if let Some(r) = self.resources {
            body.cpu = r.cpu.map(i64::from);
            body.memory = r.memory.map(i64::from);
            body.disk = r.disk.map(i64::from);
            body.gpu = r.gpu.map(i64::from);
        }
        body.auto_stop_interval = self.auto_stop_interval.map(i64::from);
        body.auto_archive_interval = self.auto_archive_interval.map(i64::from);
        body.auto_delete_interval = if self.ephemeral {
            Some(0)
        } else {
            self.auto_delete_interval.map(i64::from)
        };
        if !self.volumes.is_empty() {
            body.volumes = Some(self.volumes.clone());
        }
        if let Some(image) = &self.image {
            let image = image.trim();
            if image.is_empty() || image.contains('\n') {
                return Err(DaytonaError::invalid(
                    "image",
                    "must be one image reference",
                ));
            }
            body.build_info = Some(CreateBuildInfo {
                dockerfile_content: format!("FROM {image}\n"),
                context_hashes: None,
            });
        }
        Ok(body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn minimal_body_matches_the_sdk() {
        let body = CreateSandboxParams::new()
            .label("a", "b")
            .to_wire(None)
            .unwrap();
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"env":{},"labels":{"a":"b","code-toolbox-language":"python"}})
        );
    }

    #[test]
    fn every_field() {
        let p = CreateSandboxParams::new()
            .name("n")
            .image("debian:12")
            .resources(Resources {
                cpu: Some(2),
                memory: Some(4),
                disk: Some(8),
                gpu: Some(1),
            })
            .env("K", "V")
            .user("root")
            .public(true)
            .language(CodeLanguage::JavaScript)
            .auto_stop_interval(0)
            .auto_archive_interval(60)
            .auto_delete_interval(-1)
            .volume("vol", "/data")
            .network_block_all(false)
            .network_allow_list(["10.0.0.0/8", " 192.168.0.0/16"])
            .target("eu");
        let json = serde_json::to_value(p.to_wire(Some("us")).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "n", "user": "root", "env": {"K": "V"},
                "labels": {"code-toolbox-language": "javascript"},
                "public": true, "networkBlockAll": false,
                "networkAllowList": "10.0.0.0/8,192.168.0.0/16",
                "target": "eu", "cpu": 2, "gpu": 1, "memory": 4, "disk": 8,
                "autoStopInterval": 0, "autoArchiveInterval": 60, "autoDeleteInterval": -1,
                "volumes": [{"volumeId": "vol", "mountPath": "/data"}],
                "buildInfo": {"dockerfileContent": "FROM debian:12\n"}
            })
        );
    }

    #[test]
    fn default_target_and_snapshot() {
        let body = CreateSandboxParams::new()
            .snapshot("snap")
            .to_wire(Some("us"))
            .unwrap();
        assert_eq!(body.target.as_deref(), Some("us"));
        assert_eq!(body.snapshot.as_deref(), Some("snap"));
        assert!(body.build_info.is_none());
    }

    #[test]
    fn contradictions_are_named() {
        let cases = [
            (CreateSandboxParams::new().image("a").snapshot("b"), "image"),
            (
                CreateSandboxParams::new()
                    .ephemeral(true)
                    .auto_delete_interval(5),
                "auto_delete_interval",
            ),
            (CreateSandboxParams::new().env("A=B", "x"), "env_vars.A=B"),
            (CreateSandboxParams::new().name(" "), "name"),
            (
                CreateSandboxParams::new().network_allow_list(["1.2.3.4/32,5.6.7.8/32"]),
                "network_allow_list",
            ),
            (CreateSandboxParams::new().image("a\nRUN x"), "image"),
        ];
        for (p, field) in cases {
            match p.to_wire(None) {
                Err(DaytonaError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        // Ephemeral with an explicit 0 is consistent.
        assert!(
            CreateSandboxParams::new()
                .ephemeral(true)
                .auto_delete_interval(0)
                .to_wire(None)
                .is_ok()
        );
    }
}
