//! `sandbox.process()`: one-shot commands and persistent shell sessions.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::Method;
use url::Url;

use daytona_api::toolbox::{
    Command, CreateSessionRequest, ExecuteRequest, ExecuteResponse, Session,
    SessionCommandLogsResponse, SessionExecuteRequest, SessionExecuteResponse,
    SessionSendInputRequest,
};

use crate::demux::split_all;
use crate::error::DaytonaError;
use crate::follow::{self, FollowEnd, LogStream, RawLogStream};
use crate::retry::Replay;
use crate::toolbox::Toolbox;
use crate::transport::{Deadline, decode_json};

/// Extra time the client waits beyond a command's own timeout, so the daemon's 408 (not the
/// client's deadline) reports it.
const EXEC_GRACE: Duration = Duration::from_secs(5);

/// Options of [`Process::execute`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExecuteOptions {
    /// Working directory (default: the sandbox work dir).
    pub cwd: Option<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Kill the command after this long (whole seconds on the wire, rounded up); `None` lets it
    /// run as long as it takes.
    pub timeout: Option<Duration>,
}

impl fmt::Debug for ExecuteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecuteOptions")
            .field("cwd", &self.cwd)
            .field(
                "env (values redacted)",
                &self.env.keys().collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ExecuteOptions {
    /// No cwd, no env, no timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the working directory.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// What [`Process::execute`] returns: stdout and stderr arrive interleaved in `result` (the
/// daemon does not separate them for one-shot commands; use a session for that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteResult {
    /// The exit code (`-1` when the command could not be started).
    pub exit_code: i32,
    /// Combined output.
    pub result: String,
}

/// One-shot and session command execution in one sandbox. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Process {
    pub(crate) tb: Toolbox,
}

/// A timeout in the whole seconds the daemon takes, rounded up (never shortened).
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// How long to wait for the answer to a call that runs something with the daemon-side
/// `timeout`: that timeout as the daemon rounds it, plus `grace` for the daemon to answer.
pub(crate) fn answer_deadline(timeout: Option<Duration>, grace: Duration) -> Deadline {
    match timeout {
        Some(t) => Deadline::After(Duration::from_secs(whole_seconds(t)) + grace),
        None => Deadline::Unbounded,
    }
}

