//! [`DaytonaSandboxBuilder`]: every option of a [`DaytonaSandbox`](super::DaytonaSandbox), checked once in
//! [`DaytonaSandboxBuilder::build`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use daytona_api::sandbox::SandboxVolume;
use workspace_core::command::MAX_TIMEOUT;
use workspace_core::{Result, SandboxError, validate_env_name};

use crate::client::DaytonaClient;
use crate::config::DaytonaConfig;
use crate::params::{CodeLanguage, CreateSandboxParams, Resources};
use crate::secret::Secret;

/// Default per-command timeout, as for every provider of the family.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Default bound on creating, starting or reconnecting to a sandbox (cold image builds may need
/// more: raise it with [`DaytonaSandboxBuilder::creation_timeout`]).
pub const DEFAULT_CREATION_TIMEOUT: Duration = Duration::from_secs(120);
/// Idle minutes before Daytona stops the sandbox, sent on every create.
pub const DEFAULT_AUTO_STOP_MINUTES: u32 = 15;
/// The working directory the instructions name when none is configured: the home directory of
/// Daytona's default images.
pub const DEFAULT_WORK_DIR: &str = "/home/daytona";
/// The label every sandbox this provider creates carries, holding the handle's id.
pub const ID_LABEL: &str = "workspace-sandbox-id";

/// Settings of a [`DaytonaSandbox`](super::DaytonaSandbox).
///
/// Credentials come from [`api_key`](Self::api_key) (or a shared
/// [`client`](Self::client)); when neither is given, `build` reads `DAYTONA_API_KEY` (or
/// `DAYTONA_JWT_TOKEN` with `DAYTONA_ORGANIZATION_ID`), `DAYTONA_API_URL` and `DAYTONA_TARGET`.
///
/// ```
/// use std::time::Duration;
/// use workspace_daytona::{CodeLanguage, DaytonaSandbox};
///
/// let sandbox = DaytonaSandbox::builder()
///     .api_key("dtn_example")
///     .language(CodeLanguage::Python)
///     .image("python:3.12-slim")
///     .resources(2, 4, 8)
///     .env("APP_ENV", "test")
///     .default_timeout(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// assert!(sandbox.get_instructions_text().contains("(python runtime)"));
/// // Neither the key nor env values are printed.
/// let shown = format!("{sandbox:?}");
/// assert!(!shown.contains("dtn_example") && !shown.contains("test"));
/// ```
#[derive(Clone)]
pub struct DaytonaSandboxBuilder {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) client: Option<DaytonaClient>,
    pub(crate) api_key: Option<Secret>,
    pub(crate) api_url: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) default_timeout: Duration,
    pub(crate) language: CodeLanguage,
    pub(crate) snapshot: Option<String>,
    pub(crate) image: Option<String>,
    pub(crate) resources: Option<Resources>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) user: Option<String>,
    pub(crate) public: Option<bool>,
    pub(crate) ephemeral: bool,
    pub(crate) auto_stop_interval: u32,
    pub(crate) auto_archive_interval: Option<u32>,
    pub(crate) auto_delete_interval: Option<i32>,
    pub(crate) volumes: Vec<SandboxVolume>,
    pub(crate) network_block_all: Option<bool>,
    pub(crate) network_allow_list: Option<Vec<String>>,
    pub(crate) creation_timeout: Duration,
    pub(crate) working_directory: Option<String>,
    pub(crate) instructions: Option<String>,
    pub(crate) interval_unit: Duration,
    pub(crate) byte_exact_output: bool,
    pub(crate) spare_session: bool,
    pub(crate) resident_shell: bool,
}

impl fmt::Debug for DaytonaSandboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaytonaSandboxBuilder")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("client", &self.client.as_ref().map(|_| "<shared client>"))
            .field("api_key", &self.api_key)
            .field("api_url", &self.api_url)
            .field("target", &self.target)
            .field("default_timeout", &self.default_timeout)
            .field("language", &self.language)
            .field("snapshot", &self.snapshot)
            .field("image", &self.image)
            .field("resources", &self.resources)
            .field(
                "env (values redacted)",
                &self.env.keys().collect::<Vec<_>>(),
            )
            .field("labels", &self.labels)
            .field("user", &self.user)
            .field("public", &self.public)
            .field("ephemeral", &self.ephemeral)
            .field("auto_stop_interval", &self.auto_stop_interval)
            .field("auto_archive_interval", &self.auto_archive_interval)
            .field("auto_delete_interval", &self.auto_delete_interval)
            .field("volumes", &self.volumes)
            .field("network_block_all", &self.network_block_all)
            .field("network_allow_list", &self.network_allow_list)
            .field("creation_timeout", &self.creation_timeout)
            .field("working_directory", &self.working_directory)
            .field("instructions", &self.instructions.is_some())
            .field("interval_unit", &self.interval_unit)
            .field("byte_exact_output", &self.byte_exact_output)
            .field("spare_session", &self.spare_session)
            .field("resident_shell", &self.resident_shell)
            .finish()
    }
}

