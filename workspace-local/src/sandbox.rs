//! [`LocalSandbox`]: a [`WorkspaceSandbox`] that runs commands directly on this machine.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use workspace_core::command::MAX_TIMEOUT;
use workspace_core::lifecycle::Lifecycle;
use workspace_core::process::DEFAULT_PROCESS_OUTPUT_RETENTION;
use workspace_core::{
    Capabilities, CommandResult, DirEntry, ExecuteCommandOptions, FileStat, GlobRequest,
    GlobResult, GrepRequest, GrepResult, PortUrl, ProcessManager, Result, SandboxError,
    SandboxFilesystem, SandboxInfo, SandboxStatus, StartOutcome, WorkspaceSandbox,
    build_command_line, validate_env_name,
};

use crate::files::LocalFilesystem;
use crate::group::ProcessGroup;
use crate::host::{base_env, current_user, host_resources};
use crate::isolation::{
    Confinement, Isolation, IsolationTier, Tools, host_homes, probe_tools, warn_unavailable_once,
};
use crate::namespace::Holder;
use crate::process_manager::{LocalProcessManager, ProcessTable};
use crate::runner::{
    self, DEFAULT_DRAIN_TIMEOUT, DEFAULT_KILL_GRACE, Leftovers, ProcessSpec, RunOptions,
};

/// The provider name reported by [`WorkspaceSandbox::provider`].
pub const PROVIDER: &str = "local";
/// Default command timeout: 300 s, as for every provider of the family.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default shell: commands run as `<shell> -c <command line>`.
pub const DEFAULT_SHELL: &str = "/bin/sh";
/// Extra time `stop`/`destroy` wait for in-flight commands beyond their kill grace and drain.
const SETTLE: Duration = Duration::from_secs(1);

/// Builds a [`LocalSandbox`].
///
/// ```
/// # use std::time::Duration;
/// use workspace_local::{Isolation, LocalSandbox};
/// let sandbox = LocalSandbox::builder()
///     .name("scratch")
///     .env("GREETING", "hello")
///     .default_timeout(Duration::from_secs(60))
///     .isolation(Isolation::Auto) // the default: bubblewrap where it works, else none
///     .network(false)             // the default under isolation
///     .build()
///     .unwrap();
/// assert!(sandbox.root().is_dir());
/// println!("isolation: {}", sandbox.isolation_tier());
/// ```
#[derive(Clone)]
pub struct LocalSandboxBuilder {
    root: Option<PathBuf>,
    inherit_env: bool,
    env: BTreeMap<String, String>,
    default_timeout: Duration,
    shell: PathBuf,
    id: Option<String>,
    name: Option<String>,
    kill_grace: Duration,
    drain_timeout: Duration,
    process_output_retention: usize,
    isolation: Isolation,
    network: bool,
    writable_paths: Vec<PathBuf>,
    readable_paths: Vec<PathBuf>,
    bwrap_path: Option<PathBuf>,
    host_home: Option<PathBuf>,
}

impl fmt::Debug for LocalSandboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSandboxBuilder")
            .field("root", &self.root)
            .field("inherit_env", &self.inherit_env)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("default_timeout", &self.default_timeout)
            .field("shell", &self.shell)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kill_grace", &self.kill_grace)
            .field("drain_timeout", &self.drain_timeout)
            .field("process_output_retention", &self.process_output_retention)
            .field("isolation", &self.isolation)
            .field("network", &self.network)
            .field("writable_paths", &self.writable_paths)
            .field("readable_paths", &self.readable_paths)
            .field("bwrap_path", &self.bwrap_path)
            .field("host_home", &self.host_home)
            .finish()
    }
}

impl Default for LocalSandboxBuilder {
    fn default() -> Self {
        LocalSandboxBuilder {
            root: None,
            inherit_env: false,
            env: BTreeMap::new(),
            default_timeout: DEFAULT_TIMEOUT,
            shell: PathBuf::from(DEFAULT_SHELL),
            id: None,
            name: None,
            kill_grace: DEFAULT_KILL_GRACE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            process_output_retention: DEFAULT_PROCESS_OUTPUT_RETENTION,
            isolation: Isolation::default(),
            network: false,
            writable_paths: Vec::new(),
            readable_paths: Vec::new(),
            bwrap_path: None,
            host_home: None,
        }
    }
}

