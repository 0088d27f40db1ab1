//! [`Sandbox`]: a handle on one sandbox, its lifecycle, settings and toolbox sub-handles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;

use daytona_api::sandbox::{Sandbox as SandboxDto, SandboxLabels, SandboxState};
use daytona_api::toolbox::{UserHomeDirResponse, WorkDirResponse};

use crate::error::DaytonaError;
use crate::fs::FileSystem;
use crate::process::Process;
use crate::retry::Replay;
use crate::toolbox::Toolbox;
use crate::transport::{Call, Transport, join};

/// Poll interval at the start of a wait; it grows by half per poll up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(100);
/// Longest pause between two state polls.
const MAX_POLL: Duration = Duration::from_secs(1);

/// One sandbox: its id, the last state the API reported ([`data`](Self::data)), and the shared
/// client. Cheap to clone; clones share the connection pool but each caches its own data.
///
/// Lifecycle methods wait for the target state by polling `GET /sandbox/{id}`. A `timeout` of
/// `None` waits without limit.
#[derive(Debug, Clone)]
pub struct Sandbox {
    transport: Arc<Transport>,
    data: SandboxDto,
    toolbox: Toolbox,
}

impl Sandbox {
    pub(crate) fn from_dto(transport: Arc<Transport>, data: SandboxDto) -> Self {
        let toolbox = Toolbox::new(
            Arc::clone(&transport),
            data.id.clone(),
            data.toolbox_proxy_url.clone(),
        );
        Sandbox {
            transport,
            data,
            toolbox,
        }
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.data.id
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.data.name
    }

    /// The state last seen (refresh with [`refresh`](Self::refresh)).
    pub fn state(&self) -> Option<&SandboxState> {
        self.data.state.as_ref()
    }

