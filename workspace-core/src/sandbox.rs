//! The `WorkspaceSandbox` trait and the types that describe a sandbox.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::command::{CommandResult, ExecuteCommandOptions};
use crate::error::Result;
use crate::filesystem::SandboxFilesystem;
use crate::process::ProcessManager;

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStatus {
    /// Constructed, never started.
    Pending,
    /// Being created or started.
    Starting,
    /// Ready for commands.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped; can be started again with its files intact.
    Stopped,
    /// Being destroyed.
    Destroying,
    /// Gone for good; every operation now fails with [`crate::SandboxError::NotReady`].
    Destroyed,
    /// The last lifecycle operation failed; `start()` may be tried again.
    Error,
}

impl fmt::Display for SandboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SandboxStatus::Pending => "pending",
            SandboxStatus::Starting => "starting",
            SandboxStatus::Running => "running",
            SandboxStatus::Stopping => "stopping",
            SandboxStatus::Stopped => "stopped",
            SandboxStatus::Destroying => "destroying",
            SandboxStatus::Destroyed => "destroyed",
            SandboxStatus::Error => "error",
        };
        f.write_str(s)
    }
}

/// What `start()` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOutcome {
    /// A new sandbox was created.
    Created,
    /// An existing sandbox was found (or was already running) and is now in use.
    Connected,
}

/// Compute resources of a sandbox.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// CPU cores (may be fractional).
    pub cpu_cores: Option<f64>,
    /// Memory in MB (MiB).
    pub memory_mb: Option<u64>,
    /// Disk in MB (MiB).
    pub disk_mb: Option<u64>,
}

/// A snapshot of what a sandbox is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SandboxInfo {
    /// Stable id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Provider name, e.g. `local`, `daytona`.
    pub provider: String,
    /// Current status.
    pub status: SandboxStatus,
    /// When the sandbox (or the handle, for providers without a server record) was created.
    pub created_at: DateTime<Utc>,
    /// When a command last ran.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the provider will stop it if it stays idle.
    pub timeout_at: Option<DateTime<Utc>>,
    /// Compute resources, where known.
    pub resources: Option<Resources>,
    /// Provider-specific facts (language, image, target, root directory, …).
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl SandboxInfo {
    /// An info with the required fields set and the rest empty.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        provider: impl Into<String>,
        status: SandboxStatus,
        created_at: DateTime<Utc>,
    ) -> Self {
        SandboxInfo {
            id: id.into(),
            name: name.into(),
            provider: provider.into(),
            status,
            created_at,
            last_used_at: None,
            timeout_at: None,
            resources: None,
            metadata: BTreeMap::new(),
        }
    }
}

/// What a provider supports, for callers that want to decide up front (for example which tools to
/// offer a model). Derived from [`WorkspaceSandbox::filesystem`] and
/// [`WorkspaceSandbox::processes`] unless a provider says more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `filesystem()` is available.
    pub filesystem: bool,
    /// `processes()` is available.
    pub processes: bool,
    /// Commands are isolated from the host machine.
    pub isolated: bool,
    /// [`WorkspaceSandbox::port_url`] can give a URL for a port.
    pub ports: bool,
}

/// A URL that reaches a port inside a sandbox from outside it, and the headers a request to it
/// needs (e.g. a preview token). Header values are secrets: `Debug` does not print them.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortUrl {
    /// The port inside the sandbox.
    pub port: u16,
    /// The URL, e.g. `http://127.0.0.1:3000` or a provider's preview address.
    pub url: String,
    /// Headers to send with each request (name, value); empty when none are needed.
    pub headers: Vec<(String, String)>,
}

impl PortUrl {
    /// A URL that needs no headers.
    pub fn new(port: u16, url: impl Into<String>) -> Self {
        PortUrl {
            port,
            url: url.into(),
            headers: Vec::new(),
        }
    }

    /// Add a header requests must carry.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl fmt::Debug for PortUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| format!("{n}: [redacted]"))
            .collect();
        f.debug_struct("PortUrl")
            .field("port", &self.port)
            .field("url", &self.url)
            .field("headers", &names)
            .finish()
    }
}

/// A place where an agent runs code: one sandbox, whichever provider backs it.
///
/// The trait is object safe: hold it as `Arc<dyn WorkspaceSandbox>`. Commands start the sandbox
/// lazily; lifecycle calls coalesce; `destroy` is idempotent and final.
///
/// ```
/// use std::sync::Arc;
/// use workspace_core::{WorkspaceSandbox, ExecuteCommandOptions};
///
/// async fn greet(sandbox: Arc<dyn WorkspaceSandbox>) -> workspace_core::Result<String> {
///     let result = sandbox
///         .execute_command("echo", &["hello world".into()], ExecuteCommandOptions::new())
///         .await?;
///     assert!(result.success);
///     Ok(result.stdout)
/// }
/// ```
#[async_trait]
pub trait WorkspaceSandbox: Send + Sync {
    /// Stable id of this sandbox.
    fn id(&self) -> &str;
    /// Human name.
    fn name(&self) -> &str;
    /// Provider name (`local`, `daytona`, …).
    fn provider(&self) -> &str;
    /// Current status, without I/O.
    fn status(&self) -> SandboxStatus;

    /// Start the sandbox, creating it or connecting to an existing one. Concurrent calls share one
    /// start; a running sandbox returns [`StartOutcome::Connected`] at once.
    async fn start(&self) -> Result<StartOutcome>;
    /// Stop the sandbox; its files persist and `start` resumes it.
    async fn stop(&self) -> Result<()>;
    /// Destroy the sandbox and everything in it. Idempotent; every later operation fails.
    async fn destroy(&self) -> Result<()>;