/// Environment variables [`LocalSandboxBuilder::from_env`] reads.
pub const ENV_ISOLATION: &str = "WORKSPACE_LOCAL_ISOLATION";
/// See [`ENV_ISOLATION`].
pub const ENV_NETWORK: &str = "WORKSPACE_LOCAL_NETWORK";
/// See [`ENV_ISOLATION`].
pub const ENV_BWRAP: &str = "WORKSPACE_LOCAL_BWRAP";

impl LocalSandboxBuilder {
    /// The defaults, then what the environment sets: `WORKSPACE_LOCAL_ISOLATION` (`none`,
    /// `auto` or `required`), `WORKSPACE_LOCAL_NETWORK` (`true`/`false`, `1`/`0`) and
    /// `WORKSPACE_LOCAL_BWRAP` (the bubblewrap program). A value that does not parse is
    /// [`SandboxError::InvalidArgument`] naming the variable.
    ///
    /// ```
    /// use workspace_local::LocalSandboxBuilder;
    /// let sandbox = LocalSandboxBuilder::from_env().unwrap().build().unwrap();
    /// # drop(sandbox);
    /// ```
    pub fn from_env() -> Result<Self> {
        Self::default().with_env(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// [`LocalSandboxBuilder::from_env`] over given variables.
    fn with_env(mut self, vars: impl Iterator<Item = (String, String)>) -> Result<Self> {
        for (key, value) in vars {
            match key.as_str() {
                ENV_ISOLATION => {
                    self.isolation = Isolation::parse(&value).map_err(|_| {
                        SandboxError::invalid(
                            ENV_ISOLATION,
                            format!("expected none, auto or required, got {value:?}"),
                        )
                    })?;
                }
                ENV_NETWORK => {
                    self.network = match value.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => {
                            return Err(SandboxError::invalid(
                                ENV_NETWORK,
                                format!("expected true or false, got {value:?}"),
                            ));
                        }
                    };
                }
                ENV_BWRAP if !value.is_empty() => self.bwrap_path = Some(value.into()),
                _ => {}
            }
        }
        Ok(self)
    }

    /// Use this existing directory as the root (working directory and file API root). It is never
    /// deleted by the sandbox. Default: a fresh temporary directory, removed on `destroy`.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Start commands from this process's whole environment instead of a minimal one. Off by
    /// default, so host secrets do not reach commands.
    pub fn inherit_env(mut self, inherit: bool) -> Self {
        self.inherit_env = inherit;
        self
    }

    /// Set a variable for every command (per-command variables override it).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Timeout of commands that do not set their own. Default 300 s.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// The POSIX shell commands run under, as `<shell> -c <line>`. Default `/bin/sh`.
    pub fn shell(mut self, shell: impl Into<PathBuf>) -> Self {
        self.shell = shell.into();
        self
    }

    /// The sandbox id. Default: `local-<random hex>`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The human name. Default `LocalSandbox`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Time between SIGTERM and SIGKILL when a command or process is stopped. Default 500 ms.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// How long to keep reading a command's output after it exited, for descendants that hold
    /// its pipes. Default 2 s.
    pub fn drain_timeout(mut self, drain: Duration) -> Self {
        self.drain_timeout = drain;
        self
    }

    /// Bytes of each stream a background process retains (the newest). Default 8 MiB.
    pub fn process_output_retention(mut self, bytes: usize) -> Self {
        self.process_output_retention = bytes;
        self
    }

    /// How strictly commands are isolated from the host. Default [`Isolation::Auto`]: the
    /// strongest tier this host supports (bubblewrap on Linux), else none with a one-time
    /// warning. [`Isolation::Required`] makes `build` fail with
    /// [`SandboxError::IsolationUnavailable`] instead; [`Isolation::None`] runs commands
    /// directly on the host. See [`crate::isolation`] for what the bubblewrap tier blocks.
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Let isolated commands use the host's network. Off by default: an isolated sandbox has
    /// only its own loopback. Without isolation the network is always the host's.
    pub fn network(mut self, allow: bool) -> Self {
        self.network = allow;
        self
    }

    /// Another existing directory isolated commands may write (at its host path), beside the
    /// root. Without isolation every path the user may write is writable anyway.
    pub fn writable_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.writable_paths.push(path.into());
        self
    }