impl Default for DaytonaSandboxBuilder {
    fn default() -> Self {
        DaytonaSandboxBuilder {
            id: None,
            name: None,
            client: None,
            api_key: None,
            api_url: None,
            target: None,
            default_timeout: DEFAULT_COMMAND_TIMEOUT,
            language: CodeLanguage::TypeScript,
            snapshot: None,
            image: None,
            resources: None,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            user: None,
            public: None,
            ephemeral: false,
            auto_stop_interval: DEFAULT_AUTO_STOP_MINUTES,
            auto_archive_interval: None,
            auto_delete_interval: None,
            volumes: Vec::new(),
            network_block_all: None,
            network_allow_list: None,
            creation_timeout: DEFAULT_CREATION_TIMEOUT,
            working_directory: None,
            instructions: None,
            interval_unit: Duration::from_secs(60),
            byte_exact_output: false,
            spare_session: true,
            resident_shell: true,
        }
    }
}

impl DaytonaSandboxBuilder {
    /// How commands send their output, per [`byte_exact_output`](Self::byte_exact_output).
    pub(crate) fn output_encoding(&self) -> super::script::OutputEncoding {
        if self.byte_exact_output {
            super::script::OutputEncoding::Base64
        } else {
            super::script::OutputEncoding::Plain
        }
    }

    /// The handle's id, and the first key `start` looks a sandbox up by: a Daytona sandbox id
    /// (or name) to reconnect to. When nothing has that id or name, a sandbox is created with it
    /// as its name (unless [`name`](Self::name) says otherwise). Default: a fresh
    /// `daytona-sandbox-<random>`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The Daytona sandbox name: unique in the organization, the reconnect key after a process
    /// restart, and what two handles racing to create the same sandbox agree on. Default: the id.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Use this client (and its connection pool) instead of building one. Exclusive with
    /// [`api_key`](Self::api_key), [`api_url`](Self::api_url) and [`target`](Self::target).
    pub fn client(mut self, client: DaytonaClient) -> Self {
        self.client = Some(client);
        self
    }

    /// The API key. Default: `DAYTONA_API_KEY` (or a JWT from the environment).
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The API base URL. Default: `DAYTONA_API_URL`, else `https://app.daytona.io/api`.
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// The region new sandboxes go to. Default: `DAYTONA_TARGET`, else the organization's.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Timeout of commands that set none. Default 300 s.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// The language of the sandbox's code runner (it does not affect shell commands). Default
    /// TypeScript.
    pub fn language(mut self, language: CodeLanguage) -> Self {
        self.language = language;
        self
    }

    /// Create from this snapshot (id or name). Takes precedence over [`image`](Self::image).
    pub fn snapshot(mut self, snapshot: impl Into<String>) -> Self {
        self.snapshot = Some(snapshot.into());
        self
    }

    /// Build from this Docker image when no snapshot is set.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// CPU cores, memory (GiB) and disk (GiB) for an [`image`](Self::image) build. Ignored, with
    /// a warning, without an image: a snapshot fixes its resources.
    pub fn resources(mut self, cpu: u32, memory_gb: u32, disk_gb: u32) -> Self {
        self.resources = Some(Resources {
            cpu: Some(cpu),
            memory: Some(memory_gb),
            disk: Some(disk_gb),
            gpu: None,
        });
        self
    }

    /// Every resource field, GPUs included, for an [`image`](Self::image) build.
    pub fn resources_exact(mut self, resources: Resources) -> Self {
        self.resources = Some(resources);
        self
    }

    /// An environment variable of every process in the sandbox (set when it is created).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// A label of the sandbox.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The OS user. Default: the image's (`daytona` on Daytona's images).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Whether port previews need no token.
    pub fn public(mut self, public: bool) -> Self {
        self.public = Some(public);
        self
    }

