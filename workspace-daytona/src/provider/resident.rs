//! The resident shell: one long-lived session command per attachment that runs a handle's
//! commands one after another, so a warm command costs one request on a pooled connection and
//! no new connection.
//!
//! Why: a command in a session of its own needs its exec and then a log WebSocket, and a
//! WebSocket takes a connection of its own (the upgrade consumes it). Over a real network that
//! is a TCP and TLS handshake plus the upgrade on every command, three round trips more than
//! the exec. Here the log of one session command — a shell loop ([`script::resident_loop`]) —
//! is followed once, over one WebSocket kept open for the attachment, and each command is one
//! `POST …/input` line carrying the same wrapped script a per-command session would run
//! ([`script::resident_input`]). Its output arrives on the open socket.
//!
//! How a command's output is told apart on the shared stream: each job prints a start marker
//! with its token on both streams before anything else, and the usual exit trailers at its
//! end. Bytes before the start marker (what an earlier command's leftovers printed before the
//! loop killed them) and after the trailer are part of no command and are dropped.
//!
//! Only daemon routes of Daytona v0.190 are used: session create, session exec with
//! `runAsync` and `suppressInputEcho`, command input, the log follow WebSocket, session delete
//! and `/process/execute` (to signal a timed-out job's process group).
//!
//! What falls back to the per-command path: commands with stdin (the relay reads the session
//! command's stdin, which here carries jobs), concurrent commands (one runs on the resident
//! shell at a time), a job too long for one argument, and any command while the shell is being
//! made or replaced.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use workspace_core::{CancellationToken, CommandResult, ExecuteCommandOptions, Result};

use crate::demux::OutputStream;
use crate::error::DaytonaError;
use crate::process::{ExecuteOptions, Process};

use super::collector::Collector;
use super::deadline::sleep_until;
use super::keepalive::{keepalive, keepalive_period};
use super::output::marker_prefix;
use super::script::{self, START_TAG, StdinMode, Wrap};
use super::session::new_session_id;
use super::shared::{Attached, OpError, Shared};
use super::shell::{Channel, Piece};

/// Longest job sent as one input line (it becomes one shell argument in the sandbox).
const MAX_JOB_LINE: usize = 96 * 1024;
/// How long a timed-out job's process group gets between SIGTERM and SIGKILL.
const KILL_GRACE_TENTHS: u32 = 20;
/// Bound on the request that kills a timed-out job.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// Finds a job's start marker in one stream and passes on only what follows it.
struct StartGate {
    /// `\x1e ws-start <token> `.
    prefix: Vec<u8>,
    held: Vec<u8>,
    open: bool,
    /// The job's process group as the marker gave it (`None` before it, or `-`).
    group: Option<u32>,
}

impl StartGate {
    fn new(token: &str) -> Self {
        StartGate {
            prefix: marker_prefix(START_TAG, token),
            held: Vec::new(),
            open: false,
            group: None,
        }
    }

    /// What of `bytes` belongs to the job.
    fn pass<'a>(&mut self, bytes: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        if self.open {
            return Some(std::borrow::Cow::Borrowed(bytes));
        }
        self.held.extend_from_slice(bytes);
        let Some(at) = memchr::memmem::find(&self.held, &self.prefix) else {
            // Keep only what could still begin a marker.
            let keep = self.prefix.len().min(self.held.len());
            self.held.drain(..self.held.len() - keep);
            return None;
        };
        let rest = &self.held[at + self.prefix.len()..];
        let Some(end) = memchr::memmem::find(rest, b"\x1e\n") else {
            if rest.len() > 24 {
                // Not a marker after all (nothing of ours is that long): look further on.
                self.held.drain(..=at);
            } else {
                self.held.drain(..at);
            }
            return None;
        };
        self.group = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|g| g.parse::<u32>().ok())
            .filter(|g| *g > 1);
        let after = rest[end + 2..].to_vec();
        self.held.clear();
        self.open = true;
        Some(std::borrow::Cow::Owned(after))
    }
}

/// How a resident run went.
pub(crate) enum Outcome {
    /// The command ran (or failed in a way that must not be retried): its result.
    Done(Result<CommandResult>),
    /// Nothing ran: take the per-command path.
    NotRun,
}

/// How the command ended.
enum Ending {
    Exited(i32),
    TimedOut,
    Cancelled,
    Broken(String),
    /// The shell had ended before the job started: nothing ran.
    Gone,
    /// The input was refused before it reached the shell.
    Refused(DaytonaError),
    /// The input request failed in a way that leaves open whether it arrived.
    Failed(DaytonaError),
}

