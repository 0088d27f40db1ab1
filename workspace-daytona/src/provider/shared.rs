//! The state a [`super::DaytonaSandbox`] handle, its file API and its process manager share:
//! the attachment to one Daytona sandbox, the retry-once-after-the-sandbox-stopped rule every
//! operation goes through, and where relative paths and working directories resolve.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use daytona_api::sandbox::SandboxState;
use tokio::sync::OnceCell;
use workspace_core::lifecycle::Lifecycle;
use workspace_core::{Result, SandboxError, SandboxStatus};

use crate::client::DaytonaClient;
use crate::error::DaytonaError;
use crate::sandbox::Sandbox;

use super::builder::{DaytonaSandboxBuilder, Options};
use super::classify::{self, Class, classify};
use super::shell::ResidentSlot;
use super::spare::SpareSession;
use super::sync::lock;

/// The Daytona sandbox a handle is attached to, as of one start.
pub(crate) struct Attached {
    pub(crate) sandbox: Sandbox,
    /// Which start attached it; a failure observed under an older generation must not mark a
    /// newer attachment dead.
    pub(crate) generation: u64,
    work_dir: OnceCell<String>,
    /// A command session made ahead of the next command.
    pub(crate) spare: SpareSession,
    /// The shell that runs warm commands (see [`super::resident`]).
    pub(crate) resident: ResidentSlot,
}

impl Attached {
    /// The sandbox's default working directory, asked of the toolbox once per attachment.
    pub(crate) async fn work_dir(&self) -> std::result::Result<String, DaytonaError> {
        self.work_dir
            .get_or_try_init(|| self.sandbox.work_dir())
            .await
            .cloned()
    }
}

/// A failure of one attempt of an operation.
pub(crate) enum OpError {
    /// A Daytona call failed before anything was done: retried once if it says the sandbox
    /// stopped underneath.
    Daytona(DaytonaError),
    /// Final: returned as is.
    Final(SandboxError),
}

impl From<DaytonaError> for OpError {
    fn from(e: DaytonaError) -> Self {
        OpError::Daytona(e)
    }
}

impl From<SandboxError> for OpError {
    fn from(e: SandboxError) -> Self {
        OpError::Final(e)
    }
}

/// State shared by the handle, its file API and its process manager.
pub(crate) struct Shared {
    pub(crate) opts: Options,
    pub(crate) client: DaytonaClient,
    pub(crate) lifecycle: Lifecycle,
    attached: Mutex<Option<Arc<Attached>>>,
    generation: AtomicU64,
    /// A start ran at least once, so a failed one may have left a sandbox for `destroy`.
    start_attempted: AtomicBool,
    created_at: DateTime<Utc>,
    last_used_at: Mutex<Option<DateTime<Utc>>>,
}

impl Shared {
    pub(crate) fn new(opts: Options, client: DaytonaClient) -> Self {
        Shared {
            lifecycle: Lifecycle::new(opts.id.clone()),
            opts,
            client,
            attached: Mutex::new(None),
            generation: AtomicU64::new(0),
            start_attempted: AtomicBool::new(false),
            created_at: Utc::now(),
            last_used_at: Mutex::new(None),
        }
    }

    pub(crate) fn builder(&self) -> &DaytonaSandboxBuilder {
        &self.opts.builder
    }

    pub(crate) fn current(&self) -> Option<Arc<Attached>> {
        lock(&self.attached).clone()
    }