    /// Delete the sandbox as soon as it stops. Default false.
    pub fn ephemeral(mut self, ephemeral: bool) -> Self {
        self.ephemeral = ephemeral;
        self
    }

    /// Idle minutes before Daytona stops the sandbox; 0 disables. Default 15. While a command
    /// runs, the handle refreshes the sandbox's activity so it is not stopped mid-command.
    pub fn auto_stop_interval(mut self, minutes: u32) -> Self {
        self.auto_stop_interval = minutes;
        self
    }

    /// Stopped minutes before Daytona archives the sandbox. Default: Daytona's.
    pub fn auto_archive_interval(mut self, minutes: u32) -> Self {
        self.auto_archive_interval = Some(minutes);
        self
    }

    /// Stopped minutes before Daytona deletes the sandbox (negative disables, 0 deletes on
    /// stop). Default: disabled.
    pub fn auto_delete_interval(mut self, minutes: i32) -> Self {
        self.auto_delete_interval = Some(minutes);
        self
    }

    /// Mount a volume (id or name) at `mount_path`.
    pub fn volume(mut self, volume_id: impl Into<String>, mount_path: impl Into<String>) -> Self {
        self.volumes.push(SandboxVolume {
            volume_id: volume_id.into(),
            mount_path: mount_path.into(),
            subpath: None,
        });
        self
    }

    /// Block all outbound network traffic.
    pub fn network_block_all(mut self, block: bool) -> Self {
        self.network_block_all = Some(block);
        self
    }

    /// Allow outbound traffic only to these CIDRs.
    pub fn network_allow_list<I, S>(mut self, cidrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.network_allow_list = Some(cidrs.into_iter().map(Into::into).collect());
        self
    }

    /// How long creating, starting or reconnecting to the sandbox may take, transitional states
    /// waited out included. Default 120 s. `stop` and `destroy` wait at least the default, as a
    /// deletion may first have to wait for a slow create to settle.
    pub fn creation_timeout(mut self, timeout: Duration) -> Self {
        self.creation_timeout = timeout;
        self
    }

    /// The default working directory of commands (an absolute path that exists in the sandbox),
    /// also named in the instructions. Default: the sandbox's work dir as the toolbox reports
    /// it, named `/home/daytona` in the instructions.
    pub fn working_directory(mut self, dir: impl Into<String>) -> Self {
        self.working_directory = Some(dir.into());
        self
    }

    /// Carry every byte of command output, NUL bytes included. Default: off.
    ///
    /// Daytona labels a command's output line by line, and its labellers drop NUL bytes; all
    /// other bytes (invalid UTF-8, `\r`, a missing final newline) come back exactly either way.
    /// On, each command's stdout and stderr are base64-encoded inside the sandbox and decoded
    /// here: exact, still streamed, but it costs the sandbox about ten milliseconds of CPU
    /// and a dozen processes per command. Binary data is better moved with the file API.
    pub fn byte_exact_output(mut self, on: bool) -> Self {
        self.byte_exact_output = on;
        self
    }

    /// Keep one idle session ready for the next command once the handle has run one, so a
    /// command waits for two requests (exec, log follow) instead of three; the next spare is
    /// made while the command runs. Default: on.
    ///
    /// The spare is deleted with the handle, like every command session. Off, no session
    /// exists in the sandbox between commands, at the cost of a round trip per command.
    pub fn spare_session(mut self, on: bool) -> Self {
        self.spare_session = on;
        self
    }

    /// Run commands on a resident shell once the handle has run one: a long-lived session
    /// command whose log is followed over one WebSocket kept open, fed one command per input
    /// request, so a warm command costs one request on a pooled connection and opens no
    /// connection (a command in a session of its own also opens a WebSocket, a new connection
    /// each time). Default: on.
    ///
    /// Commands with stdin, commands that run while another one has the shell, and every
    /// command until the shell is ready take the per-command path. What a command leaves
    /// running in its process group is killed when it exits, as with a session of its own; a
    /// timeout or cancel kills the command's process group (SIGTERM, two seconds, SIGKILL)
    /// and the shell goes on. The shell's session is deleted with the handle.
    pub fn resident_shell(mut self, on: bool) -> Self {
        self.resident_shell = on;
        self
    }

