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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use daytona_api::toolbox::SessionExecuteRequest;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use workspace_core::{CancellationToken, CommandResult, ExecuteCommandOptions, Result};

use crate::demux::{OutputStream, RawDemuxer};
use crate::error::DaytonaError;
use crate::follow::RawLogEvent;
use crate::process::{ExecuteOptions, Process};

use super::collector::Collector;
use super::command::{keepalive, keepalive_period, working_dir};
use super::output::marker_prefix;
use super::sandbox::{Attached, OpError, Shared, lock};
use super::script::{self, START_TAG, StdinMode, Wrap};
use super::session::{SessionGuard, new_session_id};

/// Prefix of resident shell sessions.
pub(crate) const RESIDENT_SESSION_PREFIX: &str = "ws-sh-";
/// Once the shell's log has grown past this, the shell is replaced after the command that
/// crossed it: a follow that has to reconnect replays the log from its start.
const RECYCLE_AFTER: u64 = 8 << 20;
/// Longest job sent as one input line (it becomes one shell argument in the sandbox).
const MAX_JOB_LINE: usize = 96 * 1024;
/// Reconnects of the log follow in a row that bring nothing before the shell is given up.
const MAX_RECONNECTS: u32 = 5;
/// Split stream pieces buffered between the follow and the command reading them.
const INBOX: usize = 256;
/// How long a timed-out job's process group gets between SIGTERM and SIGKILL.
const KILL_GRACE_TENTHS: u32 = 20;
/// Bound on the request that kills a timed-out job.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// Resident shells that could not be made in a row before an attachment stops trying.
const MAX_WARM_FAILURES: u32 = 3;

/// The resident shell of one attachment: ready, in use, being made, or not wanted any more.
#[derive(Default)]
pub(crate) struct ResidentSlot {
    state: Arc<std::sync::Mutex<SlotState>>,
}

#[derive(Default)]
struct SlotState {
    ready: Option<Channel>,
    /// A command has the shell.
    busy: bool,
    warming: bool,
    /// Makes that failed in a row.
    failures: u32,
    /// The sandbox stopped or was deleted: its sessions went with it.
    closed: bool,
}

impl ResidentSlot {
    /// The ready shell, marked busy until it is put back or dropped.
    fn take(&self) -> Option<Channel> {
        let mut state = lock(&self.state);
        let mut channel = state.ready.take()?;
        if channel.follow.is_finished() {
            // Its log ended while it sat idle (the sandbox restarted underneath, say).
            drop(state);
            drop(channel);
            return None;
        }
        state.busy = true;
        channel.lease = Some(self.state.clone());
        Some(channel)
    }

    /// Hand a channel back after a command; replaced instead when its log has grown large.
    fn put_back(&self, attached: &Arc<Attached>, mut channel: Channel) {
        channel.lease = None;
        let recycle = channel.log_bytes.load(Ordering::Relaxed) > RECYCLE_AFTER;
        let unwanted = {
            let mut state = lock(&self.state);
            state.busy = false;
            if state.closed {
                Some((channel, true))
            } else if recycle || state.ready.is_some() {
                Some((channel, false))
            } else {
                state.ready = Some(channel);
                None
            }
        };
        match unwanted {
            Some((channel, true)) => channel.forget(),
            Some((channel, false)) => {
                drop(channel);
                warm(attached);
            }
            None => {}
        }
    }

    /// The sandbox's sessions are gone with it: forget the shell without a delete.
    pub(crate) fn close(&self) {
        let channel = {
            let mut state = lock(&self.state);
            state.closed = true;
            state.ready.take()
        };
        if let Some(channel) = channel {
            channel.forget();
        }
    }
}

/// A piece of the shell's log, split by stream, or the end of the follow.
enum Piece {
    Data(OutputStream, Bytes),
    /// The follow cannot go on: the loop ended (`true`: the daemon closed its log, so it
    /// reads no more input), or its state is unknown.
    Broken(String, bool),
}

