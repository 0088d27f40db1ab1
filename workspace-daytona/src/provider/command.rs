//! `execute_command`: one Daytona session per command, launched (and retried once if the
//! sandbox stopped) until the server accepts it, then followed to its exit code, timed out,
//! cancelled, and cleaned up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use daytona_api::toolbox::SessionExecuteRequest;
use futures::StreamExt;
use tokio::time::Instant;
use workspace_core::{
    CancellationToken, CommandResult, EXIT_KILLED, ExecuteCommandOptions, Result, SandboxError,
    Stdin, build_command_line,
};

use crate::error::DaytonaError;
use crate::follow::RawLogEvent;
use crate::process::Process;

use super::collector::Collector;
use super::deadline::sleep_until;
use super::keepalive::{keepalive, keepalive_period};
use super::resident::{self, Outcome};
use super::script::{self, OutputEncoding, STDIN_EOF_LINE, StdinMode, Wrap};
use super::session::{COMMAND_SESSION_PREFIX, SessionGuard, new_session_id};
use super::shared::{Attached, OpError, Shared};

/// How long to wait for the exit code once the log stream ended normally (the daemon records
/// it as the stream closes; this only bridges the gap).
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(10);
/// Consecutive log-stream failures (without the command finishing) before switching to
/// polling the log over HTTP.
const MAX_FOLLOW_FAILURES: u32 = 5;
/// Pause between polls of the log once the stream is given up on.
const LOG_POLL: Duration = Duration::from_millis(250);
/// How long a timeout or cancel waits for the session delete that kills the command.
const KILL_WAIT: Duration = Duration::from_secs(30);
/// Largest input request: a few relay lines.
const INPUT_BATCH: usize = 256 * 1024;

/// A command the server accepted.
struct Launched {
    attached: Arc<Attached>,
    session: SessionGuard,
    cmd_id: String,
    /// How its wrapper sends the output (what reading it back must undo).
    encoding: OutputEncoding,
    /// When the server accepted it: the timeout counts from here.
    started: Instant,
}

/// Run one command; see [`super::DaytonaSandbox`] for the contract.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    command: &str,
    args: &[String],
    options: ExecuteCommandOptions,
) -> Result<CommandResult> {
    options.validate()?;
    let line = build_command_line(command, args)?;
    shared.lifecycle.check_usable()?;
    let cancel = options.cancel.clone().unwrap_or_default();
    let (stdin_mode, input) = match &options.stdin {
        Stdin::Closed => (StdinMode::Closed, None),
        Stdin::Bytes(data) => (StdinMode::Relay, Some(data.clone())),
    };
    shared.touch();
    if input.is_none() && shared.builder().resident_shell {
        let attached = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                return Ok(CommandResult::new(EXIT_KILLED, String::new(), String::new(), Duration::ZERO)
                    .into_killed());
            }
            attached = shared.attached() => attached?,
        };
        if let Outcome::Done(result) =
            resident::run(shared, &attached, &line, &options, &cancel).await
        {
            shared.touch();
            return result;
        }
    }
    let launched = tokio::select! {
        biased;
        // Cancelled before the server accepted anything: nothing ran (a session created by
        // then is deleted by its guard).
        _ = cancel.cancelled() => {
            return Ok(CommandResult::new(EXIT_KILLED, String::new(), String::new(), Duration::ZERO)
                .into_killed());
        }
        launched = launch(shared, &line, &options.env, options.cwd.as_deref(), stdin_mode) => launched?,
    };
    let result = follow_to_end(shared, launched, &options, input, &cancel).await;
    shared.touch();
    result
}

/// Create the session and submit the command, retrying once (on a fresh session) if the
/// sandbox turned out to be stopped. Returns once the server gave a command id.
async fn launch(
    shared: &Arc<Shared>,
    line: &str,
    env: &BTreeMap<String, String>,
    cwd: Option<&str>,
    stdin: StdinMode,
) -> Result<Launched> {
    shared
        .with_retry(|attached| async move {
            let encoding = shared.builder().output_encoding();
            let start = NewSession {
                prefix: COMMAND_SESSION_PREFIX,
                line,
                env,
                cwd,
                stdin,
                encoding,
                spare: shared.builder().spare_session,
            };
            let (session, cmd_id) = start_in_new_session(shared, &attached, &start).await?;
            Ok(Launched {
                attached,
                session,
                cmd_id,
                encoding,
                started: Instant::now(),
            })
        })
        .await
}