/// Run one command on the attachment's resident shell when one is ready; else
/// [`Outcome::NotRun`]. (The per-command path makes a shell once its command is done, so the
/// making never competes with a handle's first command for connections.)
pub(crate) async fn run(
    shared: &Arc<Shared>,
    attached: &Arc<Attached>,
    line: &str,
    options: &ExecuteCommandOptions,
    cancel: &CancellationToken,
) -> Outcome {
    let Some(channel) = attached.resident.take() else {
        return Outcome::NotRun;
    };
    let dir = match shared.working_dir(attached, options.cwd.as_deref()).await {
        Ok(dir) => dir,
        Err(OpError::Final(e)) => {
            attached
                .resident
                .put_back(attached.sandbox.process(), channel);
            return Outcome::Done(Err(e));
        }
        Err(OpError::Daytona(e)) => {
            tracing::debug!(error = %e, "no working directory for the resident shell");
            attached
                .resident
                .put_back(attached.sandbox.process(), channel);
            return Outcome::NotRun;
        }
    };
    let token = new_session_id("ws-job-");
    let encoding = shared.builder().output_encoding();
    let input = script::resident_input(&Wrap {
        line,
        env: &options.env,
        cwd: &dir,
        stdin: StdinMode::Closed,
        encoding,
        token: &token,
    });
    if input.len() > MAX_JOB_LINE {
        attached
            .resident
            .put_back(attached.sandbox.process(), channel);
        return Outcome::NotRun;
    }
    let mut collector = Collector::new(
        options.effective_output_limit(),
        options.on_stdout.clone(),
        options.on_stderr.clone(),
        &token,
        encoding,
    )
    .for_resident_job();
    let started = Instant::now();
    let limit = options.timeout.resolve(shared.builder().default_timeout);
    let (channel, ending, group) = drive(
        shared,
        attached,
        channel,
        &token,
        &input,
        &mut collector,
        limit,
        cancel,
    )
    .await;
    let finish = |collector: Collector| {
        let c = collector.finish();
        CommandResult::new(0, c.stdout, c.stderr, started.elapsed())
            .with_dropped(c.stdout_dropped, c.stderr_dropped)
    };
    match ending {
        Ending::Exited(code) => {
            attached
                .resident
                .put_back(attached.sandbox.process(), channel);
            let mut result = finish(collector);
            result.exit_code = code;
            result.success = code == 0;
            Outcome::Done(Ok(result))
        }
        Ending::TimedOut | Ending::Cancelled => {
            let killed = match group {
                Some(group) => kill_group(&attached.sandbox.process(), group).await,
                None => false,
            };
            if killed {
                attached
                    .resident
                    .put_back(attached.sandbox.process(), channel);
            } else {
                // The job's group is unknown (no `setsid`, or it never started): the session
                // goes, with everything in it.
                channel.delete_now().await;
                attached.resident.warm(attached.sandbox.process());
            }
            let result = finish(collector);
            Outcome::Done(Ok(if matches!(ending, Ending::TimedOut) {
                result.into_timed_out()
            } else {
                result.into_killed()
            }))
        }
        Ending::Gone => {
            drop(channel);
            attached.resident.warm(attached.sandbox.process());
            Outcome::NotRun
        }
        Ending::Refused(e) => {
            tracing::debug!(error = %e, "the resident shell refused a command; making a new one");
            drop(channel);
            attached.resident.warm(attached.sandbox.process());
            Outcome::NotRun
        }
        Ending::Broken(reason) => {
            channel.delete_now().await;
            attached.resident.warm(attached.sandbox.process());
            Outcome::Done(Err(interrupted(&reason)))
        }
        Ending::Failed(e) => {
            channel.delete_now().await;
            attached.resident.warm(attached.sandbox.process());
            if shared.confirm_unavailable(attached, &e).await {
                Outcome::Done(Err(interrupted(&e.to_string())))
            } else {
                Outcome::Done(Err(e.into()))
            }
        }
    }
}

fn interrupted(why: &str) -> workspace_core::SandboxError {
    workspace_core::SandboxError::Provider {
        status: None,
        code: Some("COMMAND_INTERRUPTED".into()),
        message: format!(
            "the command's output stream broke ({why}), so its outcome is unknown; it was \
             stopped and not run again"
        ),
    }
}