/// One resident shell: its session (deleted when dropped), the loop's command id and the
/// pieces its follow delivers.
pub(crate) struct Channel {
    session: Option<SessionGuard>,
    cmd_id: String,
    inbox: mpsc::Receiver<Piece>,
    follow: JoinHandle<()>,
    /// Log bytes received so far.
    log_bytes: Arc<AtomicU64>,
    /// The slot this channel was taken from, freed when it is dropped in use.
    lease: Option<Arc<std::sync::Mutex<SlotState>>>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.follow.abort();
        if let Some(slot) = self.lease.take() {
            lock(&slot).busy = false;
        }
    }
}

impl Channel {
    fn session_id(&self) -> &str {
        self.session.as_ref().map_or("", SessionGuard::id)
    }

    /// The session is gone already (the sandbox went): stop following, delete nothing.
    fn forget(mut self) {
        if let Some(guard) = self.session.take() {
            guard.keep();
        }
    }

    /// Delete the session now (which kills whatever runs in it), bounded.
    async fn delete_now(mut self) {
        if let Some(guard) = self.session.take() {
            guard.delete_now(KILL_WAIT).await;
        }
    }
}

/// Make a resident shell for `attached` in the background, unless one is ready or on its way.
pub(crate) fn warm(attached: &Arc<Attached>) {
    {
        let mut state = lock(&attached.resident.state);
        if state.closed
            || state.warming
            || state.busy
            || state.ready.is_some()
            || state.failures >= MAX_WARM_FAILURES
        {
            return;
        }
        state.warming = true;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        lock(&attached.resident.state).warming = false;
        return;
    };
    let attached = attached.clone();
    runtime.spawn(async move {
        let made = open(attached.sandbox.process()).await;
        if let Err(e) = &made {
            tracing::debug!(error = %e, "making a resident shell failed");
        }
        let unwanted = {
            let mut state = lock(&attached.resident.state);
            state.warming = false;
            state.failures = if made.is_ok() { 0 } else { state.failures + 1 };
            match made {
                Ok(channel) if !state.closed && state.ready.is_none() => {
                    state.ready = Some(channel);
                    None
                }
                Ok(channel) => Some((channel, state.closed)),
                Err(_) => None,
            }
        };
        match unwanted {
            Some((channel, true)) => channel.forget(),
            Some((channel, false)) => drop(channel),
            None => {}
        }
    });
}

/// Create the session, start the loop in it and open the follow: a ready channel.
async fn open(process: Process) -> std::result::Result<Channel, DaytonaError> {
    let id = new_session_id(RESIDENT_SESSION_PREFIX);
    process.preconnect().await;
    process.create_session(&id).await?;
    let guard = SessionGuard::new(process.clone(), id);
    let request = SessionExecuteRequest {
        command: script::resident_loop(),
        run_async: Some(true),
        suppress_input_echo: Some(true),
        ..SessionExecuteRequest::default()
    };
    let response = process
        .execute_session_command(guard.id(), &request, None)
        .await?;
    if response.cmd_id.trim().is_empty() {
        return Err(DaytonaError::decode(
            "process.session_exec",
            "the answer has no command id",
        ));
    }
    // The first connect is made here, so a shell whose log cannot be followed is never
    // offered to a command.
    let stream = process
        .follow_session_command_logs_raw(guard.id(), &response.cmd_id)
        .await?;
    let (tx, inbox) = mpsc::channel(INBOX);
    let log_bytes = Arc::new(AtomicU64::new(0));
    let follow = tokio::spawn(follow_loop(
        process,
        guard.id().to_string(),
        response.cmd_id.clone(),
        stream,
        tx,
        log_bytes.clone(),
    ));
    Ok(Channel {
        session: Some(guard),
        cmd_id: response.cmd_id,
        inbox,
        follow,
        log_bytes,
        lease: None,
    })
}