    /// An existing directory or file isolated commands may read although it lies where the
    /// sandbox hides things (e.g. `~/.cargo` under the hidden home directory).
    pub fn readable_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.readable_paths.push(path.into());
        self
    }

    /// The bubblewrap program: a path, or a name looked up on `PATH`. Default `bwrap`.
    pub fn bwrap_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.bwrap_path = Some(path.into());
        self
    }

    /// The host home directory isolated commands must not see, instead of `$HOME` and the
    /// user's passwd entry (`/root` and `/home` are hidden either way).
    pub fn host_home(mut self, path: impl Into<PathBuf>) -> Self {
        self.host_home = Some(path.into());
        self
    }

    /// Check the configuration and create the sandbox (and its temporary root, if it owns one).
    /// With isolation, also probe (once per process) that it works here. Nothing runs until
    /// the first command or `start`.
    pub fn build(self) -> Result<LocalSandbox> {
        if self.default_timeout.is_zero() || self.default_timeout > MAX_TIMEOUT {
            return Err(SandboxError::invalid(
                "default_timeout",
                format!(
                    "must be greater than zero and at most {MAX_TIMEOUT:?}, got {:?}",
                    self.default_timeout
                ),
            ));
        }
        if self.process_output_retention == 0 {
            return Err(SandboxError::invalid(
                "process_output_retention",
                "must be at least 1 byte",
            ));
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
        if let Some(id) = &self.id
            && (id.trim().is_empty() || id.contains('\0'))
        {
            return Err(SandboxError::invalid(
                "id",
                "must be non-empty and free of NUL bytes",
            ));
        }
        check_shell(&self.shell)?;
        let writable = canonical_dirs("writable_paths", &self.writable_paths, true)?;
        let readable = canonical_dirs("readable_paths", &self.readable_paths, false)?;
        let tools = match self.isolation {
            Isolation::None => Err(None),
            Isolation::Auto | Isolation::Required => {
                probe_tools(self.bwrap_path.as_deref()).map_err(Some)
            }
        };
        let tools = match (tools, self.isolation) {
            (Ok(tools), _) => Some(tools),
            (Err(Some(reason)), Isolation::Required) => {
                return Err(SandboxError::IsolationUnavailable { reason });
            }
            (Err(Some(reason)), _) => {
                warn_unavailable_once(&reason);
                return self.finish(None, Some(reason), writable, readable);
            }
            (Err(None), _) => None,
        };
        self.finish(tools, None, writable, readable)
    }

    fn finish(
        self,
        tools: Option<Tools>,
        unavailable: Option<String>,
        writable: Vec<PathBuf>,
        readable: Vec<PathBuf>,
    ) -> Result<LocalSandbox> {
        let (fs, owned_root) = match &self.root {
            Some(root) => (LocalFilesystem::new(root)?, None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("workspace-local-")
                    .tempdir()
                    .map_err(|e| SandboxError::io("creating a temporary sandbox root", e))?;
                let path = dir.keep();
                match LocalFilesystem::new(&path) {
                    Ok(fs) => (fs, Some(path)),
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&path);
                        return Err(e);
                    }
                }
            }
        };

        let user = current_user();
        let jail = tools.map(|tools| Jail {
            tools,
            conf: Confinement {
                root: fs.canonical_root().to_path_buf(),
                writable,
                readable,
                homes: match &self.host_home {
                    Some(home) => vec![home.clone()],
                    None => host_homes(),
                },
                network: self.network,
            },
        });
        let mut base_env = base_env(self.inherit_env, fs.root(), &user, &self.shell, &self.env);
        if jail.is_some() {
            // The host's temporary directory may be hidden or read-only inside; /tmp is the
            // sandbox's own. Configured variables still win.
            if !self.env.contains_key("TMPDIR") {
                base_env.insert("TMPDIR".into(), "/tmp".into());
            }
            if !self.inherit_env && !self.env.contains_key("HOME") {
                base_env.insert("HOME".into(), fs.canonical_root().into());
            }
        }
        let id = self.id.unwrap_or_else(random_id);
        let name = self.name.unwrap_or_else(|| "LocalSandbox".to_string());
        let shared = Arc::new(Shared {
            lifecycle: Lifecycle::new(id.clone()),
            id,
            name,
            user,
            shell: self.shell,
            inherit_env: self.inherit_env,
            default_timeout: self.default_timeout,
            kill_grace: self.kill_grace,
            drain_timeout: self.drain_timeout,
            process_output_retention: self.process_output_retention,
            base_env,
            fs,
            owns_root: owned_root.is_some(),
            owned_root: Mutex::new(owned_root),
            first_start_done: AtomicBool::new(false),
            created_at: Utc::now(),
            last_used_at: Mutex::new(None),
            stop_token: Mutex::new(CancellationToken::new()),
            in_flight: watch::Sender::new(0),
            leftovers: Mutex::new(Vec::new()),
            processes: ProcessTable::default(),
            jail,
            isolation_unavailable: unavailable,
            holder: tokio::sync::Mutex::new(None),
        });
        Ok(LocalSandbox {
            files: SandboxFiles {
                shared: shared.clone(),
            },
            processes: LocalProcessManager::new(shared.clone()),
            shared,
        })
    }
}