impl Process {
    /// Runs `command` through the sandbox shell (`POST /process/execute`) and waits for it.
    ///
    /// Never replayed: a command that may have run is not run again; only a connection that
    /// could not be made is retried.
    ///
    /// # Errors
    /// [`DaytonaError::Timeout`] when the command outlived `timeout` (the daemon killed it);
    /// [`DaytonaError::BadRequest`] for an empty command; transport and HTTP errors.
    pub async fn execute(
        &self,
        command: &str,
        options: &ExecuteOptions,
    ) -> Result<ExecuteResult, DaytonaError> {
        if command.trim().is_empty() {
            return Err(DaytonaError::invalid("command", "must not be empty"));
        }
        if let Some(t) = options.timeout
            && t.is_zero()
        {
            return Err(DaytonaError::invalid(
                "timeout",
                "must be positive; use None for no timeout",
            ));
        }
        let body = ExecuteRequest {
            command: command.to_string(),
            cwd: options.cwd.clone(),
            envs: (!options.env.is_empty()).then(|| options.env.clone()),
            timeout: options.timeout.map(whole_seconds),
        };
        let deadline = answer_deadline(options.timeout, EXEC_GRACE);
        let url = self.tb.url(&["process", "execute"]).await?;
        let call = self
            .tb
            .call("process.execute", Method::POST, url)
            .json(&body)?
            .replay(Replay::ConnectOnly)
            .deadline(deadline);
        let reply = self.tb.transport.call(&call).await?;
        let resp: ExecuteResponse = decode_json("process.execute", &reply.body)?;
        let exit_code = match resp.exit_code {
            Some(c) => c,
            // Older daemons named it `code`.
            None => serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("code").and_then(|c| c.as_i64()))
                .and_then(|c| i32::try_from(c).ok())
                .ok_or_else(|| {
                    DaytonaError::decode("process.execute", "response has no exit code")
                })?,
        };
        Ok(ExecuteResult {
            exit_code,
            result: resp.result,
        })
    }

    /// Make a connection to the toolbox in the background for a WebSocket about to be opened
    /// (a log follow), so that its TCP and TLS handshakes overlap the requests before it.
    pub(crate) async fn preconnect(&self) {
        match self.tb.base().await {
            Ok(base) => self.tb.transport.preconnect(base),
            Err(e) => tracing::debug!(error = %e, "no toolbox URL to connect ahead to"),
        }
    }

    /// Creates a persistent shell session (`POST /process/session`).
    ///
    /// # Errors
    /// [`DaytonaError::Conflict`] when a session with this id exists.
    pub async fn create_session(&self, session_id: &str) -> Result<(), DaytonaError> {
        check_id("session_id", session_id)?;
        let url = self.tb.url(&["process", "session"]).await?;
        let call = self
            .tb
            .call("process.create_session", Method::POST, url)
            .json(&CreateSessionRequest {
                session_id: session_id.to_string(),
            })?;
        self.tb.transport.call(&call).await?;
        Ok(())
    }

    /// One session and its commands.
    pub async fn get_session(&self, session_id: &str) -> Result<Session, DaytonaError> {
        check_id("session_id", session_id)?;
        let url = self.tb.url(&["process", "session", session_id]).await?;
        let call = self.tb.call("process.get_session", Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// Every session.
    pub async fn list_sessions(&self) -> Result<Vec<Session>, DaytonaError> {
        let url = self.tb.url(&["process", "session"]).await?;
        let call = self.tb.call("process.list_sessions", Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// Deletes a session, killing what runs in it.
    pub async fn delete_session(&self, session_id: &str) -> Result<(), DaytonaError> {
        check_id("session_id", session_id)?;
        let url = self.tb.url(&["process", "session", session_id]).await?;
        let call = self.tb.call("process.delete_session", Method::DELETE, url);
        let (result, stats) = self.tb.transport.call_with_stats(&call).await;
        match result {
            Ok(_) => Ok(()),
            // Our first attempt may have deleted it before the connection broke.
            Err(e) if e.is_not_found() && stats.unknown_outcome => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs a command in a session (`POST /process/session/{id}/exec`).
    ///
    /// Synchronous unless `request.run_async` is set: then it answers at once with the command
    /// id, and the output is read with [`get_session_command_logs`](Self::get_session_command_logs)
    /// or followed with [`follow_session_command_logs`](Self::follow_session_command_logs).
    /// `timeout` bounds how long the client waits for the answer (`None`: a synchronous command
    /// may take as long as it needs). When the daemon sends only the marker-labelled `output`,
    /// `stdout` and `stderr` are split from it here.
    ///
    /// Never replayed after the request may have been sent.
    pub async fn execute_session_command(
        &self,
        session_id: &str,
        request: &SessionExecuteRequest,
        timeout: Option<Duration>,
    ) -> Result<SessionExecuteResponse, DaytonaError> {
        check_id("session_id", session_id)?;
        if request.command.trim().is_empty() {
            return Err(DaytonaError::invalid("command", "must not be empty"));
        }
        let deadline = match timeout {
            Some(t) => Deadline::After(t),
            None if request.is_async() => Deadline::Default,
            None => Deadline::Unbounded,
        };
        let url = self
            .tb
            .url(&["process", "session", session_id, "exec"])
            .await?;
        let call = self
            .tb
            .call("process.session_exec", Method::POST, url)
            .json(request)?
            .replay(Replay::ConnectOnly)
            .deadline(deadline);
        let mut resp: SessionExecuteResponse = self
            .tb
            .transport
            .call_json(&call)
            .await
            .map_err(unwrap_exec_error)?;
        if resp.stdout.is_none()
            && resp.stderr.is_none()
            && let Some(output) = &resp.output
        {
            let (out, err) = split_all(output.as_bytes());
            resp.stdout = Some(out);
            resp.stderr = Some(err);
        }
        Ok(resp)
    }

    /// A session command's state; `exit_code` is `None` while it runs.
    pub async fn get_session_command(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<Command, DaytonaError> {
        check_id("session_id", session_id)?;
        check_id("command_id", command_id)?;
        let url = self
            .tb
            .url(&["process", "session", session_id, "command", command_id])
            .await?;
        let call = self
            .tb
            .call("process.get_session_command", Method::GET, url);
        self.tb.transport.call_json(&call).await
    }

    /// A session command's log so far, split into stdout and stderr.
    ///
    /// Reads the JSON `{output, stdout, stderr}` answer; an older daemon's plain-text answer is
    /// demultiplexed here.
    pub async fn get_session_command_logs(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<SessionCommandLogsResponse, DaytonaError> {
        check_id("session_id", session_id)?;
        check_id("command_id", command_id)?;
        let url = self
            .tb
            .url(&[
                "process", "session", session_id, "command", command_id, "logs",
            ])
            .await?;
        let call = self
            .tb
            .call("process.session_command_logs", Method::GET, url);
        let reply = self.tb.transport.call(&call).await?;
        if let Ok(logs) = serde_json::from_slice::<SessionCommandLogsResponse>(&reply.body) {
            return Ok(logs);
        }
        let (stdout, stderr) = split_all(&reply.body);
        Ok(SessionCommandLogsResponse {
            output: String::from_utf8_lossy(&reply.body).into_owned(),
            stdout,
            stderr,
        })
    }

    /// The WebSocket URL that follows a session command's log, ids checked.
    async fn follow_logs_url(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<Url, DaytonaError> {
        check_id("session_id", session_id)?;
        check_id("command_id", command_id)?;
        self.tb
            .url_query(
                &[
                    "process", "session", session_id, "command", command_id, "logs",
                ],
                &[("follow", "true")],
            )
            .await
    }

    /// Follows a session command's log live over WebSocket, as a stream of
    /// [`crate::LogEvent`]s ending with how the stream ended.
    ///
    /// ```no_run
    /// # async fn f(p: workspace_daytona::Process) -> Result<(), workspace_daytona::DaytonaError> {
    /// use futures::StreamExt;
    /// use workspace_daytona::{LogEvent, FollowEnd};
    /// let mut logs = p.follow_session_command_logs("s1", "cmd-id").await?;
    /// while let Some(ev) = logs.next().await {
    ///     match ev {
    ///         LogEvent::Stdout(t) => print!("{t}"),
    ///         LogEvent::Stderr(t) => eprint!("{t}"),
    ///         LogEvent::End(end) if end.is_complete() => println!("command finished"),
    ///         LogEvent::End(end) => println!("stream lost: {end:?}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn follow_session_command_logs(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<LogStream, DaytonaError> {
        let url = self.follow_logs_url(session_id, command_id).await?;
        follow::open(
            &self.tb.transport,
            "process.follow_logs",
            &self.tb.sandbox_id,
            url,
        )
        .await
    }

    /// Follows a session command's log live over WebSocket without demultiplexing it: the raw
    /// log bytes (markers included) as the daemon sends them, then how the stream ended.
    ///
    /// The daemon sends the log from its first byte on every connection, so a caller that
    /// counted the bytes of a dropped stream can follow again and skip what it already has.
    pub async fn follow_session_command_logs_raw(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<RawLogStream, DaytonaError> {
        let url = self.follow_logs_url(session_id, command_id).await?;
        follow::open_raw(
            &self.tb.transport,
            "process.follow_logs",
            &self.tb.sandbox_id,
            url,
        )
        .await
    }

    /// Follows a session command's log, calling `on_stdout`/`on_stderr` with each piece of text,
    /// and returns how the stream ended (never an exit code: see
    /// [`get_session_command`](Self::get_session_command)).
    pub async fn follow_session_command_logs_with<F, G>(
        &self,
        session_id: &str,
        command_id: &str,
        on_stdout: F,
        on_stderr: G,
    ) -> Result<FollowEnd, DaytonaError>
    where
        F: FnMut(&str),
        G: FnMut(&str),
    {
        let stream = self
            .follow_session_command_logs(session_id, command_id)
            .await?;
        Ok(stream.for_each_chunk(on_stdout, on_stderr).await)
    }

    /// Writes `data` to a running session command's stdin.
    ///
    /// # Errors
    /// [`DaytonaError::Gone`] when the command already finished.
    pub async fn send_session_command_input(
        &self,
        session_id: &str,
        command_id: &str,
        data: &str,
    ) -> Result<(), DaytonaError> {
        check_id("session_id", session_id)?;
        check_id("command_id", command_id)?;
        let url = self
            .tb
            .url(&[
                "process", "session", session_id, "command", command_id, "input",
            ])
            .await?;
        let call = self
            .tb
            .call("process.session_input", Method::POST, url)
            .json(&SessionSendInputRequest {
                data: data.to_string(),
            })?
            .replay(Replay::ConnectOnly);
        self.tb.transport.call(&call).await?;
        Ok(())
    }
}

fn check_id(field: &str, id: &str) -> Result<(), DaytonaError> {
    if id.trim().is_empty() {
        return Err(DaytonaError::invalid(field, "must not be empty"));
    }
    Ok(())
}

/// The prefix a daemon's exec route puts on the session service's error.
const EXEC_FAILED: &str = "failed to execute command: ";

/// Undo the daemon's wrapping of an exec failure. Daemon v0.190 wraps the session service's
/// error (`failed to execute command: %w`), which its error middleware no longer recognises,
/// so an unknown session comes back as a 500; callers tell a vanished session by
/// [`DaytonaError::NotFound`], as every other route reports one.
fn unwrap_exec_error(err: DaytonaError) -> DaytonaError {
    match err {
        DaytonaError::Server(details)
            if details.message.strip_prefix(EXEC_FAILED) == Some("session not found") =>
        {
            DaytonaError::NotFound(details)
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(5)), 5);
        assert_eq!(whole_seconds(Duration::from_secs(7)), 7);
        assert_eq!(whole_seconds(Duration::from_millis(5001)), 6);
    }

    #[test]
    fn options_debug_hides_env_values() {
        let o = ExecuteOptions::new().env("TOKEN", "s3cr3t").cwd("/tmp");
        let d = format!("{o:?}");
        assert!(d.contains("TOKEN") && !d.contains("s3cr3t"));
    }
}
