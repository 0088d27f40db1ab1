//! [`SandboxRuntime`]: the sessions, PTYs and processes alive in one sandbox. The toolbox
//! routes drive it; the control plane creates one per sandbox start and shuts it down on stop.

pub(crate) mod command_log;
pub(crate) mod interpreter;
pub(crate) mod process_tree;
pub(crate) mod pty;
pub(crate) mod session;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use daytona_api::toolbox::codes;
use tokio_util::sync::CancellationToken;
use workspace_local::group::ProcessGroup;
use workspace_local::runner::{Leftovers, RunOptions, RunOutcome, run_tracked};

use crate::error::ApiError;
use crate::layout::{PreparedCommand, SandboxLayout};
use crate::runtime::interpreter::Interpreters;
use crate::runtime::pty::PtySession;
use crate::sync::lock;
pub use session::SessionSnapshot;
use session::{ExecMode, Session, SessionCommand, session_not_found};

/// Bytes of each stream `/process/execute` keeps (head and tail).
pub(crate) const EXECUTE_OUTPUT_LIMIT: usize = 32 * 1024 * 1024;
/// How long deleting a session waits for its command tasks to wind down (and a shutdown for
/// executes in flight).
const TASK_SETTLE: Duration = Duration::from_secs(10);

/// What a test sees of a sandbox's runtime: sessions with their commands, PTY sessions, and how
/// many process groups started for the sandbox still have live members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSnapshot {
    /// Live sessions, by id.
    pub sessions: Vec<SessionSnapshot>,
    /// PTY session ids (until deleted or their shell exits).
    pub ptys: Vec<String>,
    /// Process groups of this sandbox with members still alive (session commands, processes a
    /// `/process/execute` command left in the background, executes in flight, and running
    /// PTY shells).
    pub live_processes: usize,
}

/// The sessions and processes alive in one sandbox.
///
/// A session's commands run one at a time in submission order, each as its own process, with
/// the shell state (`cd`, exported variables) carried from one to the next: a client sees the
/// one long-lived shell of a Daytona session, down to a command that ends that shell (`exit`)
/// ending the session's. The emulator's `runtime/session.rs` describes the details.
#[derive(Debug)]
pub struct SandboxRuntime {
    layout: Arc<SandboxLayout>,
    inner: Mutex<Inner>,
    executes_in_flight: Arc<AtomicUsize>,
    /// Interpreter contexts; their workers die in `shutdown` and `drop` below.
    interpreters: Interpreters,
}

#[derive(Debug)]
struct Inner {
    sessions: BTreeMap<String, Arc<Session>>,
    ptys: BTreeMap<String, Arc<PtySession>>,
    leftovers: Vec<Arc<ProcessGroup>>,
    /// Cancelled by [`SandboxRuntime::shutdown`]; replaced so the runtime can serve again.
    stop: CancellationToken,
}

impl Inner {
    /// Drops PTY sessions whose shell exited: the daemon deletes a PTY session as soon as its
    /// shell ends (`process/pty/session.go`), so it is no longer listed, got, resized or
    /// deleted. Their processes were killed when the exit was recorded.
    fn forget_exited_ptys(&mut self) {
        self.ptys.retain(|_, p| p.exit().is_none());
    }
}

impl SandboxRuntime {
    /// An empty runtime for the sandbox with this layout.
    pub fn new(layout: Arc<SandboxLayout>) -> Self {
        SandboxRuntime {
            layout: layout.clone(),
            inner: Mutex::new(Inner {
                sessions: BTreeMap::new(),
                ptys: BTreeMap::new(),
                leftovers: Vec::new(),
                stop: CancellationToken::new(),
            }),
            executes_in_flight: Arc::new(AtomicUsize::new(0)),
            interpreters: Interpreters::new(layout.clone()),
        }
    }

    /// The sandbox layout this runtime runs commands in.
    pub fn layout(&self) -> &Arc<SandboxLayout> {
        &self.layout
    }

    /// The sandbox's interpreter contexts.
    pub(crate) fn interpreters(&self) -> &Interpreters {
        &self.interpreters
    }