    pub(crate) fn attach(&self, sandbox: Sandbox) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *lock(&self.attached) = Some(Arc::new(Attached {
            sandbox,
            generation,
            work_dir: OnceCell::new(),
            spare: SpareSession::default(),
            resident: ResidentSlot::default(),
        }));
    }

    pub(crate) fn take_attached(&self) -> Option<Arc<Attached>> {
        lock(&self.attached).take()
    }

    pub(crate) fn restore_attached(&self, attached: Arc<Attached>) {
        let mut slot = lock(&self.attached);
        if slot.is_none() {
            *slot = Some(attached);
        }
    }

    /// Returns whether an earlier start was attempted.
    pub(crate) fn note_start_attempt(&self) -> bool {
        self.start_attempted.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn start_was_attempted(&self) -> bool {
        self.start_attempted.load(Ordering::Acquire)
    }

    pub(crate) fn touch(&self) {
        *lock(&self.last_used_at) = Some(Utc::now());
    }

    pub(crate) fn last_used_at(&self) -> Option<DateTime<Utc>> {
        *lock(&self.last_used_at)
    }

    pub(crate) fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Start lazily, then the sandbox as attached now.
    pub(crate) async fn attached(&self) -> Result<Arc<Attached>> {
        self.lifecycle.ensure_running(|| self.start_work()).await?;
        self.current().ok_or_else(|| self.lifecycle.not_ready())
    }

    /// The sandbox attached under `generation` stopped underneath: let the next operation start
    /// it again. A newer attachment, or a lifecycle call in progress, is left alone.
    pub(crate) fn mark_dead(&self, generation: u64) {
        if self.generation.load(Ordering::Acquire) == generation
            && self.lifecycle.status() == SandboxStatus::Running
        {
            tracing::info!(sandbox = %self.opts.id, "the Daytona sandbox is no longer running");
            self.lifecycle.set_status(SandboxStatus::Stopped);
            if let Some(attached) = self.current()
                && attached.generation == generation
            {
                attached.spare.close();
                attached.resident.close();
            }
        }
    }

    /// Run `op` against the running sandbox; if it fails because the sandbox stopped (or went)
    /// underneath, start it again (recreating it if gone) and run `op` once more. A second
    /// failure is returned. `op` must only fail with [`OpError::Daytona`] for requests that were
    /// refused without effect.
    pub(crate) async fn with_retry<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut(Arc<Attached>) -> Fut,
        Fut: Future<Output = std::result::Result<T, OpError>>,
    {
        let mut retried = false;
        loop {
            let attached = self.attached().await?;
            match op(attached.clone()).await {
                Ok(v) => return Ok(v),
                Err(OpError::Final(e)) => return Err(e),
                Err(OpError::Daytona(e)) => {
                    if retried || !self.confirm_unavailable(&attached, &e).await {
                        return Err(e.into());
                    }
                    tracing::info!(
                        sandbox = %self.opts.id,
                        error = %e,
                        "the sandbox stopped underneath; starting it again and retrying once"
                    );
                    retried = true;
                }
            }
        }
    }

    /// Whether `err` means the attached sandbox is not running, checked with the control plane;
    /// marks it dead when so. A transient gateway error on a running sandbox also allows the
    /// one retry (the request was refused without effect).
    ///
    /// The future holds nothing borrowed from `err`, so callers may keep the error across it.
    pub(crate) fn confirm_unavailable(
        &self,
        attached: &Arc<Attached>,
        err: &DaytonaError,
    ) -> impl Future<Output = bool> + Send + '_ {
        let unavailable = classify(err) == Class::SandboxUnavailable;
        // On a running sandbox, a plain 404 named something else that is missing (a session,
        // a process), which a retry would not find either.
        let retry_if_running = !matches!(err, DaytonaError::NotFound(_));
        let attached = attached.clone();
        async move {
            if !unavailable {
                return false;
            }
            let mut probe = attached.sandbox.clone();
            match probe.refresh().await {
                Ok(()) if probe.state() == Some(&SandboxState::Started) => retry_if_running,
                Ok(()) => {
                    self.mark_dead(attached.generation);
                    true
                }
                Err(e) if e.is_not_found() => {
                    self.mark_dead(attached.generation);
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot ask the API whether the sandbox runs");
                    false
                }
            }
        }
    }
}

impl Shared {
    /// The directory a command starts in: `cwd` (which must exist and be a directory), else the
    /// configured working directory, else the sandbox's work dir.
    pub(crate) async fn working_dir(
        &self,
        attached: &Attached,
        cwd: Option<&str>,
    ) -> std::result::Result<String, OpError> {
        let Some(cwd) = cwd else {
            if let Some(dir) = &self.builder().working_directory {
                return Ok(dir.clone());
            }
            return Ok(attached.work_dir().await?);
        };
        match attached.sandbox.fs().get_file_info(cwd).await {
            Ok(info) if info.is_dir => Ok(cwd.to_string()),
            Ok(_) => Err(OpError::Final(SandboxError::invalid(
                "cwd",
                format!("{cwd} is not a directory"),
            ))),
            Err(DaytonaError::FileNotFound(_)) => Err(OpError::Final(SandboxError::not_found(
                format!("cwd {cwd} (the working directory does not exist)"),
            ))),
            Err(e) => Err(OpError::Daytona(e)),
        }
    }

    /// `path` made absolute against the working directory.
    pub(crate) async fn absolute(
        &self,
        attached: &Attached,
        path: &str,
    ) -> std::result::Result<String, OpError> {
        if path.starts_with('/') {
            return Ok(path.to_string());
        }
        let base = match &self.builder().working_directory {
            Some(dir) => dir.clone(),
            None => attached.work_dir().await?,
        };
        let rel = path.trim_start_matches("./");
        if rel.is_empty() || rel == "." {
            return Ok(base);
        }
        Ok(format!("{}/{rel}", base.trim_end_matches('/')))
    }
}

/// The bytes of the file at absolute `path`. A download is idempotent, so a body cut short (seen
/// now and then from the emulator under load) is read once more before it counts as a failure.
pub(crate) async fn download(
    attached: &Attached,
    path: &str,
) -> std::result::Result<bytes::Bytes, OpError> {
    let fs = attached.sandbox.fs();
    match fs.download_bytes(path).await {
        Err(DaytonaError::Decode { .. }) => fs.download_bytes(path).await,
        other => other,
    }
    .map_err(|e| file_error(e, path))
}

/// A failed file call: what the caller should see, keeping sandbox-down failures retryable.
pub(crate) fn file_error(e: DaytonaError, path: &str) -> OpError {
    match e {
        DaytonaError::FileNotFound(_) => {
            OpError::Final(SandboxError::not_found(format!("file {path}")))
        }
        e @ DaytonaError::BadRequest(_) if classify::upload_refused_access(&e) => {
            OpError::Final(SandboxError::PermissionDenied {
                message: format!(
                    "{path}: {}",
                    e.details()
                        .map(|d| d.message.as_str())
                        .unwrap_or("access denied")
                ),
            })
        }
        DaytonaError::BadRequest(d) => {
            OpError::Final(SandboxError::invalid(format!("path {path}"), d.message))
        }
        DaytonaError::Forbidden(d) => OpError::Final(SandboxError::PermissionDenied {
            message: format!("{path}: {}", d.message),
        }),
        other => OpError::Daytona(other),
    }
}