    /// Run `command` under a POSIX shell with each of `args` appended shell-quoted, starting the
    /// sandbox first if needed. A non-zero exit, a timeout (exit 124) and a cancel (exit 137) are
    /// results, not errors.
    async fn execute_command(
        &self,
        command: &str,
        args: &[String],
        options: ExecuteCommandOptions,
    ) -> Result<CommandResult>;

    /// Status, timestamps, resources and metadata.
    async fn get_info(&self) -> Result<SandboxInfo>;

    /// A short, deterministic description for an LLM system prompt: provider, working directory,
    /// command timeout, user and isolation level.
    fn get_instructions(&self) -> String;

    /// The file API, if the provider has one.
    fn filesystem(&self) -> Option<&dyn SandboxFilesystem> {
        None
    }

    /// Background processes, if the provider supports them.
    fn processes(&self) -> Option<&dyn ProcessManager> {
        None
    }

    /// What the provider supports.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            filesystem: self.filesystem().is_some(),
            processes: self.processes().is_some(),
            isolated: false,
            ports: false,
        }
    }

    /// A URL that reaches `port` inside the sandbox from outside it (for a person or a program
    /// on the caller's side; commands inside use `localhost:port`). Nothing needs to listen yet.
    ///
    /// Errors: port 0 is `InvalidArgument`; a sandbox whose network cannot be reached from
    /// outside says why (`PermissionDenied`); providers without the capability return
    /// `Unsupported` (the default).
    async fn port_url(&self, port: u16) -> Result<PortUrl> {
        let _ = port;
        Err(crate::SandboxError::unsupported(
            "port_url",
            self.provider(),
        ))
    }
}

macro_rules! forward_sandbox {
    ($ty:ty) => {
        #[async_trait]
        impl<T: WorkspaceSandbox + ?Sized> WorkspaceSandbox for $ty {
            fn id(&self) -> &str {
                (**self).id()
            }
            fn name(&self) -> &str {
                (**self).name()
            }
            fn provider(&self) -> &str {
                (**self).provider()
            }
            fn status(&self) -> SandboxStatus {
                (**self).status()
            }
            async fn start(&self) -> Result<StartOutcome> {
                (**self).start().await
            }
            async fn stop(&self) -> Result<()> {
                (**self).stop().await
            }
            async fn destroy(&self) -> Result<()> {
                (**self).destroy().await
            }
            async fn execute_command(
                &self,
                command: &str,
                args: &[String],
                options: ExecuteCommandOptions,
            ) -> Result<CommandResult> {
                (**self).execute_command(command, args, options).await
            }
            async fn get_info(&self) -> Result<SandboxInfo> {
                (**self).get_info().await
            }
            fn get_instructions(&self) -> String {
                (**self).get_instructions()
            }
            fn filesystem(&self) -> Option<&dyn SandboxFilesystem> {
                (**self).filesystem()
            }
            fn processes(&self) -> Option<&dyn ProcessManager> {
                (**self).processes()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn port_url(&self, port: u16) -> Result<PortUrl> {
                (**self).port_url(port).await
            }
        }
    };
}

forward_sandbox!(Arc<T>);
forward_sandbox!(Box<T>);

/// Conveniences on top of [`WorkspaceSandbox`], available on every sandbox.
#[async_trait]
pub trait WorkspaceSandboxExt: WorkspaceSandbox {
    /// Run a shell command line with default options.
    async fn run(&self, command_line: &str) -> Result<CommandResult> {
        self.execute_command(command_line, &[], ExecuteCommandOptions::default())
            .await
    }

    /// Wait until something inside the sandbox accepts TCP connections on `port` of its
    /// loopback (a dev server a background process is starting), checking from inside the
    /// sandbox about every 200 ms: `true` once it answers, `false` when `timeout` passes
    /// first. The check connects with bash's `/dev/tcp`, else `nc -z`, else Python, whichever
    /// the sandbox has; a sandbox with none of them never reports the port open.
    ///
    /// # Errors
    /// [`SandboxError::InvalidArgument`](crate::SandboxError::InvalidArgument) for port 0;
    /// the sandbox's errors from running the check.
    ///
    /// ```no_run
    /// # async fn f(sandbox: &dyn workspace_core::WorkspaceSandbox) -> workspace_core::Result<()> {
    /// use std::time::Duration;
    /// use workspace_core::WorkspaceSandboxExt;
    /// if !sandbox.wait_for_port(3000, Duration::from_secs(30)).await? {
    ///     eprintln!("nothing listens on port 3000 yet");
    /// }
    /// # Ok(()) }
    /// ```
    async fn wait_for_port(&self, port: u16, timeout: Duration) -> Result<bool> {
        if port == 0 {
            return Err(crate::SandboxError::invalid(
                "port",
                "must be between 1 and 65535",
            ));
        }
        let check = format!(
            "if command -v bash >/dev/null 2>&1; then bash -c ': </dev/tcp/127.0.0.1/{port}'; \
             elif command -v nc >/dev/null 2>&1; then nc -z -w 1 127.0.0.1 {port}; \
             else python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 1)'; \
             fi >/dev/null 2>&1"
        );
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let options = ExecuteCommandOptions::default().timeout(
                left.max(Duration::from_millis(100))
                    .min(Duration::from_secs(5)),
            );
            let probe = self.execute_command(&check, &[], options).await?;
            if probe.exit_code == 0 {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(
                Duration::from_millis(200)
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        }
    }
}

impl<T: WorkspaceSandbox + ?Sized> WorkspaceSandboxExt for T {}