/// State shared by the sandbox, its file API and its process manager.
pub(crate) struct Shared {
    pub(crate) id: String,
    name: String,
    user: String,
    pub(crate) shell: PathBuf,
    inherit_env: bool,
    default_timeout: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) process_output_retention: usize,
    /// The environment every command starts from (before per-command variables).
    base_env: BTreeMap<OsString, OsString>,
    pub(crate) fs: LocalFilesystem,
    owns_root: bool,
    /// The temporary root this sandbox created, until `destroy` removes it.
    owned_root: Mutex<Option<PathBuf>>,
    first_start_done: AtomicBool,
    created_at: DateTime<Utc>,
    last_used_at: Mutex<Option<DateTime<Utc>>>,
    /// Cancelled by `stop`/`destroy` to kill in-flight commands; replaced by the next start.
    stop_token: Mutex<CancellationToken>,
    /// Number of commands running, so `stop` can wait for them to be gone.
    in_flight: watch::Sender<usize>,
    /// Groups left running by commands that exited (`server &`), killed on stop/destroy.
    leftovers: Mutex<Vec<Arc<ProcessGroup>>>,
    pub(crate) processes: ProcessTable,
    pub(crate) lifecycle: Lifecycle,
    /// How commands are confined, when they are.
    jail: Option<Jail>,
    /// Why `Isolation::Auto` fell back to none.
    isolation_unavailable: Option<String>,
    /// The namespaces of the current start (isolated sandboxes only).
    holder: tokio::sync::Mutex<Option<Arc<Holder>>>,
}

/// The bubblewrap tier of one sandbox: the programs and the mount set.
struct Jail {
    tools: Tools,
    conf: Confinement,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Start lazily before an operation; `NotReady` once destroyed.
    pub(crate) async fn ensure_running(&self) -> Result<()> {
        self.lifecycle.ensure_running(|| self.start_work()).await
    }

    async fn start_work(&self) -> Result<StartOutcome> {
        let root = self.fs.canonical_root().to_path_buf();
        let is_dir = tokio::fs::metadata(&root)
            .await
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if !is_dir {
            return Err(SandboxError::not_found(format!(
                "root directory {} of sandbox {}",
                self.fs.root().display(),
                self.id
            )));
        }
        {
            let mut token = lock(&self.stop_token);
            if token.is_cancelled() {
                *token = CancellationToken::new();
            }
        }
        // The namespaces exist from the start on, so an isolation failure surfaces here.
        self.holder().await?;
        let first = !self.first_start_done.swap(true, Ordering::AcqRel);
        Ok(if first && self.owns_root {
            StartOutcome::Created
        } else {
            StartOutcome::Connected
        })
    }

    /// Kill in-flight commands, background processes and leftover groups, and wait (bounded)
    /// for in-flight commands to finish.
    async fn kill_everything(&self) {
        lock(&self.stop_token).cancel();
        self.processes.kill_all().await;
        for group in lock(&self.leftovers).drain(..) {
            group.kill();
        }
        let mut in_flight = self.in_flight.subscribe();
        let bound = self.kill_grace + self.drain_timeout + SETTLE;
        if tokio::time::timeout(bound, in_flight.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(sandbox = %self.id, "commands still running after stop");
        }
        // Whatever is still in the namespaces (daemons that left their group) dies with them.
        let holder = self.holder.lock().await.take();
        if let Some(holder) = holder {
            holder.kill().await;
        }
    }

    /// The namespaces commands enter: `None` without isolation; started (again) when missing.
    async fn holder(&self) -> Result<Option<Arc<Holder>>> {
        let Some(jail) = &self.jail else {
            return Ok(None);
        };
        let mut slot = self.holder.lock().await;
        if let Some(h) = slot.as_ref().filter(|h| h.is_alive()) {
            return Ok(Some(h.clone()));
        }
        let (tools, conf) = (jail.tools.clone(), jail.conf.clone());
        let holder = tokio::task::spawn_blocking(move || Holder::spawn(&tools, &conf))
            .await
            .map_err(|e| SandboxError::IsolationUnavailable {
                reason: format!("starting the sandbox namespaces: {e}"),
            })?
            .map_err(|reason| SandboxError::IsolationUnavailable { reason })?;
        let holder = Arc::new(holder);
        *slot = Some(holder.clone());
        Ok(Some(holder))
    }