    /// The labels last seen.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.data.labels
    }

    /// Everything the API last reported. For sandboxes obtained from a list, fields that the
    /// list omits (`env`, `volumes`, `buildInfo`, …) are empty until [`refresh`](Self::refresh).
    pub fn data(&self) -> &SandboxDto {
        &self.data
    }

    /// Command execution in this sandbox.
    pub fn process(&self) -> Process {
        Process {
            tb: self.toolbox.clone(),
        }
    }

    /// File operations in this sandbox.
    pub fn fs(&self) -> FileSystem {
        FileSystem {
            tb: self.toolbox.clone(),
        }
    }

    /// The toolbox base URL (`{toolboxProxyUrl}/{id}`), asking the API for the proxy URL if the
    /// sandbox data lacked it.
    pub async fn toolbox_url(&self) -> Result<url::Url, DaytonaError> {
        Ok(self.toolbox.base().await?.clone())
    }

    fn url(&self, tail: &[&str]) -> Result<url::Url, DaytonaError> {
        let mut segments = vec!["sandbox", self.data.id.as_str()];
        segments.extend_from_slice(tail);
        join(&self.transport.config().api_url, &segments)
    }

    fn call(&self, op: &'static str, method: Method, tail: &[&str]) -> Result<Call, DaytonaError> {
        Ok(Call::new(op, method, self.url(tail)?).sandbox(&self.data.id))
    }

    /// Reloads the data (`GET /sandbox/{id}`).
    pub async fn refresh(&mut self) -> Result<(), DaytonaError> {
        let call = self.call("sandbox.get", Method::GET, &[])?;
        self.data = self.transport.call_json(&call).await?;
        Ok(())
    }

    /// Sends a lifecycle request (start, stop, archive, …) and keeps the DTO it answers with.
    ///
    /// These requests are replayed after a broken connection: the API drives a sandbox toward a
    /// desired state, so asking twice cannot do two things. A replay the API refuses (400/409,
    /// "not in a valid state") means the first attempt took effect, and the wait that follows
    /// sees the result.
    async fn lifecycle(
        &mut self,
        call: Call,
        target: &'static str,
        timeout: Option<Duration>,
    ) -> Result<(), DaytonaError> {
        let call = call.replay(Replay::Idempotent);
        let (result, stats) = self.transport.call_with_stats(&call).await;
        match result {
            Ok(reply) => {
                // 200 with the DTO, or (some routes, some versions) an empty body.
                if let Ok(dto) = serde_json::from_slice::<SandboxDto>(&reply.body) {
                    self.data = dto;
                }
                Ok(())
            }
            Err(
                DaytonaError::BadRequest(_) | DaytonaError::Conflict(_) | DaytonaError::NotFound(_),
            ) if stats.unknown_outcome => Ok(()),
            Err(e) => Err(wait_error(e, &self.data.id, target, timeout, None)),
        }
    }

    /// Starts the sandbox and waits until it is `started`.
    pub async fn start(&mut self, timeout: Option<Duration>) -> Result<(), DaytonaError> {
        let until = deadline(timeout);
        let call = self
            .call("sandbox.start", Method::POST, &["start"])?
            .until(until);
        self.lifecycle(call, "started", timeout).await?;
        self.wait_for(&[SandboxState::Started], false, "started", timeout, until)
            .await
    }

    /// Stops the sandbox and waits until it is `stopped` (or `destroyed`, for an ephemeral one).
    pub async fn stop(&mut self, timeout: Option<Duration>) -> Result<(), DaytonaError> {
        self.stop_with(false, timeout).await
    }

    /// [`stop`](Self::stop), with `force` killing processes instead of a graceful shutdown.
    pub async fn stop_with(
        &mut self,
        force: bool,
        timeout: Option<Duration>,
    ) -> Result<(), DaytonaError> {
        let until = deadline(timeout);
        let mut call = self
            .call("sandbox.stop", Method::POST, &["stop"])?
            .until(until);
        if force {
            call.url.query_pairs_mut().append_pair("force", "true");
        }
        self.lifecycle(call, "stopped", timeout).await?;
        self.wait_for(
            &[SandboxState::Stopped, SandboxState::Destroyed],
            true,
            "stopped",
            timeout,
            until,
        )
        .await
    }

    /// Deletes the sandbox and waits until it is gone (`destroyed`, or 404).
    pub async fn delete(&mut self, timeout: Option<Duration>) -> Result<(), DaytonaError> {
        let until = deadline(timeout);
        let call = self
            .call("sandbox.delete", Method::DELETE, &[])?
            .until(until);
        self.lifecycle(call, "destroyed", timeout).await?;
        self.wait_for(
            &[SandboxState::Destroyed],
            true,
            "destroyed",
            timeout,
            until,
        )
        .await
    }

    /// Archives the (stopped) sandbox and waits until it is `archived`.
    pub async fn archive(&mut self, timeout: Option<Duration>) -> Result<(), DaytonaError> {
        let until = deadline(timeout);
        let call = self
            .call("sandbox.archive", Method::POST, &["archive"])?
            .until(until);
        self.lifecycle(call, "archived", timeout).await?;
        self.wait_for(&[SandboxState::Archived], false, "archived", timeout, until)
            .await
    }

    /// Recovers a sandbox from a recoverable error and waits until it is `started`.
    pub async fn recover(&mut self, timeout: Option<Duration>) -> Result<(), DaytonaError> {
        let until = deadline(timeout);
        let call = self
            .call("sandbox.recover", Method::POST, &["recover"])?
            .until(until);
        self.lifecycle(call, "started", timeout).await?;
        self.wait_for(&[SandboxState::Started], false, "started", timeout, until)
            .await
    }

    /// Waits until the sandbox is `started`; fails at once on `error`/`build_failed`.
    pub async fn wait_until_started(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<(), DaytonaError> {
        let until = deadline(timeout);
        self.poll(false, "started", timeout, until, None).await?;
        self.wait_for(&[SandboxState::Started], false, "started", timeout, until)
            .await
    }

    /// Waits until the sandbox is `stopped` (or `destroyed`).
    pub async fn wait_until_stopped(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<(), DaytonaError> {
        let until = deadline(timeout);
        self.poll(true, "stopped", timeout, until, None).await?;
        self.wait_for(
            &[SandboxState::Stopped, SandboxState::Destroyed],
            true,
            "stopped",
            timeout,
            until,
        )
        .await
    }

    /// One `GET /sandbox/{id}` during a wait. With `gone_ok`, a 404 counts as `destroyed`.
    async fn poll(
        &mut self,
        gone_ok: bool,
        target_name: &'static str,
        timeout: Option<Duration>,
        until: Option<Instant>,
        last_state: Option<String>,
    ) -> Result<(), DaytonaError> {
        let call = self.call("sandbox.get", Method::GET, &[])?.until(until);
        match self.transport.call_json::<SandboxDto>(&call).await {
            Ok(dto) => {
                self.data = dto;
                Ok(())
            }
            Err(e) if gone_ok && e.is_not_found() => {
                self.data.state = Some(SandboxState::Destroyed);
                Ok(())
            }
            // The poll itself already retried what can be retried.
            Err(e) => Err(wait_error(
                e,
                &self.data.id,
                target_name,
                timeout,
                last_state,
            )),
        }
    }

    /// Polls until the state is one of `targets`. With `gone_ok`, a 404 counts as `destroyed`.
    async fn wait_for(
        &mut self,
        targets: &[SandboxState],
        gone_ok: bool,
        target_name: &'static str,
        timeout: Option<Duration>,
        until: Option<Instant>,
    ) -> Result<(), DaytonaError> {
        let mut pause = FIRST_POLL;
        let mut last_state = self.data.state.as_ref().map(|s| s.to_string());
        loop {
            if let Some(state) = &self.data.state {
                if targets.contains(state) {
                    return Ok(());
                }
                if state.is_failure() {
                    return Err(DaytonaError::SandboxFailed {
                        sandbox_id: self.data.id.clone(),
                        state: state.to_string(),
                        reason: self.data.error_reason.clone(),
                    });
                }
            }
            if let Some(until) = until {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(wait_timeout(
                        &self.data.id,
                        target_name,
                        timeout,
                        last_state,
                    ));
                }
                tokio::time::sleep(pause.min(left)).await;
            } else {
                tokio::time::sleep(pause).await;
            }
            pause = (pause * 3 / 2).min(MAX_POLL);

            self.poll(gone_ok, target_name, timeout, until, last_state.clone())
                .await?;
            last_state = self.data.state.as_ref().map(|s| s.to_string());
        }
    }

    /// Replaces all labels (`PUT /sandbox/{id}/labels`); returns what the API stored.
    pub async fn set_labels(
        &mut self,
        labels: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, DaytonaError> {
        if labels.keys().any(|k| k.trim().is_empty()) {
            return Err(DaytonaError::invalid(
                "labels",
                "label keys must not be empty",
            ));
        }
        let call = self
            .call("sandbox.set_labels", Method::PUT, &["labels"])?
            .json(&SandboxLabels { labels })?;
        let stored: SandboxLabels = self.transport.call_json(&call).await?;
        self.data.labels = stored.labels.clone();
        Ok(stored.labels)
    }

    /// Idle minutes before auto-stop; 0 disables.
    pub async fn set_autostop_interval(&mut self, minutes: u32) -> Result<(), DaytonaError> {
        self.set_interval("sandbox.set_autostop", "autostop", i64::from(minutes))
            .await?;
        self.data.auto_stop_interval = Some(i64::from(minutes));
        Ok(())
    }

    /// Stopped minutes before auto-archive; 0 means the maximum.
    pub async fn set_autoarchive_interval(&mut self, minutes: u32) -> Result<(), DaytonaError> {
        self.set_interval("sandbox.set_autoarchive", "autoarchive", i64::from(minutes))
            .await?;
        self.data.auto_archive_interval = Some(i64::from(minutes));
        Ok(())
    }

    /// Stopped minutes before auto-delete; negative disables, 0 deletes on stop.
    pub async fn set_autodelete_interval(&mut self, minutes: i32) -> Result<(), DaytonaError> {
        self.set_interval("sandbox.set_autodelete", "autodelete", i64::from(minutes))
            .await?;
        self.data.auto_delete_interval = Some(i64::from(minutes));
        Ok(())
    }

    async fn set_interval(
        &self,
        op: &'static str,
        route: &str,
        minutes: i64,
    ) -> Result<(), DaytonaError> {
        let value = minutes.to_string();
        // Setting the same value twice is the same as once.
        let call = self
            .call(op, Method::POST, &[route, &value])?
            .replay(Replay::Idempotent);
        self.transport.call(&call).await?;
        Ok(())
    }

    /// Tells the API the sandbox is in use, resetting its idle timers
    /// (`POST /sandbox/{id}/last-activity`).
    pub async fn refresh_activity(&self) -> Result<(), DaytonaError> {
        let call = self
            .call("sandbox.refresh_activity", Method::POST, &["last-activity"])?
            .replay(Replay::Idempotent);
        self.transport.call(&call).await?;
        Ok(())
    }

    /// The directory commands run in by default (toolbox `GET /work-dir`).
    pub async fn work_dir(&self) -> Result<String, DaytonaError> {
        let url = self.toolbox.url(&["work-dir"]).await?;
        let call = self.toolbox.call("sandbox.work_dir", Method::GET, url);
        let resp: WorkDirResponse = self.transport.call_json(&call).await?;
        Ok(resp.dir)
    }

    /// The sandbox user's home directory (toolbox `GET /user-home-dir`).
    pub async fn user_home_dir(&self) -> Result<String, DaytonaError> {
        let url = self.toolbox.url(&["user-home-dir"]).await?;
        let call = self.toolbox.call("sandbox.user_home_dir", Method::GET, url);
        let resp: UserHomeDirResponse = self.transport.call_json(&call).await?;
        Ok(resp.dir)
    }
}

pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

fn wait_timeout(
    id: &str,
    target: &'static str,
    timeout: Option<Duration>,
    last_state: Option<String>,
) -> DaytonaError {
    DaytonaError::WaitTimeout {
        sandbox_id: id.to_string(),
        target,
        after: timeout.unwrap_or_default(),
        last_state,
    }
}

/// A lifecycle request that ran out of the operation's time budget is a wait timeout.
fn wait_error(
    e: DaytonaError,
    id: &str,
    target: &'static str,
    timeout: Option<Duration>,
    last_state: Option<String>,
) -> DaytonaError {
    match e {
        DaytonaError::RequestTimeout { .. } if timeout.is_some() => {
            wait_timeout(id, target, timeout, last_state)
        }
        other => other,
    }
}
