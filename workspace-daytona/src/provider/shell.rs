//! The resident shell itself (see [`super::resident`] for how commands run on it): one
//! long-lived session command per attachment running [`super::script::resident_loop`], its log
//! followed over one WebSocket kept open, split by stream into a channel; the slot an
//! attachment keeps it in; and how it is made, replaced and let go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use daytona_api::toolbox::SessionExecuteRequest;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::demux::{OutputStream, RawDemuxer};
use crate::error::DaytonaError;
use crate::follow::RawLogEvent;
use crate::process::Process;

use super::script;
use super::session::{SessionGuard, new_session_id};
use super::sync::lock;

/// Bound on deleting a shell's session (which kills what runs in it).
const DELETE_WAIT: Duration = Duration::from_secs(30);

/// Prefix of resident shell sessions.
pub(crate) const RESIDENT_SESSION_PREFIX: &str = "ws-sh-";
/// Once the shell's log has grown past this, the shell is replaced after the command that
/// crossed it: a follow that has to reconnect replays the log from its start.
const RECYCLE_AFTER: u64 = 8 << 20;
/// Reconnects of the log follow in a row that bring nothing before the shell is given up.
const MAX_RECONNECTS: u32 = 5;
/// Split stream pieces buffered between the follow and the command reading them.
const INBOX: usize = 256;
/// Resident shells that could not be made in a row before an attachment stops trying.
const MAX_WARM_FAILURES: u32 = 3;

/// The resident shell of one attachment: ready, in use, being made, or not wanted any more.
#[derive(Default)]
pub(crate) struct ResidentSlot {
    state: Arc<Mutex<SlotState>>,
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
    pub(crate) fn take(&self) -> Option<Channel> {
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

    /// Hand a channel back after a command; replaced instead (through `process`) when its log
    /// has grown large.
    pub(crate) fn put_back(&self, process: Process, mut channel: Channel) {
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
                self.warm(process);
            }
            None => {}
        }
    }

    /// Make a resident shell through `process` in the background, unless one is ready, in use or
    /// on its way, or making them keeps failing.
    pub(crate) fn warm(&self, process: Process) {
        {
            let mut state = lock(&self.state);
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
            lock(&self.state).warming = false;
            return;
        };
        let slot = self.state.clone();
        runtime.spawn(async move {
            let made = open(process).await;
            if let Err(e) = &made {
                tracing::debug!(error = %e, "making a resident shell failed");
            }
            let unwanted = {
                let mut state = lock(&slot);
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
pub(crate) enum Piece {
    Data(OutputStream, Bytes),
    /// The follow cannot go on: the loop ended (`true`: the daemon closed its log, so it
    /// reads no more input), or its state is unknown.
    Broken(String, bool),
}

/// One resident shell: its session (deleted when dropped), the loop's command id and the
/// pieces its follow delivers.
pub(crate) struct Channel {
    session: Option<SessionGuard>,
    pub(crate) cmd_id: String,
    pub(crate) inbox: mpsc::Receiver<Piece>,
    follow: JoinHandle<()>,
    /// Log bytes received so far.
    log_bytes: Arc<AtomicU64>,
    /// The slot this channel was taken from, freed when it is dropped in use.
    lease: Option<Arc<Mutex<SlotState>>>,
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
    pub(crate) fn session_id(&self) -> &str {
        self.session.as_ref().map_or("", SessionGuard::id)
    }

    /// The session is gone already (the sandbox went): stop following, delete nothing.
    fn forget(mut self) {
        if let Some(guard) = self.session.take() {
            guard.keep();
        }
    }

    /// Delete the session now (which kills whatever runs in it), bounded.
    pub(crate) async fn delete_now(mut self) {
        if let Some(guard) = self.session.take() {
            guard.delete_now(DELETE_WAIT).await;
        }
    }
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