/// Forward the shell's log, split by stream, until the channel goes. A dropped socket is
/// followed again, skipping the log bytes already forwarded (the daemon replays the log from
/// its start); a log the daemon closed (the loop ended) or one that keeps failing is reported
/// as broken.
async fn follow_loop(
    process: Process,
    session_id: String,
    cmd_id: String,
    first: crate::follow::RawLogStream,
    tx: mpsc::Sender<Piece>,
    log_bytes: Arc<AtomicU64>,
) {
    let mut demux = RawDemuxer::new();
    let mut stream = Some(first);
    let mut failures = 0u32;
    let (reason, ended) = loop {
        let Some(mut live) = stream.take() else {
            match process
                .follow_session_command_logs_raw(&session_id, &cmd_id)
                .await
            {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    failures += 1;
                    if failures > MAX_RECONNECTS {
                        break (
                            format!("the resident shell's log cannot be followed: {e}"),
                            false,
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50) * 2u32.pow(failures.min(5))).await;
                }
            }
            continue;
        };
        let mut at = 0u64;
        let before = log_bytes.load(Ordering::Relaxed);
        let ended = loop {
            match live.next().await {
                Some(RawLogEvent::Data(bytes)) => {
                    let seen = log_bytes.load(Ordering::Relaxed);
                    let skip = seen.saturating_sub(at);
                    at += bytes.len() as u64;
                    let Ok(skip) = usize::try_from(skip) else {
                        continue;
                    };
                    if skip >= bytes.len() {
                        continue;
                    }
                    let fresh = bytes.slice(skip..);
                    log_bytes.fetch_add(fresh.len() as u64, Ordering::Relaxed);
                    let mut pieces = Vec::with_capacity(2);
                    demux.push(&fresh, |stream, b| {
                        pieces.push(Piece::Data(stream, Bytes::copy_from_slice(b)));
                    });
                    for piece in pieces {
                        if tx.send(piece).await.is_err() {
                            return;
                        }
                    }
                }
                Some(RawLogEvent::End(end)) => break Some(end),
                None => break None,
            }
        };
        if let Some(end) = &ended
            && end.is_complete()
        {
            break ("the resident shell ended".to_string(), true);
        }
        tracing::debug!(
            ?ended,
            "the resident shell's log stream dropped; following again"
        );
        failures = if log_bytes.load(Ordering::Relaxed) > before {
            1
        } else {
            failures + 1
        };
        if failures > MAX_RECONNECTS {
            break (
                "the resident shell's log stream keeps dropping".to_string(),
                false,
            );
        }
        tokio::time::sleep(Duration::from_millis(20) * 2u32.pow(failures.min(5))).await;
    };
    let _ = tx.send(Piece::Broken(reason, ended)).await;
}

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
    let dir = match working_dir(shared, attached, options.cwd.as_deref()).await {
        Ok(dir) => dir,
        Err(OpError::Final(e)) => {
            attached.resident.put_back(attached, channel);
            return Outcome::Done(Err(e));
        }
        Err(OpError::Daytona(e)) => {
            tracing::debug!(error = %e, "no working directory for the resident shell");
            attached.resident.put_back(attached, channel);
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
        attached.resident.put_back(attached, channel);
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
            attached.resident.put_back(attached, channel);
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
                attached.resident.put_back(attached, channel);
            } else {
                // The job's group is unknown (no `setsid`, or it never started): the session
                // goes, with everything in it.
                channel.delete_now().await;
                warm(attached);
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
            warm(attached);
            Outcome::NotRun
        }
        Ending::Refused(e) => {
            tracing::debug!(error = %e, "the resident shell refused a command; making a new one");
            drop(channel);
            warm(attached);
            Outcome::NotRun
        }
        Ending::Broken(reason) => {
            channel.delete_now().await;
            warm(attached);
            Outcome::Done(Err(interrupted(&reason)))
        }
        Ending::Failed(e) => {
            channel.delete_now().await;
            warm(attached);
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