/// A command line to start in a session of its own.
pub(crate) struct NewSession<'a> {
    /// What the session id starts with (commands and background processes differ).
    pub(crate) prefix: &'static str,
    pub(crate) line: &'a str,
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) cwd: Option<&'a str>,
    pub(crate) stdin: StdinMode,
    pub(crate) encoding: OutputEncoding,
    /// Take the attachment's spare session when one is ready, and have the next one made
    /// (commands only: a background process's session id carries its own start time).
    pub(crate) spare: bool,
}

/// Create a session (or take the spare) and start `start` in it, once: the session (deleted
/// when the guard goes, so a failure leaves none behind) and the command id.
pub(crate) async fn start_in_new_session(
    shared: &Shared,
    attached: &Arc<Attached>,
    start: &NewSession<'_>,
) -> std::result::Result<(SessionGuard, String), OpError> {
    // The log follow after the exec needs a connection of its own: make it now, beside the
    // requests before it.
    attached.sandbox.process().preconnect().await;
    if start.spare
        && let Some(session) = attached.spare.take()
    {
        let dir = shared.working_dir(attached, start.cwd).await?;
        match exec_in(attached, &session, start, &dir).await {
            // The spare vanished (the sandbox was restarted underneath): nothing ran, so a
            // fresh session is safe.
            Err(OpError::Daytona(DaytonaError::NotFound(d))) => {
                tracing::debug!(error = %d.message, "the spare session is gone; making a new one");
                session.keep();
            }
            Ok(cmd_id) => {
                attached.spare.refill(attached.sandbox.process());
                return Ok((session, cmd_id));
            }
            Err(e) => return Err(e),
        }
    }
    let process = attached.sandbox.process();
    let session_id = new_session_id(start.prefix);
    // Independent requests: the first command of a handle pays one round trip, not two.
    let (dir, created) = tokio::join!(
        shared.working_dir(attached, start.cwd),
        process.create_session(&session_id)
    );
    created?;
    let session = SessionGuard::new(process.clone(), session_id);
    let dir = dir?;
    let cmd_id = exec_in(attached, &session, start, &dir).await?;
    if start.spare {
        // Made while this command runs, off its path; not before its exec succeeded, so a
        // sandbox that refuses commands is not also sent creates.
        attached.spare.refill(attached.sandbox.process());
    }
    Ok((session, cmd_id))
}

/// Submit `start`, wrapped, to run asynchronously in `session` from `dir`; the command id.
async fn exec_in(
    attached: &Attached,
    session: &SessionGuard,
    start: &NewSession<'_>,
    dir: &str,
) -> std::result::Result<String, OpError> {
    let request = SessionExecuteRequest {
        command: script::build(&Wrap {
            line: start.line,
            env: start.env,
            cwd: dir,
            stdin: start.stdin,
            encoding: start.encoding,
            token: session.id(),
        }),
        run_async: Some(true),
        // The daemon copies what `/input` sends into the command's log as stdout unless told
        // not to; stdin relayed to the command is not its output.
        suppress_input_echo: Some(true),
        ..SessionExecuteRequest::default()
    };
    let response = attached
        .sandbox
        .process()
        .execute_session_command(session.id(), &request, None)
        .await?;
    if response.cmd_id.trim().is_empty() {
        return Err(OpError::Final(SandboxError::Provider {
            status: None,
            code: None,
            message: "the session exec answer has no command id".into(),
        }));
    }
    Ok(response.cmd_id)
}

/// How a followed command ended.
enum Ending {
    Exited(std::result::Result<i32, OpError>),
    TimedOut,
    Cancelled,
}