    /// Kill every process of the sandbox (sessions, their leftovers, executes in flight,
    /// background processes left by executes, interpreter workers) and forget all sessions. Used on stop, delete
    /// and emulator shutdown; the runtime accepts new work afterwards (a restarted sandbox).
    pub async fn shutdown(&self) {
        let (sessions, ptys, leftovers, stop) = {
            let mut inner = lock(&self.inner);
            let sessions = std::mem::take(&mut inner.sessions);
            let ptys = std::mem::take(&mut inner.ptys);
            let leftovers = std::mem::take(&mut inner.leftovers);
            let stop = std::mem::replace(&mut inner.stop, CancellationToken::new());
            (sessions, ptys, leftovers, stop)
        };
        stop.cancel();
        self.interpreters.shutdown().await;
        futures::future::join_all(sessions.into_values().map(|s| async move { s.end().await }))
            .await;
        futures::future::join_all(
            ptys.into_values()
                .map(|p| async move { p.terminate().await }),
        )
        .await;
        for group in leftovers {
            group.kill();
        }
        // Executes in flight see the cancel and kill their own groups; wait for that briefly.
        let deadline = tokio::time::Instant::now() + TASK_SETTLE;
        while self.executes_in_flight.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sessions, commands and live process groups, for assertions in tests.
    pub fn snapshot(&self) -> RuntimeSnapshot {
        let inner = lock(&self.inner);
        let mut live = self.executes_in_flight.load(Ordering::Acquire);
        live += inner.leftovers.iter().filter(|g| g.is_alive()).count();
        live += inner.ptys.values().filter(|p| p.is_active()).count();
        let mut sessions = Vec::new();
        for s in inner.sessions.values() {
            let (snapshot, alive) = s.snapshot();
            live += alive;
            sessions.push(snapshot);
        }
        RuntimeSnapshot {
            sessions,
            ptys: inner
                .ptys
                .iter()
                .filter(|(_, p)| p.exit().is_none())
                .map(|(id, _)| id.clone())
                .collect(),
            live_processes: live,
        }
    }

    /// Creates PTY session `id` with `make` (which starts its shell), unless the id is taken
    /// (409). The id is reserved while `make` runs, so two creates cannot both start a shell.
    pub(crate) fn create_pty(
        &self,
        id: &str,
        make: impl FnOnce() -> Result<Arc<PtySession>, ApiError>,
    ) -> Result<Arc<PtySession>, ApiError> {
        let mut inner = lock(&self.inner);
        if inner.ptys.contains_key(id) {
            return Err(ApiError::daemon_bare(
                StatusCode::CONFLICT,
                format!("PTY session with ID '{id}' already exists"),
            ));
        }
        let session = make()?;
        inner.ptys.insert(id.to_string(), session.clone());
        Ok(session)
    }

    /// The PTY session with this id: 404 if unknown or its shell exited.
    pub(crate) fn pty(&self, id: &str) -> Result<Arc<PtySession>, ApiError> {
        let mut inner = lock(&self.inner);
        inner.forget_exited_ptys();
        inner.ptys.get(id).cloned().ok_or_else(|| pty_not_found(id))
    }

    /// Every PTY session whose shell has not exited, by id.
    pub(crate) fn ptys(&self) -> Vec<Arc<PtySession>> {
        let mut inner = lock(&self.inner);
        inner.forget_exited_ptys();
        inner.ptys.values().cloned().collect()
    }

    /// Kills a PTY session's processes and forgets it: 404 if unknown or its shell exited.
    pub(crate) async fn delete_pty(&self, id: &str) -> Result<(), ApiError> {
        let session = {
            let mut inner = lock(&self.inner);
            inner.forget_exited_ptys();
            inner.ptys.remove(id).ok_or_else(|| pty_not_found(id))?
        };
        session.terminate().await;
        Ok(())
    }

    /// Run one `/process/execute` command to completion, as part of this sandbox: it is killed
    /// by [`SandboxRuntime::shutdown`], and processes it leaves in the background are tracked.
    pub(crate) async fn run_foreground(
        &self,
        prepared: PreparedCommand,
        timeout: Option<Duration>,
    ) -> Result<RunOutcome, workspace_core::SandboxError> {
        let stop = lock(&self.inner).stop.clone();
        self.executes_in_flight.fetch_add(1, Ordering::AcqRel);
        let _in_flight = InFlight(self.executes_in_flight.clone());
        let opts = RunOptions {
            timeout,
            cancel: Some(stop),
            output_limit: EXECUTE_OUTPUT_LIMIT,
            leftovers: Leftovers::Leave,
            ..RunOptions::default()
        };
        let outcome = run_tracked(prepared.spec.clone(), opts).await?;
        drop(prepared);
        if let Some(group) = &outcome.leftover {
            let mut inner = lock(&self.inner);
            inner.leftovers.retain(|g| g.is_alive());
            inner.leftovers.push(group.clone());
        }
        Ok(outcome)
    }

    /// Create a session: 409 if the id is taken.
    pub(crate) fn create_session(&self, id: &str) -> Result<(), ApiError> {
        let mut inner = lock(&self.inner);
        if inner.sessions.contains_key(id) {
            return Err(ApiError::daemon(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                "session already exists",
            ));
        }
        // Session ids are caller text: the directory gets a name of its own, never the id. A
        // random one, not a counter: a restarted sandbox has a new runtime, and a session of the
        // old one still being deleted must not remove a new session's files under a reused name.
        let dir = self
            .layout
            .state_host()
            .join("sessions")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::daemon_internal("creating the session dir", e))?;
        inner
            .sessions
            .insert(id.to_string(), Arc::new(Session::new(id, dir)));
        Ok(())
    }