    /// How to run `line` in `cwd` with the base environment plus `extra`: `<shell> -c <line>` on
    /// the host, or entered into the sandbox's namespaces.
    pub(crate) async fn process_spec(
        &self,
        line: String,
        cwd: PathBuf,
        extra: &BTreeMap<String, String>,
    ) -> Result<ProcessSpec> {
        let env = self.command_env(extra);
        Ok(match (self.holder().await?, &self.jail) {
            (Some(holder), Some(jail)) => {
                holder.enter(&jail.tools.nsenter, &self.shell, &line, &cwd, env)
            }
            _ => ProcessSpec {
                program: self.shell.clone().into_os_string(),
                args: vec!["-c".into(), line.into()],
                cwd,
                env,
                new_session: false,
            },
        })
    }

    /// The tier commands run under.
    pub(crate) fn tier(&self) -> IsolationTier {
        if self.jail.is_some() {
            IsolationTier::Bubblewrap
        } else {
            IsolationTier::None
        }
    }

    /// The working directory for a command or process: the root, or an existing directory.
    pub(crate) async fn resolve_cwd(&self, cwd: Option<&str>) -> Result<PathBuf> {
        let Some(cwd) = cwd else {
            return Ok(self.fs.root().to_path_buf());
        };
        match tokio::fs::metadata(cwd).await {
            Ok(m) if m.is_dir() => Ok(PathBuf::from(cwd)),
            Ok(_) => Err(SandboxError::invalid(
                "cwd",
                format!("{cwd} is not a directory"),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SandboxError::not_found(
                format!("cwd {cwd} (the working directory does not exist)"),
            )),
            Err(e) => Err(SandboxError::io(format!("checking cwd {cwd}"), e)),
        }
    }

    /// The environment for one command: the base, then its own variables.
    fn command_env(&self, extra: &BTreeMap<String, String>) -> Vec<(OsString, OsString)> {
        let mut env = self.base_env.clone();
        for (k, v) in extra {
            env.insert(k.into(), v.into());
        }
        env.into_iter().collect()
    }

    fn touch(&self) {
        *lock(&self.last_used_at) = Some(Utc::now());
    }

    fn remember_leftover(&self, group: Arc<ProcessGroup>) {
        let mut leftovers = lock(&self.leftovers);
        leftovers.retain(|g| g.is_alive());
        leftovers.push(group);
    }

    async fn remove_owned_root(&self) -> Result<()> {
        let Some(path) = lock(&self.owned_root).clone() else {
            return Ok(());
        };
        let p = path.clone();
        let res = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match res {
            Ok(()) => {
                *lock(&self.owned_root) = None;
                Ok(())
            }
            Err(e) => Err(SandboxError::io(
                format!("removing sandbox root {}", path.display()),
                e,
            )),
        }
    }

    async fn run_command(
        &self,
        command: &str,
        args: &[String],
        options: ExecuteCommandOptions,
    ) -> Result<CommandResult> {
        options.validate()?;
        let line = build_command_line(command, args)?;
        self.ensure_running().await?;
        let cwd = self.resolve_cwd(options.cwd.as_deref()).await?;
        let spec = self.process_spec(line, cwd, &options.env).await?;
        let stop = lock(&self.stop_token).child_token();
        let run_opts = RunOptions {
            timeout: options.timeout.resolve(self.default_timeout),
            cancel: Some(stop.clone()),
            on_stdout: options.on_stdout.clone(),
            on_stderr: options.on_stderr.clone(),
            stdin: options.stdin.clone(),
            output_limit: options.effective_output_limit(),
            kill_grace: self.kill_grace,
            drain_timeout: self.drain_timeout,
            leftovers: Leftovers::Leave,
        };

        let _in_flight = InFlight::enter(&self.in_flight);
        self.touch();
        let run = runner::run_tracked(spec, run_opts);
        let outcome = match &options.cancel {
            Some(user) => {
                tokio::pin!(run);
                tokio::select! {
                    biased;
                    r = &mut run => r,
                    _ = user.cancelled() => {
                        stop.cancel();
                        run.await
                    }
                }
            }
            None => run.await,
        }?;
        if let Some(group) = outcome.leftover {
            self.remember_leftover(group);
        }
        self.touch();
        Ok(outcome.result)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for group in lock(&self.leftovers).drain(..) {
            group.kill();
        }
        if let Some(path) = lock(&self.owned_root).take()
            && let Err(e) = std::fs::remove_dir_all(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove sandbox root");
        }
    }
}

/// Counts a running command for as long as it lives.
struct InFlight<'a>(&'a watch::Sender<usize>);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a watch::Sender<usize>) -> Self {
        counter.send_modify(|n| *n += 1);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A sandbox on this machine: commands run as `<shell> -c <line>`, each in its own process group
/// (and session, when isolated); files are confined to a root directory.
///
/// By default ([`Isolation::Auto`]) commands run isolated by bubblewrap where the host allows
/// it: the host read-only but for the root, homes and `/tmp` hidden, no network, no host
/// process visible (see [`crate::isolation`]). Where it does not, or with [`Isolation::None`],
/// a command can do anything the user running this process can do. Either way the sandbox
/// guarantees a minimal environment by default (host secrets are not passed on), timeouts and
/// cancels that kill the whole process tree, capped output, and a file API that refuses paths
/// outside the root.
///
/// Lifecycle: commands start the sandbox lazily. `stop` kills every command, background process
/// and leftover daemon but keeps the files; `destroy` does the same and removes the root if the
/// sandbox created it (a root you passed in is never deleted). Dropping the sandbox without
/// `destroy` kills its processes and removes an owned root as well.
///
/// Behaviour worth knowing:
/// - `cwd` may be any existing directory on the host (isolated commands see it only if the
///   sandbox does not hide it); a missing one is [`SandboxError::NotFound`] naming `cwd`, a file
///   is `InvalidArgument` (`cwd`).
/// - Isolated, a daemon a command leaves behind keeps running until `stop`/`destroy`/drop kills
///   the sandbox's namespaces, even one that left its process group with `setsid`.
/// - A command that exits normally may leave daemons behind (`server > log 2>&1 &`): they keep
///   running, as they would in a terminal, and are killed by `stop`, `destroy` or drop. A
///   background child that keeps the command's pipes open delays the result by at most the
///   drain timeout (2 s by default).
/// - The environment is minimal unless [`LocalSandboxBuilder::inherit_env`] is set; see
///   [`crate::host::base_env`] for what it holds. `TMPDIR` is the host's temporary directory.
/// - After `destroy`, every operation, `get_info` included, fails with
///   [`SandboxError::NotReady`].
pub struct LocalSandbox {
    shared: Arc<Shared>,
    files: SandboxFiles,
    processes: LocalProcessManager,
}

impl fmt::Debug for LocalSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSandbox")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("root", &self.shared.fs.root())
            .field("status", &self.shared.lifecycle.status())
            .finish_non_exhaustive()
    }
}

