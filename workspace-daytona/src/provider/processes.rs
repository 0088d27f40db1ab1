//! Background processes, each in a Daytona session of its own.
//!
//! A [`ProcessId`] is `<session id>:<command id>`, both chosen or given by Daytona, so any
//! handle to the same sandbox can address the process (after the handle that spawned it was
//! dropped, or from another program). Output is the command's log, split into stdout and
//! stderr, with offsets counted in bytes of each; the exit code is the command record's. Stdin,
//! when asked for, goes through the relay of [`super::script`]. `kill` deletes the session,
//! which kills the process's whole group; the session of a process that exits by itself stays
//! (so its output remains readable) until `kill` releases it or the sandbox goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daytona_api::toolbox::{Command, SessionCommandLogsResponse};
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use workspace_core::{
    EXIT_KILLED, ExecuteCommandOptions, OutputOffsets, ProcessId, ProcessInfo, ProcessManager,
    ProcessOutput, ProcessState, Result, SandboxError, SpawnOptions, build_command_line,
};

use crate::error::DaytonaError;
use crate::follow::RawLogEvent;
use crate::process::Process;

use super::command::{NewSession, start_in_new_session};
use super::output::decode_all;
use super::script::{self, OutputEncoding, STDIN_EOF_LINE, StdinMode};
use super::session::session_started_at;
use super::shared::{OpError, Shared};
use super::sync::lock;

/// Prefix of the sessions background processes run in (what `list` looks for).
pub(crate) const PROCESS_SESSION_PREFIX: &str = "ws-proc-";
const FIRST_WAIT_POLL: Duration = Duration::from_millis(50);
const MAX_WAIT_POLL: Duration = Duration::from_millis(500);

/// Whether a process's stdin is the relay, as this handle knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdinState {
    Open,
    Closed,
}

/// What this handle remembers of processes: the stdin state of those it spawned, and the last
/// word on those it killed (their session, and so their record and log, is gone).
#[derive(Default)]
pub(crate) struct ProcessBook {
    stdin: Mutex<HashMap<ProcessId, StdinState>>,
    killed: Mutex<HashMap<ProcessId, (ProcessInfo, ProcessOutput)>>,
}

/// The session and command ids of a process id, if it is one of ours.
fn parse(id: &ProcessId) -> Option<(&str, &str)> {
    let (session, cmd) = id.0.split_once(':')?;
    (session.starts_with(PROCESS_SESSION_PREFIX) && !cmd.is_empty()).then_some((session, cmd))
}

fn unknown(id: &ProcessId) -> SandboxError {
    SandboxError::not_found(format!("process {id}"))
}

fn slice(bytes: &[u8], since: u64) -> (Vec<u8>, u64) {
    let end = bytes.len() as u64;
    let from = usize::try_from(since.min(end)).unwrap_or(bytes.len());
    (bytes[from..].to_vec(), end)
}

/// The output after `since` of a process whose whole output so far is `stdout` and `stderr`.
fn output_since(
    stdout: &[u8],
    stderr: &[u8],
    since: OutputOffsets,
    state: ProcessState,
) -> ProcessOutput {
    let (stdout, out_end) = slice(stdout, since.stdout);
    let (stderr, err_end) = slice(stderr, since.stderr);
    ProcessOutput::new(
        stdout,
        stderr,
        OutputOffsets {
            stdout: out_end,
            stderr: err_end,
        },
        OutputOffsets::default(),
        state,
    )
}

/// [`ProcessManager`] of a [`super::DaytonaSandbox`].
pub(crate) struct DaytonaProcesses {
    shared: Arc<Shared>,
    book: ProcessBook,
}