    /// The session with this id: 404 if unknown.
    pub(crate) fn session(&self, id: &str) -> Result<Arc<Session>, ApiError> {
        lock(&self.inner)
            .sessions
            .get(id)
            .cloned()
            .ok_or_else(session_not_found)
    }

    /// All sessions, by id.
    pub(crate) fn sessions(&self) -> Vec<Arc<Session>> {
        lock(&self.inner).sessions.values().cloned().collect()
    }

    /// Delete a session, killing its commands: 404 if unknown.
    pub(crate) async fn delete_session(&self, id: &str) -> Result<(), ApiError> {
        let session = lock(&self.inner)
            .sessions
            .remove(id)
            .ok_or_else(session_not_found)?;
        session.end().await;
        Ok(())
    }

    /// Queue `command` in `session` with the sandbox env `env`. Returns at once; the command
    /// runs when the session's previous commands are done. The caller has checked that the
    /// command is not blank.
    pub(crate) fn exec(
        &self,
        session: &Arc<Session>,
        command: &str,
        mode: ExecMode,
        env: BTreeMap<String, String>,
    ) -> Result<Arc<SessionCommand>, ApiError> {
        session.exec(&self.layout, command, mode, env)
    }
}

fn pty_not_found(id: &str) -> ApiError {
    ApiError::daemon(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("PTY session {id} not found"),
    )
}

impl Drop for SandboxRuntime {
    /// Kills whatever is still alive, synchronously: a runtime dropped without
    /// [`SandboxRuntime::shutdown`] (an emulator handle dropped outside a tokio runtime, a
    /// panic) must not leave processes behind. Session processes die with their
    /// `BackgroundProcess` too, but the tasks pumping their output may outlive this value.
    fn drop(&mut self) {
        self.interpreters.kill_now();
        let inner = lock(&self.inner);
        for group in &inner.leftovers {
            group.kill();
        }
        for session in inner.sessions.values() {
            session.kill_now();
        }
        for pty in inner.ptys.values() {
            // A few passes: a process may fork while the session is being killed.
            for _ in 0..3 {
                if pty.kill_members_now() == 0 {
                    break;
                }
            }
        }
    }
}

