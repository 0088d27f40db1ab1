//! [`SpareSession`]: one command session created ahead of need.
//!
//! A command needs a session of its own, and creating one is a round trip the command would
//! otherwise wait for before its exec (one of three sequential requests). So once a handle has
//! run a command, it keeps one idle session ready: the next command takes it, and a new spare
//! is created in the background while that command runs. Concurrent commands that find none
//! ready create their own as before.
//!
//! The spare is deleted like any command session when its guard drops (the handle and its
//! attachment gone); when the sandbox stops or is deleted it went with it, so it is forgotten
//! without a request. A spare that vanished anyway (the sandbox was restarted by someone else)
//! makes the exec answer 404 before anything ran, and the command falls back to a fresh session.

use std::sync::{Arc, Mutex};

use crate::process::Process;

use super::session::{COMMAND_SESSION_PREFIX, SessionGuard, new_session_id};
use super::sync::lock;

/// The spare session of one attachment.
#[derive(Default)]
pub(crate) struct SpareSession {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    ready: Option<SessionGuard>,
    /// A create is in flight.
    filling: bool,
    /// The sandbox stopped or was deleted: no new spare, and none to delete.
    closed: bool,
}

impl SpareSession {
    /// The ready spare, if there is one.
    pub(crate) fn take(&self) -> Option<SessionGuard> {
        lock(&self.state).ready.take()
    }

    /// The sandbox's sessions are gone with it: forget the spare without deleting it, and make
    /// no more.
    pub(crate) fn close(&self) {
        let spare = {
            let mut state = lock(&self.state);
            state.closed = true;
            state.ready.take()
        };
        if let Some(guard) = spare {
            guard.keep();
        }
    }

    /// Create a spare in the background through `process`, unless one is ready or on its way
    /// (or there is no runtime to create it on).
    pub(crate) fn refill(&self, process: Process) {
        {
            let mut state = lock(&self.state);
            if state.closed || state.filling || state.ready.is_some() {
                return;
            }
            state.filling = true;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            lock(&self.state).filling = false;
            return;
        };
        let slot = self.state.clone();
        runtime.spawn(async move {
            let id = new_session_id(COMMAND_SESSION_PREFIX);
            let created = process.create_session(&id).await;
            let guard = match created {
                Ok(()) => Some(SessionGuard::new(process, id)),
                Err(e) => {
                    tracing::debug!(error = %e, "creating a spare session failed");
                    None
                }
            };
            let unwanted = {
                let mut state = lock(&slot);
                state.filling = false;
                match guard {
                    Some(guard) if !state.closed && state.ready.is_none() => {
                        state.ready = Some(guard);
                        None
                    }
                    other => other.map(|guard| (guard, state.closed)),
                }
            };
            // Outside the lock: a guard dropped here starts its delete, unless the sandbox (and
            // the session with it) is gone.
            if let Some((guard, true)) = unwanted {
                guard.keep();
            }
        });
    }
}