impl DaytonaProcesses {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        DaytonaProcesses {
            shared,
            book: ProcessBook::default(),
        }
    }

    fn killed(&self, id: &ProcessId) -> Option<(ProcessInfo, ProcessOutput)> {
        lock(&self.book.killed).get(id).cloned()
    }

    /// Run `op` with the process's session handle, retried once if the sandbox stopped; a
    /// missing session or command is `NotFound` naming the process.
    async fn with_process<T, F, Fut>(&self, id: &ProcessId, op: F) -> Result<T>
    where
        F: Fn(Process, String, String) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, DaytonaError>>,
    {
        let Some((session, cmd)) = parse(id) else {
            return Err(unknown(id));
        };
        let op = &op;
        let result = self
            .shared
            .with_retry(|attached| async move {
                op(
                    attached.sandbox.process(),
                    session.to_string(),
                    cmd.to_string(),
                )
                .await
                .map_err(OpError::Daytona)
            })
            .await;
        result.map_err(|e| match e {
            SandboxError::NotFound { .. } => unknown(id),
            other => other,
        })
    }

    async fn info(&self, id: &ProcessId) -> Result<ProcessInfo> {
        if let Some((info, _)) = self.killed(id) {
            return Ok(info);
        }
        let record = self
            .with_process(
                id,
                |p, s, c| async move { p.get_session_command(&s, &c).await },
            )
            .await?;
        Ok(info_of(id, &record.command, record.exit_code))
    }
}

/// The process's own bytes in one stream of its log (`stored` is its session command text):
/// the exit trailer removed, base64 decoded where the wrapper encoded.
fn own_bytes(id: &ProcessId, stored: &str, logged: &str) -> Vec<u8> {
    let token = parse(id).map_or("", |(session, _)| session);
    let encoding = script::encoding_of(stored).unwrap_or_default();
    decode_all(logged.as_bytes(), token, encoding).0
}

fn info_of(id: &ProcessId, stored: &str, exit_code: Option<i32>) -> ProcessInfo {
    let started_at = parse(id)
        .and_then(|(session, _)| session_started_at(PROCESS_SESSION_PREFIX, session))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let command = script::user_line(stored).unwrap_or_else(|| stored.to_string());
    let state = match exit_code {
        Some(code) => ProcessState::Exited(code),
        None => ProcessState::Running,
    };
    ProcessInfo::new(id.clone(), command, state, started_at)
}

#[async_trait]
impl ProcessManager for DaytonaProcesses {
    async fn spawn(
        &self,
        command: &str,
        args: &[String],
        options: SpawnOptions,
    ) -> Result<ProcessInfo> {
        let line = build_command_line(command, args)?;
        // The same checks as for commands: absolute cwd, portable env names, no NUL bytes.
        let mut check = ExecuteCommandOptions::new().envs(options.env.clone());
        check.cwd = options.cwd.clone();
        check.validate()?;
        let shared = &*self.shared;
        shared.lifecycle.check_usable()?;
        let stdin = if options.stdin {
            StdinMode::Relay
        } else {
            StdinMode::Closed
        };
        let (line, env, cwd) = (&line, &options.env, options.cwd.as_deref());
        let id = shared
            .with_retry(|attached| async move {
                let start = NewSession {
                    prefix: PROCESS_SESSION_PREFIX,
                    line,
                    env,
                    cwd,
                    stdin,
                    // Always base64: a process's output is read back through the JSON log
                    // route, whose strings would turn invalid UTF-8 into U+FFFD and shift byte
                    // offsets; a long-running process does not notice the encoders' start-up
                    // cost.
                    encoding: OutputEncoding::Base64,
                    spare: false,
                };
                let (session, cmd_id) = start_in_new_session(shared, &attached, &start).await?;
                // The session outlives this call: it is the process's, until kill.
                Ok(ProcessId(format!("{}:{cmd_id}", session.keep())))
            })
            .await?;
        if options.stdin {
            lock(&self.book.stdin).insert(id.clone(), StdinState::Open);
        }
        shared.touch();
        Ok(ProcessInfo::new(
            id.clone(),
            line.clone(),
            ProcessState::Running,
            parse(&id)
                .and_then(|(s, _)| session_started_at(PROCESS_SESSION_PREFIX, s))
                .unwrap_or_else(Utc::now),
        ))
    }