/// Counts an execute in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::layout::Isolation;

    fn runtime() -> (tempfile::TempDir, SandboxRuntime) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Arc::new(
            SandboxLayout::create_with(&dir.path().join("sb"), "/home/daytona", Isolation::Host)
                .unwrap(),
        );
        (dir, SandboxRuntime::new(layout))
    }

    #[tokio::test]
    async fn session_state_carries_over_between_commands() {
        let (_d, rt) = runtime();
        rt.create_session("s").unwrap();
        let s = rt.session("s").unwrap();
        let env = BTreeMap::new();
        let a = rt
            .exec(
                &s,
                "mkdir -p sub && cd sub && export GREETING='hi there'",
                ExecMode::SYNC,
                env.clone(),
            )
            .unwrap();
        assert_eq!(a.wait(s.ended()).await, Some(0));
        let b = rt
            .exec(&s, "pwd; echo \"$GREETING\"; (exit 3)", ExecMode::SYNC, env)
            .unwrap();
        assert_eq!(b.wait(s.ended()).await, Some(3));
        let log = b.log().read_all().await.unwrap();
        let (out, _) = crate::runtime::command_log::demux(&log);
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("/home/sub\nhi there\n"), "{out:?}");
        rt.shutdown().await;
        assert_eq!(rt.snapshot().live_processes, 0);
        assert!(rt.snapshot().sessions.is_empty());
    }

    #[tokio::test]
    async fn the_log_gets_every_byte_of_output_faster_than_the_pump() {
        // 24 MiB on each stream at pipe speed, far past the pump's buffer: the log must hold
        // all of it (the pump once read from a ring that dropped what it had not caught up
        // with, losing kilobytes on loaded machines).
        let (_d, rt) = runtime();
        rt.create_session("s").unwrap();
        let s = rt.session("s").unwrap();
        let big = "head -c 25165824 /dev/zero | tr '\\0'";
        let line = format!("{big} e >&2 & {big} o; wait; printf END");
        let c = rt.exec(&s, &line, ExecMode::SYNC, BTreeMap::new()).unwrap();
        assert_eq!(c.wait(s.ended()).await, Some(0));
        let log = c.log().read_all().await.unwrap();
        let (out, err) = crate::runtime::command_log::demux(&log);
        // The daemon ends a last line that had none with a newline.
        assert_eq!(out.len(), 24 * 1024 * 1024 + "END\n".len());
        assert!(out.ends_with(b"oEND\n"));
        assert_eq!(err.len(), 24 * 1024 * 1024 + 1);
        assert!(out[..24 * 1024 * 1024].iter().all(|&b| b == b'o'));
        assert!(err[..24 * 1024 * 1024].iter().all(|&b| b == b'e'));
        rt.shutdown().await;
    }

    /// Whether a live process has `needle` in its command line.
    fn running(needle: &str) -> bool {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie
                && std::fs::read(e.path().join("cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c)
                            .replace('\0', " ")
                            .contains(needle)
                    })
                    .unwrap_or(false)
        })
    }

    async fn gone(needle: &str) -> bool {
        for _ in 0..200 {
            if !running(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_runtime_kills_what_is_left_synchronously() {
        use crate::layout::CommandExtras;
        use crate::runtime::pty::PtyOptions;
        let (_d, rt) = runtime();
        let env = BTreeMap::new();
        // A background process an execute left behind (a leftover process group).
        let prepared = rt
            .layout
            .command_spec("sleep 7171 & echo started", None, &env)
            .unwrap();
        let outcome = rt.run_foreground(prepared, None).await.unwrap();
        assert_eq!(outcome.result.stdout, "started\n");
        // A terminal with a background job.
        let launch = rt
            .layout
            .command_spec_with(
                "sleep 7272 & exec sleep 7373",
                None,
                &env,
                &CommandExtras {
                    host_pts: true,
                    ..CommandExtras::default()
                },
            )
            .unwrap();
        let opts = PtyOptions {
            id: "p".into(),
            cwd: rt.layout.home_dir().to_string(),
            workdir: rt.layout.resolve(rt.layout.home_dir(), true).unwrap().host,
            envs: BTreeMap::new(),
            cols: 80,
            rows: 24,
            lazy_start: false,
        };
        rt.create_pty("p", || PtySession::create(opts, launch))
            .unwrap();
        for needle in ["sleep 7171", "sleep 7272", "sleep 7373"] {
            let mut up = false;
            for _ in 0..200 {
                if running(needle) {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(up, "{needle} started");
        }
        drop(rt);
        for needle in ["sleep 7171", "sleep 7272", "sleep 7373"] {
            assert!(gone(needle).await, "{needle} survived the runtime");
        }
    }

    #[tokio::test]
    async fn duplicate_sessions_conflict_and_unknown_ones_are_404() {
        let (_d, rt) = runtime();
        rt.create_session("s").unwrap();
        assert_eq!(
            rt.create_session("s").unwrap_err().status,
            StatusCode::CONFLICT
        );
        assert_eq!(rt.session("t").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(
            rt.delete_session("t").await.unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        rt.delete_session("s").await.unwrap();
        assert!(rt.session("s").is_err());
    }

    #[tokio::test]
    async fn a_restarted_sandbox_keeps_its_sessions_apart_from_the_old_runtimes() {
        // A stop ends one runtime and the start makes another over the same layout; a session
        // of the old one whose delete finishes late must not take a new session's files.
        let (_d, old) = runtime();
        let new = SandboxRuntime::new(old.layout().clone());
        old.create_session("a").unwrap();
        new.create_session("b").unwrap();
        old.delete_session("a").await.unwrap();
        let s = new.session("b").unwrap();
        let c = new
            .exec(&s, "echo kept", ExecMode::SYNC, BTreeMap::new())
            .unwrap();
        assert_eq!(c.wait(s.ended()).await, Some(0));
        let (out, _) = crate::runtime::command_log::demux(&c.log().read_all().await.unwrap());
        assert_eq!(out, b"kept\n");
        new.shutdown().await;
    }
}