impl LocalSandbox {
    /// A builder with the defaults: temporary root, minimal environment, 300 s timeout, `/bin/sh`.
    pub fn builder() -> LocalSandboxBuilder {
        LocalSandboxBuilder::default()
    }

    /// The root directory: the default working directory and the root of the file API.
    pub fn root(&self) -> &Path {
        self.shared.fs.root()
    }

    /// The file API with its concrete type.
    pub fn local_filesystem(&self) -> &LocalFilesystem {
        &self.shared.fs
    }

    /// The process manager with its concrete type.
    pub fn process_manager(&self) -> &LocalProcessManager {
        &self.processes
    }

    /// The isolation commands run under (what [`Isolation::Auto`] resolved to).
    pub fn isolation_tier(&self) -> IsolationTier {
        self.shared.tier()
    }

    /// Why isolation is off although [`Isolation::Auto`] asked for it, when it is.
    pub fn isolation_unavailable_reason(&self) -> Option<&str> {
        self.shared.isolation_unavailable.as_deref()
    }
}

#[async_trait]
impl WorkspaceSandbox for LocalSandbox {
    fn id(&self) -> &str {
        &self.shared.id
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    fn provider(&self) -> &str {
        PROVIDER
    }

    fn status(&self) -> SandboxStatus {
        self.shared.lifecycle.status()
    }

    async fn start(&self) -> Result<StartOutcome> {
        let shared = &self.shared;
        shared.lifecycle.start(|| shared.start_work()).await
    }

    async fn stop(&self) -> Result<()> {
        let shared = &self.shared;
        shared
            .lifecycle
            .stop(|| async {
                shared.kill_everything().await;
                Ok(())
            })
            .await
    }

    async fn destroy(&self) -> Result<()> {
        let shared = &self.shared;
        shared
            .lifecycle
            .destroy(|| async {
                shared.kill_everything().await;
                shared.processes.clear();
                shared.remove_owned_root().await
            })
            .await
    }

    async fn execute_command(
        &self,
        command: &str,
        args: &[String],
        options: ExecuteCommandOptions,
    ) -> Result<CommandResult> {
        self.shared.run_command(command, args, options).await
    }

    async fn get_info(&self) -> Result<SandboxInfo> {
        let shared = &self.shared;
        shared.lifecycle.check_usable()?;
        let mut info = SandboxInfo::new(
            shared.id.clone(),
            shared.name.clone(),
            PROVIDER,
            shared.lifecycle.status(),
            shared.created_at,
        );
        info.last_used_at = *lock(&shared.last_used_at);
        let root = shared.fs.canonical_root().to_path_buf();
        info.resources = Some(
            tokio::task::spawn_blocking(move || host_resources(&root))
                .await
                .unwrap_or_default(),
        );
        let meta = &mut info.metadata;
        meta.insert(
            "root".into(),
            shared.fs.root().to_string_lossy().into_owned().into(),
        );
        meta.insert(
            "shell".into(),
            shared.shell.to_string_lossy().into_owned().into(),
        );
        meta.insert("inherit_env".into(), shared.inherit_env.into());
        meta.insert("owns_root".into(), shared.owns_root.into());
        meta.insert("user".into(), shared.user.clone().into());
        meta.insert(
            "default_timeout_ms".into(),
            (shared.default_timeout.as_millis() as u64).into(),
        );
        let tier = shared.tier();
        meta.insert("isolated".into(), (tier != IsolationTier::None).into());
        meta.insert("isolation".into(), tier.as_str().into());
        let network = shared.jail.as_ref().is_none_or(|j| j.conf.network);
        meta.insert("network".into(), network.into());
        if let Some(jail) = &shared.jail {
            let writable: Vec<serde_json::Value> = std::iter::once(&jail.conf.root)
                .chain(&jail.conf.writable)
                .map(|p| p.to_string_lossy().into_owned().into())
                .collect();
            meta.insert("writable_paths".into(), writable.into());
        }
        if let Some(reason) = &shared.isolation_unavailable {
            meta.insert("isolation_unavailable".into(), reason.clone().into());
        }
        Ok(info)
    }

    fn get_instructions(&self) -> String {
        let s = &self.shared;
        let common = format!(
            "Commands run under {} -c. Working directory: {}. Command timeout: {}.",
            s.shell.display(),
            s.fs.root().display(),
            format_duration(s.default_timeout),
        );
        match &s.jail {
            Some(jail) => format!(
                "Local sandbox on the host machine. {} {common}",
                jail.conf.describe()
            ),
            None => format!(
                "Local sandbox on the host machine, with no isolation: commands run as user {} \
                 directly on this computer, with its network. {common}",
                s.user
            ),
        }
    }

    fn filesystem(&self) -> Option<&dyn SandboxFilesystem> {
        Some(&self.files)
    }

    fn processes(&self) -> Option<&dyn ProcessManager> {
        Some(&self.processes)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.filesystem = true;
        caps.processes = true;
        caps.isolated = self.shared.tier() != IsolationTier::None;
        caps.ports = self.shared.jail.as_ref().is_none_or(|j| j.conf.network);
        caps
    }

    /// `http://127.0.0.1:PORT`, where the sandbox shares the host's network (no isolation, or
    /// isolation with `.network(true)`); an isolated sandbox without network has only its own
    /// loopback, which the host cannot reach.
    async fn port_url(&self, port: u16) -> Result<PortUrl> {
        if port == 0 {
            return Err(SandboxError::invalid("port", "must be from 1 to 65535"));
        }
        self.shared.lifecycle.check_usable()?;
        if self.shared.jail.as_ref().is_some_and(|j| !j.conf.network) {
            return Err(SandboxError::PermissionDenied {
                message: format!(
                    "port {port}: this sandbox is isolated without network, so its ports are \
                     reachable only from inside it (build it with `.network(true)` to reach them \
                     from the host)"
                ),
            });
        }
        Ok(PortUrl::new(port, format!("http://127.0.0.1:{port}")))
    }
}

/// The sandbox's file API: the confined filesystem behind the lifecycle (lazy start, `NotReady`
/// once destroyed).
struct SandboxFiles {
    shared: Arc<Shared>,
}

#[async_trait]
impl SandboxFilesystem for SandboxFiles {
    async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        self.shared.ensure_running().await?;
        self.shared.fs.read_file(path).await
    }