    async fn get(&self, id: &ProcessId) -> Result<ProcessInfo> {
        self.shared.lifecycle.check_usable()?;
        self.info(id).await
    }

    async fn list(&self) -> Result<Vec<ProcessInfo>> {
        let shared = &*self.shared;
        shared.lifecycle.check_usable()?;
        let sessions = shared
            .with_retry(
                |attached| async move { Ok(attached.sandbox.process().list_sessions().await?) },
            )
            .await?;
        let mut out: Vec<ProcessInfo> = sessions
            .iter()
            .filter(|s| s.session_id.starts_with(PROCESS_SESSION_PREFIX))
            .filter_map(|s| {
                let cmd = s.commands.first()?;
                let id = ProcessId(format!("{}:{}", s.session_id, cmd.id));
                Some(info_of(&id, &cmd.command, cmd.exit_code))
            })
            .collect();
        for (info, _) in lock(&self.book.killed).values() {
            if !out.iter().any(|p| p.id == info.id) {
                out.push(info.clone());
            }
        }
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn output(&self, id: &ProcessId, since: OutputOffsets) -> Result<ProcessOutput> {
        self.shared.lifecycle.check_usable()?;
        if let Some((_, out)) = self.killed(id) {
            return Ok(output_since(&out.stdout, &out.stderr, since, out.state));
        }
        let (record, logs) = self.record_and_logs(id).await?;
        Ok(output_since(
            &own_bytes(id, &record.command, &logs.stdout),
            &own_bytes(id, &record.command, &logs.stderr),
            since,
            info_of(id, &record.command, record.exit_code).state,
        ))
    }

    async fn write_stdin(&self, id: &ProcessId, data: &[u8]) -> Result<()> {
        self.shared.lifecycle.check_usable()?;
        self.require_open_stdin(id).await?;
        for line in script::encode_stdin(data) {
            self.with_process(id, |p, s, c| {
                let line = line.clone();
                async move { p.send_session_command_input(&s, &c, &line).await }
            })
            .await?;
        }
        Ok(())
    }

    async fn close_stdin(&self, id: &ProcessId) -> Result<()> {
        self.shared.lifecycle.check_usable()?;
        self.require_open_stdin(id).await?;
        self.with_process(id, |p, s, c| async move {
            p.send_session_command_input(&s, &c, STDIN_EOF_LINE).await
        })
        .await?;
        lock(&self.book.stdin).insert(id.clone(), StdinState::Closed);
        Ok(())
    }

    async fn kill(&self, id: &ProcessId) -> Result<ProcessInfo> {
        self.shared.lifecycle.check_usable()?;
        if let Some((info, _)) = self.killed(id) {
            return Ok(info);
        }
        // Keep the last output and the state: the session delete takes them away.
        let (record, logs) = self.record_and_logs(id).await?;
        let was_running = record.exit_code.is_none();
        self.with_process(id, |p, s, _| async move {
            match p.delete_session(&s).await {
                Err(e) if e.is_not_found() => Ok(()),
                other => other,
            }
        })
        .await?;
        let code = if was_running {
            EXIT_KILLED
        } else {
            record.exit_code.unwrap_or(EXIT_KILLED)
        };
        let info = info_of(id, &record.command, Some(code));
        let output = ProcessOutput::new(
            own_bytes(id, &record.command, &logs.stdout),
            own_bytes(id, &record.command, &logs.stderr),
            OutputOffsets::default(),
            OutputOffsets::default(),
            ProcessState::Exited(code),
        );
        lock(&self.book.killed).insert(id.clone(), (info.clone(), output));
        lock(&self.book.stdin).remove(id);
        Ok(info)
    }

    /// The log WebSocket as a doorbell: it replays the log and then sends each new piece as
    /// it is written, so a frame (or the stream's end, when the process exits) means "look
    /// again", and the offsets are checked against [`ProcessManager::output`]. If the socket
    /// cannot be opened, this falls back to polling.
    async fn wait_for_change(
        &self,
        id: &ProcessId,
        seen: OutputOffsets,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        if self.output(id, seen).await?.has_news() {
            return Ok(());
        }
        let opened = self
            .with_process(id, |p, s, c| async move {
                p.follow_session_command_logs_raw(&s, &c).await
            })
            .await;
        let Ok(mut log) = opened else {
            let left = deadline.saturating_duration_since(Instant::now());
            return workspace_core::poll_for_change(self, id, seen, left).await;
        };
        loop {
            match tokio::time::timeout_at(deadline, log.next()).await {
                // The time is up, or the log ended (the process exited, or the socket dropped
                // and the caller's next read tells which): either way, answer.
                Err(_) | Ok(None) | Ok(Some(RawLogEvent::End(_))) => return Ok(()),
                Ok(Some(RawLogEvent::Data(_))) => {
                    // The replay arrives in a burst: take what is already there before asking.
                    while let Some(Some(event)) = log.next().now_or_never() {
                        if matches!(event, RawLogEvent::End(_)) {
                            return Ok(());
                        }
                    }
                    if self.output(id, seen).await?.has_news() {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn wait(&self, id: &ProcessId, timeout: Option<Duration>) -> Result<ProcessInfo> {
        self.shared.lifecycle.check_usable()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut pause = FIRST_WAIT_POLL;
        loop {
            let info = self.info(id).await?;
            if info.state != ProcessState::Running {
                return Ok(info);
            }
            let nap = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(info);
                    }
                    pause.min(left)
                }
                None => pause,
            };
            tokio::time::sleep(nap).await;
            pause = (pause * 3 / 2).min(MAX_WAIT_POLL);
        }
    }
}

impl DaytonaProcesses {
    /// The process's command record and its log, the record first: if it shows an exit, the
    /// log read after it is complete.
    async fn record_and_logs(
        &self,
        id: &ProcessId,
    ) -> Result<(Command, SessionCommandLogsResponse)> {
        self.with_process(id, |p, s, c| async move {
            let record = p.get_session_command(&s, &c).await?;
            let logs = p.get_session_command_logs(&s, &c).await?;
            Ok((record, logs))
        })
        .await
    }

    /// Stdin must be the relay and still open. For a process another handle spawned, the
    /// stored command text says whether it relays stdin.
    async fn require_open_stdin(&self, id: &ProcessId) -> Result<()> {
        if self.killed(id).is_some() {
            return Err(SandboxError::invalid(
                "id",
                format!("process {id} was killed"),
            ));
        }
        let known = lock(&self.book.stdin).get(id).copied();
        match known {
            Some(StdinState::Open) => Ok(()),
            Some(StdinState::Closed) => Err(SandboxError::invalid(
                "id",
                format!("the stdin of process {id} is closed"),
            )),
            None => {
                let record = self
                    .with_process(
                        id,
                        |p, s, c| async move { p.get_session_command(&s, &c).await },
                    )
                    .await?;
                if script::relays_stdin(&record.command) {
                    Ok(())
                } else {
                    Err(SandboxError::invalid(
                        "id",
                        format!("process {id} was not spawned with stdin open"),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ids_are_not_ours() {
        let id = ProcessId::from("ws-proc-1700000000000-0a0b0c0d:3f2a-cmd");
        assert_eq!(
            parse(&id),
            Some(("ws-proc-1700000000000-0a0b0c0d", "3f2a-cmd"))
        );
        let info = info_of(&id, "echo hi", None);
        assert_eq!(info.started_at.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(info.state, ProcessState::Running);
        for foreign in [
            "ws-cmd-1-2:x",
            "nope",
            "ws-proc-1-2:",
            "ws-conformance-unknown-1",
        ] {
            assert_eq!(parse(&ProcessId::from(foreign)), None, "{foreign}");
        }
    }

    #[test]
    fn slices_clamp() {
        assert_eq!(slice(b"hello", 2), (b"llo".to_vec(), 5));
        assert_eq!(slice(b"hello", 99), (Vec::new(), 5));
    }
}