async fn follow_to_end(
    shared: &Arc<Shared>,
    launched: Launched,
    options: &ExecuteCommandOptions,
    input: Option<Vec<u8>>,
    cancel: &CancellationToken,
) -> Result<CommandResult> {
    let Launched {
        attached,
        session,
        cmd_id,
        encoding,
        started,
    } = launched;
    let process = attached.sandbox.process();
    let session_id = session.id().to_string();
    let limit = options.timeout.resolve(shared.builder().default_timeout);
    let mut collector = Collector::new(
        options.effective_output_limit(),
        options.on_stdout.clone(),
        options.on_stderr.clone(),
        &session_id,
        encoding,
    );
    let ending = {
        let work = async {
            let feed = feed_stdin(&process, &session_id, &cmd_id, input);
            let follow = follow(&process, &session_id, &cmd_id, &mut collector);
            tokio::try_join!(feed, follow).map(|((), code)| code)
        };
        let timer = sleep_until(limit.map(|limit| started + limit));
        let period = keepalive_period(shared, &attached.sandbox);
        tokio::select! {
            code = work => Ending::Exited(code),
            () = timer => Ending::TimedOut,
            () = cancel.cancelled() => Ending::Cancelled,
            never = keepalive(&attached.sandbox, period) => match never {},
        }
    };
    // A command whose exit trailers came in had finished by itself, even if the timer or a
    // cancel won the race with the rest of the work (stdin still being sent).
    let ending = match (ending, collector.exit_code()) {
        (Ending::TimedOut | Ending::Cancelled, Some(code)) => Ending::Exited(Ok(code)),
        (ending, _) => ending,
    };
    let finish = |collector: Collector| {
        let c = collector.finish();
        CommandResult::new(0, c.stdout, c.stderr, started.elapsed())
            .with_dropped(c.stdout_dropped, c.stderr_dropped)
    };
    match ending {
        Ending::Exited(Ok(code)) => {
            session.delete_in_background();
            if shared.builder().resident_shell {
                attached.resident.warm(attached.sandbox.process());
            }
            let mut result = finish(collector);
            result.exit_code = code;
            result.success = code == 0;
            Ok(result)
        }
        Ending::TimedOut => {
            session.delete_now(KILL_WAIT).await;
            Ok(finish(collector).into_timed_out())
        }
        Ending::Cancelled => {
            session.delete_now(KILL_WAIT).await;
            Ok(finish(collector).into_killed())
        }
        Ending::Exited(Err(OpError::Final(e))) => {
            session.delete_now(KILL_WAIT).await;
            Err(e)
        }
        Ending::Exited(Err(OpError::Daytona(e))) => {
            session.delete_now(KILL_WAIT).await;
            if shared.confirm_unavailable(&attached, &e).await {
                Err(SandboxError::Provider {
                    status: e.status(),
                    code: Some("COMMAND_INTERRUPTED".into()),
                    message: format!(
                        "the sandbox stopped while the command was running, so its outcome is \
                         unknown; it was not run again ({e})"
                    ),
                })
            } else {
                Err(e.into())
            }
        }
    }
}

/// Send stdin through the relay, then close it. A command that finished without reading all
/// of it is not an error.
async fn feed_stdin(
    process: &Process,
    session_id: &str,
    cmd_id: &str,
    input: Option<Vec<u8>>,
) -> std::result::Result<(), OpError> {
    let Some(data) = input else {
        return Ok(());
    };
    let mut lines = script::encode_stdin(&data);
    lines.push(STDIN_EOF_LINE.to_string());
    let mut batch = String::new();
    for (i, line) in lines.iter().enumerate() {
        batch.push_str(line);
        let last = i + 1 == lines.len();
        if !last && batch.len() + lines[i + 1].len() <= INPUT_BATCH {
            continue;
        }
        match process
            .send_session_command_input(session_id, cmd_id, &batch)
            .await
        {
            Ok(()) => batch.clear(),
            Err(DaytonaError::Gone(_)) => return Ok(()),
            Err(e) => return Err(OpError::Daytona(e)),
        }
    }
    Ok(())
}