    async fn write_file(&self, path: &str, data: &[u8]) -> Result<()> {
        self.shared.ensure_running().await?;
        self.shared.fs.write_file(path, data).await
    }

    async fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.shared.ensure_running().await?;
        self.shared.fs.list_dir(path).await
    }

    async fn stat(&self, path: &str) -> Result<FileStat> {
        self.shared.ensure_running().await?;
        self.shared.fs.stat(path).await
    }

    async fn create_dir(&self, path: &str) -> Result<()> {
        self.shared.ensure_running().await?;
        self.shared.fs.create_dir(path).await
    }

    async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        self.shared.ensure_running().await?;
        self.shared.fs.remove(path, recursive).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.shared.ensure_running().await?;
        self.shared.fs.rename(from, to).await
    }

    async fn grep(&self, request: &GrepRequest) -> Result<GrepResult> {
        self.shared.ensure_running().await?;
        self.shared.fs.grep(request).await
    }

    async fn glob(&self, request: &GlobRequest) -> Result<GlobResult> {
        self.shared.ensure_running().await?;
        self.shared.fs.glob(request).await
    }
}

/// Each path canonical, absolute and existing (a directory when `dirs_only`); the error names
/// `field[i]`.
fn canonical_dirs(field: &str, paths: &[PathBuf], dirs_only: bool) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("{field}[{i}]");
            if !p.is_absolute() {
                return Err(SandboxError::invalid(
                    name,
                    format!("must be an absolute path, got {}", p.display()),
                ));
            }
            let canonical = std::fs::canonicalize(p).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    SandboxError::not_found(format!("{name} {}", p.display()))
                }
                _ => SandboxError::io(format!("resolving {name} {}", p.display()), e),
            })?;
            if dirs_only && !canonical.is_dir() {
                return Err(SandboxError::invalid(
                    name,
                    format!("{} is not a directory", p.display()),
                ));
            }
            if canonical == Path::new("/") {
                return Err(SandboxError::invalid(
                    name,
                    "the whole filesystem cannot be made writable or re-exposed",
                ));
            }
            Ok(canonical)
        })
        .collect()
}