    /// Replace the text [`get_instructions`](workspace_core::WorkspaceSandbox::get_instructions)
    /// returns.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    /// The real length of one minute of the API's intervals (auto-stop and friends): 60 s on
    /// Daytona. An emulator with a faster clock needs the same value here, so that activity
    /// refreshes and `timeout_at` follow its clock.
    pub fn interval_unit(mut self, minute: Duration) -> Self {
        self.interval_unit = minute;
        self
    }

    /// Every option checked, the id and name settled, and the client made: what
    /// [`build`](Self::build) makes the handle from.
    pub(crate) fn check(self) -> Result<(Options, DaytonaClient)> {
        if self.default_timeout.is_zero() || self.default_timeout > MAX_TIMEOUT {
            return Err(SandboxError::invalid(
                "default_timeout",
                format!(
                    "must be greater than zero and at most {MAX_TIMEOUT:?}, got {:?}",
                    self.default_timeout
                ),
            ));
        }
        if self.creation_timeout.is_zero() {
            return Err(SandboxError::invalid(
                "creation_timeout",
                "must be greater than zero",
            ));
        }
        if self.interval_unit.is_zero() {
            return Err(SandboxError::invalid(
                "interval_unit",
                "must be greater than zero",
            ));
        }
        for (field, value) in [("id", &self.id), ("name", &self.name)] {
            if let Some(v) = value
                && (v.trim().is_empty() || v.contains('\0') || v.contains('/'))
            {
                return Err(SandboxError::invalid(
                    field,
                    "must be non-empty, without `/` or NUL",
                ));
            }
        }
        for (k, v) in &self.env {
            validate_env_name(k)?;
            if v.contains('\0') {
                return Err(SandboxError::invalid(
                    format!("env.{k}"),
                    "value contains a NUL byte",
                ));
            }
        }
        if let Some(dir) = &self.working_directory
            && (!dir.starts_with('/') || dir.contains('\0'))
        {
            return Err(SandboxError::invalid(
                "working_directory",
                format!("must be an absolute path, got {dir:?}"),
            ));
        }
        if self.client.is_some()
            && (self.api_key.is_some() || self.api_url.is_some() || self.target.is_some())
        {
            return Err(SandboxError::invalid(
                "client",
                "give either a client or api_key/api_url/target, not both",
            ));
        }
        let client = match self.client.clone() {
            Some(c) => c,
            None => {
                let mut config = match &self.api_key {
                    // The key is given, the trust store still comes from the environment.
                    Some(key) => DaytonaConfig::with_api_key(key.clone()).extra_roots_from_env()?,
                    None => DaytonaConfig::from_env()?,
                };
                if let Some(url) = &self.api_url {
                    config = config.api_url(url)?;
                }
                if let Some(target) = &self.target {
                    config = config.target(target.clone());
                }
                DaytonaClient::new(config)?
            }
        };
        let id = self.id.clone().unwrap_or_else(random_id);
        let name = self.name.clone().unwrap_or_else(|| id.clone());
        let options = Options {
            id,
            name,
            builder: self,
        };
        // Catch contradictions (ephemeral with an auto-delete interval, malformed CIDRs, …) now
        // rather than at the first command.
        options
            .create_params()
            .to_wire(client.config().target_name())?;
        Ok((options, client))
    }
}

/// The checked options, with the id and name settled.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) builder: DaytonaSandboxBuilder,
}

impl Options {
    /// What to create, following the creation modes: a snapshot wins; else an image with its
    /// resources; else Daytona's default snapshot. Resources without an image are dropped.
    pub(crate) fn create_params(&self) -> CreateSandboxParams {
        let b = &self.builder;
        let mut p = CreateSandboxParams::new()
            .name(self.name.clone())
            .language(b.language)
            .auto_stop_interval(b.auto_stop_interval)
            .ephemeral(b.ephemeral)
            .label(ID_LABEL, self.id.clone());
        p.labels.extend(b.labels.clone());
        p.env_vars = b.env.clone();
        p.user = b.user.clone();
        p.public = b.public;
        p.auto_archive_interval = b.auto_archive_interval;
        p.auto_delete_interval = b.auto_delete_interval;
        p.volumes = b.volumes.clone();
        p.network_block_all = b.network_block_all;
        p.network_allow_list = b.network_allow_list.clone();
        match (&b.snapshot, &b.image) {
            (Some(snapshot), image) => {
                p.snapshot = Some(snapshot.clone());
                if image.is_some() {
                    tracing::debug!(
                        "both a snapshot and an image are set: creating from the snapshot"
                    );
                }
                if b.resources.is_some() {
                    tracing::warn!(
                        "resources are only applied to image builds; a snapshot fixes its own, \
                         so they are ignored"
                    );
                }
            }
            (None, Some(image)) => {
                p.image = Some(image.clone());
                p.resources = b.resources;
            }
            (None, None) => {
                if b.resources.is_some() {
                    tracing::warn!(
                        "resources are only applied when an image is set; they are ignored"
                    );
                }
            }
        }
        p
    }