/// Follow the log into `collector` until the command has exited; its exit code.
///
/// The exit code comes from the wrapper's trailers once both are in, else from the command
/// record. The stream is best effort: when it drops, the command record says whether the
/// command finished (then the rest of the log is read over HTTP) or still runs (then the log is
/// followed again, resuming after the bytes already seen). After repeated failures the log is
/// polled over HTTP instead.
async fn follow(
    process: &Process,
    session_id: &str,
    cmd_id: &str,
    collector: &mut Collector,
) -> std::result::Result<i32, OpError> {
    let mut failures = 0u32;
    loop {
        let before = collector.consumed();
        let mut complete = false;
        match process
            .follow_session_command_logs_raw(session_id, cmd_id)
            .await
        {
            Ok(mut stream) => {
                let mut at = 0u64;
                while let Some(event) = stream.next().await {
                    match event {
                        RawLogEvent::Data(bytes) => {
                            collector.feed_at(at, &bytes);
                            at += bytes.len() as u64;
                            if collector.exit_code().is_some() {
                                // The command exited and all it wrote is in (the trailers
                                // follow its output on the same pipes). Not waiting for the
                                // daemon to close the log saves its exit polling, and no
                                // process the command left holding the output can hold the
                                // result; the session delete stops such processes.
                                break;
                            }
                        }
                        RawLogEvent::End(end) => {
                            complete = end.is_complete();
                            if !complete {
                                tracing::debug!(?end, "the log stream ended early");
                            }
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "opening the log stream failed"),
        }
        if let Some(code) = collector.exit_code() {
            return Ok(code);
        }
        if complete {
            return exit_code(process, session_id, cmd_id).await;
        }
        let record = process.get_session_command(session_id, cmd_id).await?;
        if let Some(code) = record.exit_code {
            let logs = process.get_session_command_logs(session_id, cmd_id).await?;
            // The JSON log is the raw log only where it holds no U+FFFD (Daytona replaces
            // invalid UTF-8 with it); else resuming at a byte offset could skip or repeat
            // bytes, so the stream, which carries raw bytes, is followed again instead.
            if collector.consumed() == 0 || !logs.output.contains('\u{FFFD}') {
                collector.feed_at(0, logs.output.as_bytes());
                return Ok(code);
            }
        }
        failures = if collector.consumed() > before {
            1
        } else {
            failures + 1
        };
        if failures > MAX_FOLLOW_FAILURES {
            tracing::warn!(
                session = session_id,
                "the log stream keeps failing; polling the log instead"
            );
            return poll_log(process, session_id, cmd_id, collector).await;
        }
        tokio::time::sleep(Duration::from_millis(50) * 2u32.pow(failures.min(5))).await;
    }
}

/// The exit code of a command whose log stream closed normally, waiting briefly if the record
/// lags; never a made-up code.
async fn exit_code(
    process: &Process,
    session_id: &str,
    cmd_id: &str,
) -> std::result::Result<i32, OpError> {
    let deadline = Instant::now() + EXIT_RECORD_WAIT;
    let mut pause = Duration::from_millis(20);
    loop {
        let record = process.get_session_command(session_id, cmd_id).await?;
        if let Some(code) = record.exit_code {
            return Ok(code);
        }
        if Instant::now() >= deadline {
            return Err(OpError::Final(SandboxError::Provider {
                status: None,
                code: None,
                message: format!(
                    "the log of command {cmd_id} ended, but the server reported no exit code \
                     within {EXIT_RECORD_WAIT:?}"
                ),
            }));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Read the log over HTTP until the command exits.
async fn poll_log(
    process: &Process,
    session_id: &str,
    cmd_id: &str,
    collector: &mut Collector,
) -> std::result::Result<i32, OpError> {
    loop {
        // The record first: once it shows an exit code, a log read after it is complete.
        let record = process.get_session_command(session_id, cmd_id).await?;
        let logs = process.get_session_command_logs(session_id, cmd_id).await?;
        collector.feed_at(0, logs.output.as_bytes());
        if let Some(code) = record.exit_code.or_else(|| collector.exit_code()) {
            return Ok(code);
        }
        tokio::time::sleep(LOG_POLL).await;
    }
}