/// Send the job and read its output until it exits, times out or is cancelled; the channel
/// back, how it ended, and the job's process group if its start marker named one.
#[allow(clippy::too_many_arguments)]
async fn drive(
    shared: &Shared,
    attached: &Attached,
    mut channel: Channel,
    token: &str,
    input: &str,
    collector: &mut Collector,
    limit: Option<Duration>,
    cancel: &CancellationToken,
) -> (Channel, Ending, Option<u32>) {
    let process = attached.sandbox.process();
    let session_id = channel.session_id().to_string();
    let cmd_id = channel.cmd_id.clone();
    let mut gates = [StartGate::new(token), StartGate::new(token)];
    let deadline = limit.map(|l| Instant::now() + l);
    let period = keepalive_period(shared, &attached.sandbox);
    let send = process.send_session_command_input(&session_id, &cmd_id, input);
    tokio::pin!(send);
    let mut sent = false;
    let ending = {
        let inbox = &mut channel.inbox;
        let read = async {
            loop {
                let Some(piece) = inbox.recv().await else {
                    return Ending::Broken("the follow stopped".into());
                };
                match piece {
                    Piece::Broken(_, true) if !gates.iter().any(|g| g.open) => {
                        return Ending::Gone;
                    }
                    Piece::Broken(reason, _) => return Ending::Broken(reason),
                    Piece::Data(stream, bytes) => {
                        let gate = &mut gates[usize::from(stream == OutputStream::Stderr)];
                        if collector.stream_done(stream) {
                            continue;
                        }
                        if let Some(ours) = gate.pass(&bytes) {
                            collector.push_stream(stream, &ours);
                        }
                        if let Some(code) = collector.exit_code() {
                            return Ending::Exited(code);
                        }
                    }
                }
            }
        };
        tokio::pin!(read);
        loop {
            tokio::select! {
                biased;
                answer = &mut send, if !sent => {
                    sent = true;
                    match answer {
                        Ok(()) => {}
                        Err(e) if e.status().is_some() => break Ending::Refused(e),
                        Err(e) => break Ending::Failed(e),
                    }
                }
                ending = &mut read => break ending,
                () = sleep_until(deadline) => break Ending::TimedOut,
                () = cancel.cancelled() => break Ending::Cancelled,
                never = keepalive(&attached.sandbox, period) => match never {},
            }
        }
    };
    let group = gates[0].group.or(gates[1].group);
    // A refusal after the job visibly started is not a refusal (the daemon took it).
    let ending = match ending {
        Ending::Refused(e) if gates.iter().any(|g| g.open) => Ending::Failed(e),
        other => other,
    };
    (channel, ending, group)
}

/// SIGTERM the job's process group, give it a grace period, then SIGKILL; whether the kill
/// was carried out (the group is gone).
async fn kill_group(process: &Process, group: u32) -> bool {
    let script = format!(
        "kill -15 -{group} 2>/dev/null; i=0; while [ $i -lt {KILL_GRACE_TENTHS} ] && \
         kill -0 -{group} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; \
         kill -9 -{group} 2>/dev/null; true"
    );
    match tokio::time::timeout(KILL_WAIT, process.execute(&script, &ExecuteOptions::new())).await {
        Ok(Ok(r)) if r.exit_code == 0 => true,
        Ok(Ok(r)) => {
            tracing::warn!(code = r.exit_code, "killing a job's process group failed");
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "killing a job's process group failed");
            false
        }
        Err(_) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_opens_at_the_marker_in_any_split() {
        let stream = b"left\x1ews-start tok 4242\x1e\nours\n";
        for i in 0..=stream.len() {
            let mut gate = StartGate::new("tok");
            let mut got = Vec::new();
            for part in [&stream[..i], &stream[i..]] {
                if let Some(b) = gate.pass(part) {
                    got.extend_from_slice(&b);
                }
            }
            assert_eq!(got, b"ours\n", "split at {i}");
            assert_eq!(gate.group, Some(4242));
        }
    }

    #[test]
    fn other_tokens_and_look_alikes_stay_shut() {
        let mut gate = StartGate::new("tok");
        assert!(gate.pass(b"\x1ews-start other 1\x1e\nx").is_none());
        assert!(gate.pass(b"\x1ews-start tok ").is_none());
        assert!(gate.pass(&[b'9'; 40]).is_none());
        assert!(!gate.open);
        let b = gate.pass(b"\x1ews-start tok -\x1e\nyes").unwrap();
        assert_eq!(&*b, b"yes");
        assert_eq!(gate.group, None);
    }
}