    /// Whether the caller gave the id (it is then also a lookup key of its own).
    pub(crate) fn explicit_id(&self) -> bool {
        self.builder.id.is_some()
    }

    /// Whether id and name were made up here: no sandbox can have them before this handle's
    /// first start creates one, so that start has nothing to look up.
    pub(crate) fn generated_name(&self) -> bool {
        self.builder.id.is_none() && self.builder.name.is_none()
    }

    /// The keys `start` looks an existing sandbox up by, in order, without repeats.
    pub(crate) fn lookup_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        if self.explicit_id() {
            keys.push(self.id.clone());
        }
        if !keys.contains(&self.name) {
            keys.push(self.name.clone());
        }
        keys
    }
}

/// `daytona-sandbox-` and 12 hex digits from the standard library's randomly seeded hasher.
fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("daytona-sandbox-{:012x}", h.finish() & 0xffff_ffff_ffff)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn options(b: DaytonaSandboxBuilder) -> Options {
        Options {
            id: "sb-1".into(),
            name: "sb-1".into(),
            builder: b,
        }
    }

    #[test]
    fn creation_modes() {
        let p = options(DaytonaSandboxBuilder::default().snapshot("s").image("i")).create_params();
        assert_eq!(
            (p.snapshot.as_deref(), p.image.as_deref()),
            (Some("s"), None)
        );
        let p = options(
            DaytonaSandboxBuilder::default()
                .image("i")
                .resources(2, 4, 6),
        )
        .create_params();
        assert_eq!(p.image.as_deref(), Some("i"));
        assert_eq!(p.resources.and_then(|r| r.memory), Some(4));
        let p = options(DaytonaSandboxBuilder::default().resources(2, 4, 6)).create_params();
        assert!(p.snapshot.is_none() && p.image.is_none() && p.resources.is_none());
        assert_eq!(p.labels.get(ID_LABEL).map(String::as_str), Some("sb-1"));
        assert_eq!(p.auto_stop_interval, Some(DEFAULT_AUTO_STOP_MINUTES));
    }

    #[test]
    fn bad_options_are_named() {
        let key = || DaytonaSandboxBuilder::default().api_key("k");
        let cases = [
            (key().default_timeout(Duration::ZERO), "default_timeout"),
            (key().creation_timeout(Duration::ZERO), "creation_timeout"),
            (key().env("1X", "v"), "env"),
            (key().env("X", "a\0b"), "env.X"),
            (key().id(" "), "id"),
            (key().name("a/b"), "name"),
            (key().working_directory("rel"), "working_directory"),
            (
                key().ephemeral(true).auto_delete_interval(5),
                "auto_delete_interval",
            ),
            (
                key().network_allow_list(["1.2.3.4/32,5.6.7.8/32"]),
                "network_allow_list",
            ),
            (
                DaytonaSandboxBuilder::default()
                    .client(DaytonaClient::new(DaytonaConfig::with_api_key("k")).unwrap())
                    .api_key("k"),
                "client",
            ),
        ];
        for (builder, field) in cases {
            match builder.build() {
                Err(SandboxError::InvalidArgument { field: f, .. }) => {
                    assert!(f.contains(field), "{field}: got {f}")
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn ids_and_lookup_keys() {
        let a = random_id();
        assert!(a.starts_with("daytona-sandbox-") && a.len() == 28, "{a}");
        assert_ne!(a, random_id());
        let mut o = options(DaytonaSandboxBuilder::default());
        assert_eq!(o.lookup_keys(), ["sb-1"]);
        o.builder.id = Some("sb-1".into());
        o.name = "named".into();
        assert_eq!(o.lookup_keys(), ["sb-1", "named"]);
    }
}