fn check_shell(shell: &Path) -> Result<()> {
    if !shell.is_absolute() {
        return Err(SandboxError::invalid(
            "shell",
            format!("must be an absolute path, got {}", shell.display()),
        ));
    }
    match std::fs::metadata(shell) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(SandboxError::invalid(
            "shell",
            format!("{} is not a file", shell.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SandboxError::not_found(
            format!("shell {}", shell.display()),
        )),
        Err(e) => Err(SandboxError::io(
            format!("checking shell {}", shell.display()),
            e,
        )),
    }
}

/// `local-` and 16 hex digits from the standard library's randomly seeded hasher (no extra
/// dependency for an id that only needs to be unlikely to collide).
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
    format!("local-{:016x}", h.finish())
}

fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(300)), "300s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn settings_come_from_the_environment() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
                .into_iter()
        };
        let b = LocalSandboxBuilder::default()
            .with_env(vars(&[
                (ENV_ISOLATION, "required"),
                (ENV_NETWORK, "1"),
                (ENV_BWRAP, "/opt/bwrap"),
                ("UNRELATED", "x"),
            ]))
            .expect("valid settings");
        assert_eq!(b.isolation, Isolation::Required);
        assert!(b.network);
        assert_eq!(b.bwrap_path.as_deref(), Some(Path::new("/opt/bwrap")));
        let defaults = LocalSandboxBuilder::default()
            .with_env(vars(&[]))
            .expect("nothing set");
        assert_eq!(defaults.isolation, Isolation::Auto);
        assert!(!defaults.network);
        for (key, value) in [(ENV_ISOLATION, "strict"), (ENV_NETWORK, "maybe")] {
            match LocalSandboxBuilder::default().with_env(vars(&[(key, value)])) {
                Err(SandboxError::InvalidArgument { field, .. }) => assert_eq!(field, key),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn ids_differ() {
        let a = random_id();
        assert!(a.starts_with("local-") && a.len() == 22);
        assert_ne!(a, random_id());
    }
}
