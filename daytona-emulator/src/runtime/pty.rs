//! [`PtySession`]: a real pseudo-terminal with a shell on its slave side.
//!
//! The emulator opens a pty pair (`posix_openpt`, close-on-exec from the start so no other
//! child inherits it), starts the sandbox shell (`bash -i` through the sandbox's bubblewrap
//! layout, or plain on the host) as a new session whose controlling terminal is the slave, and
//! keeps the master. So `tty` inside names a terminal, `stty size` reports the size, and a
//! resize (`TIOCSWINSZ` on the master) sends `SIGWINCH` to the foreground job, as on Daytona.
//!
//! Output is kept in a 64 KiB scrollback and fanned out to every attached client; a client that
//! attaches first receives the scrollback, so nothing printed between create and connect is
//! lost (a second client sees it again, as after a terminal redraw). Output a client cannot
//! keep up with (over 1024 pending chunks) is dropped for that client only.
//!
//! The session's processes are everything in the kernel session the shell leads (found in
//! `/proc`), so background jobs are killed with it. A process that leaves the session with
//! `setsid` escapes, as it would escape a real terminal hang-up.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use daytona_api::pty::PtySessionInfo;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::layout::PreparedCommand;
use crate::sync::lock;

/// Bytes of output kept for clients that attach later.
const HISTORY_LIMIT: usize = 64 * 1024;
/// Output chunks buffered per client before a slow one misses output.
const FANOUT_BUFFER: usize = 1024;
/// How long output is still collected after the shell exited (a chunk may be in flight).
const EXIT_DRAIN: Duration = Duration::from_millis(300);
/// Largest read from the master.
const READ_CHUNK: usize = 8 * 1024;

/// How a PTY's shell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PtyExit {
    /// Exit status, or 128 + signal number for a shell killed by a signal.
    pub(crate) code: i32,
    /// `non-zero exit`, `SIGKILL`, `SIGTERM`, `Ctrl+C` or `signal N`; `None` for status 0.
    pub(crate) reason: Option<String>,
}

impl PtyExit {
    fn from_status(status: std::process::ExitStatus) -> Self {
        if let Some(code) = status.code() {
            return PtyExit {
                code,
                reason: (code != 0).then(|| "non-zero exit".to_string()),
            };
        }
        let signal = status.signal().unwrap_or(0);
        let reason = match Signal::try_from(signal) {
            Ok(Signal::SIGKILL) => "SIGKILL".to_string(),
            Ok(Signal::SIGTERM) => "SIGTERM".to_string(),
            Ok(Signal::SIGINT) => "Ctrl+C".to_string(),
            _ => format!("signal {signal}"),
        };
        PtyExit {
            code: 128 + signal,
            reason: Some(reason),
        }
    }
}

/// What a PTY session was created with.
#[derive(Debug)]
pub(crate) struct PtyOptions {
    /// Session id.
    pub(crate) id: String,
    /// Sandbox path the shell starts in.
    pub(crate) cwd: String,
    /// Its host directory, which must exist when the shell starts.
    pub(crate) workdir: PathBuf,
    /// The extra environment (reported by `GET`, values never logged).
    pub(crate) envs: BTreeMap<String, String>,
    /// Columns.
    pub(crate) cols: u16,
    /// Rows.
    pub(crate) rows: u16,
    /// Start on first attach.
    pub(crate) lazy_start: bool,
}

/// The live part of a started PTY.
#[derive(Debug)]
struct Running {
    master: Arc<AsyncFd<PtyMaster>>,
}

/// One PTY session of a sandbox.
#[derive(Debug)]
pub(crate) struct PtySession {
    opts: PtyOptions,
    created_at: String,
    size: Mutex<(u16, u16)>,
    /// The command to start (taken on start; kept until then for a lazy start).
    launch: Mutex<Option<PreparedCommand>>,
    running: Mutex<Option<Running>>,
    history: Mutex<VecDeque<u8>>,
    output: broadcast::Sender<Bytes>,
    exit: watch::Sender<Option<PtyExit>>,
    /// Writes to the master, one at a time so inputs keep their order.
    write_turn: tokio::sync::Mutex<()>,
    /// Set once the leader was reaped; from then on a session id could be reused once the
    /// session is empty, so after one empty scan it is never scanned again.
    leader_reaped: AtomicBool,
    session_gone: AtomicBool,
    /// Pid of the shell's launcher, which leads the kernel session and so is its id (0 before
    /// the start).
    sid: AtomicI32,
}

impl PtySession {
    /// A session that runs `launch` in a terminal of `opts.cols` × `opts.rows`; started now
    /// unless `opts.lazy_start`. Needs a tokio runtime (it spawns the I/O tasks).
    pub(crate) fn create(
        opts: PtyOptions,
        launch: PreparedCommand,
    ) -> Result<Arc<PtySession>, ApiError> {
        let (output, _) = broadcast::channel(FANOUT_BUFFER);
        let session = Arc::new(PtySession {
            size: Mutex::new((opts.cols, opts.rows)),
            created_at: crate::timestamp::rfc3339(chrono::Utc::now()),
            opts,
            launch: Mutex::new(Some(launch)),
            running: Mutex::new(None),
            history: Mutex::new(VecDeque::new()),
            output,
            exit: watch::Sender::new(None),
            write_turn: tokio::sync::Mutex::new(()),
            leader_reaped: AtomicBool::new(false),
            session_gone: AtomicBool::new(false),
            sid: AtomicI32::new(0),
        });
        if !session.opts.lazy_start {
            session.start()?;
        }
        Ok(session)
    }

    /// The session id.
    pub(crate) fn id(&self) -> &str {
        &self.opts.id
    }

    /// Starts the shell if it has not started yet (lazy sessions start on first attach).
    pub(crate) fn start(self: &Arc<Self>) -> Result<(), ApiError> {
        let mut pending = lock(&self.launch);
        if pending.is_none() {
            return Ok(());
        }
        // The daemon's `pty.StartWithSize` fails on a working directory that is not there (a
        // lazy session's is only looked at now); the launch stays, as the daemon keeps the
        // session and lets a later attach try again.
        let missing = match std::fs::metadata(&self.opts.workdir) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some("not a directory".to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some("no such file or directory".to_string())
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = missing {
            return Err(ApiError::daemon_bare(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("pty.StartWithSize: chdir {}: {why}", self.opts.cwd),
            ));
        }
        let Some(launch) = pending.take() else {
            return Ok(());
        };
        drop(pending);
        let (cols, rows) = *lock(&self.size);
        let (master, slave) = open_pty(cols, rows)?;
        let mut command = tokio::process::Command::new(&launch.spec.program);
        command
            .args(&launch.spec.args)
            .current_dir(&launch.spec.cwd)
            .env_clear()
            .envs(launch.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::from(slave.try_clone().map_err(
                |e| ApiError::daemon_internal("duplicating the pty", e),
            )?))
            .stdout(std::process::Stdio::from(slave.try_clone().map_err(
                |e| ApiError::daemon_internal("duplicating the pty", e),
            )?))
            .stderr(std::process::Stdio::from(slave))
            .kill_on_drop(true);
        // SAFETY: between fork and exec the closure only makes async-signal-safe system calls
        // (setsid; ioctl TIOCSCTTY on fd 0, which Command has made the pty slave, with an int
        // argument) and touches no memory shared with the parent.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| ApiError::daemon_internal("starting the terminal shell", e))?;
        drop(command);
        let leader = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| ApiError::daemon_internal("starting the terminal shell", "no pid"))?;
        self.sid.store(leader, Ordering::Release);
        // SAFETY: `PtyMaster` owns its fd and always returns that same fd; the `AsyncFd` owns
        // the `PtyMaster`, so the fd stays open for the `AsyncFd`'s whole life.
        let master = unsafe { AsyncFd::register(master) }
            .map_err(|e| ApiError::daemon_internal("watching the pty", e))?;
        let master = Arc::new(master);
        *lock(&self.running) = Some(Running {
            master: master.clone(),
        });
        let (reader_done_tx, reader_done) = watch::channel(false);
        tokio::spawn(read_output(self.clone(), master, reader_done_tx));
        let this = self.clone();
        tokio::spawn(async move {
            // Keeps the script file (if any) until the shell is gone.
            let _launch = launch;
            let status = child.wait().await;
            this.leader_reaped.store(true, Ordering::Release);
            let exit = match status {
                Ok(status) => PtyExit::from_status(status),
                Err(e) => {
                    tracing::warn!(pty = %this.opts.id, error = %e, "waiting for a pty shell failed");
                    PtyExit {
                        code: -1,
                        reason: Some(format!("wait failed: {e}")),
                    }
                }
            };
            let mut reader_done = reader_done;
            if tokio::time::timeout(EXIT_DRAIN, reader_done.wait_for(|d| *d))
                .await
                .is_err()
            {
                // Background jobs still hold the terminal: they go with the shell.
                this.kill_members().await;
                let _ = tokio::time::timeout(EXIT_DRAIN, reader_done.wait_for(|d| *d)).await;
            }
            this.kill_members().await;
            this.exit.send_replace(Some(exit));
        });
        Ok(())
    }

    /// The scrollback so far and a receiver for what follows, taken atomically.
    pub(crate) fn attach(&self) -> (Vec<u8>, broadcast::Receiver<Bytes>) {
        let history = lock(&self.history);
        let rx = self.output.subscribe();
        (history.iter().copied().collect(), rx)
    }

    /// Follows the exit.
    pub(crate) fn exit_rx(&self) -> watch::Receiver<Option<PtyExit>> {
        self.exit.subscribe()
    }

    /// How the shell ended, once it did.
    pub(crate) fn exit(&self) -> Option<PtyExit> {
        self.exit.borrow().clone()
    }

    /// Whether the shell runs (started and not exited).
    pub(crate) fn is_active(&self) -> bool {
        lock(&self.running).is_some() && self.exit().is_none()
    }

    /// Writes keyboard input to the terminal. Input to a PTY that exited (or has not started)
    /// is dropped, as a closed terminal would drop it.
    pub(crate) async fn write(&self, data: &[u8]) -> std::io::Result<()> {
        let Some(master) = lock(&self.running).as_ref().map(|r| r.master.clone()) else {
            return Ok(());
        };
        let _turn = self.write_turn.lock().await;
        let mut rest = data;
        while !rest.is_empty() {
            let mut guard = master.writable().await?;
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref(), rest).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => rest = &rest[n..],
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the terminal size (`TIOCSWINSZ`, which signals `SIGWINCH` to the foreground job);
    /// the caller checked the range. 410 once the shell exited.
    pub(crate) fn resize(&self, cols: u16, rows: u16) -> Result<(), ApiError> {
        if self.exit().is_some() {
            return Err(ApiError::daemon_bare(
                StatusCode::GONE,
                format!(
                    "PTY session '{}' has terminated and cannot be resized",
                    self.opts.id
                ),
            ));
        }
        let running = lock(&self.running);
        if let Some(r) = running.as_ref() {
            set_size(r.master.get_ref(), cols, rows)
                .map_err(|e| ApiError::daemon_internal("resizing the terminal", e))?;
        }
        *lock(&self.size) = (cols, rows);
        Ok(())
    }

    /// The session as the API shows it.
    pub(crate) fn info(&self) -> PtySessionInfo {
        let (cols, rows) = *lock(&self.size);
        PtySessionInfo {
            id: self.opts.id.clone(),
            cwd: self.opts.cwd.clone(),
            envs: self.opts.envs.clone(),
            cols,
            rows,
            created_at: self.created_at.clone(),
            active: self.is_active(),
            lazy_start: self.opts.lazy_start,
        }
    }

    /// SIGKILLs every process of the terminal's session, repeatedly for up to two seconds
    /// while members are left (a process may fork while being killed).
    pub(crate) async fn kill_members(&self) {
        for _ in 0..200 {
            if self.kill_members_now() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!(pty = %self.opts.id, "processes of a pty session survived SIGKILL");
    }

    /// Kills the session's processes and waits until the shell's exit is recorded.
    pub(crate) async fn terminate(&self) {
        let mut exit = self.exit_rx();
        if lock(&self.running).is_none() {
            // Never started (lazy): nothing to kill; forget the launch.
            lock(&self.launch).take();
            return;
        }
        self.kill_members().await;
        if tokio::time::timeout(Duration::from_secs(5), exit.wait_for(Option::is_some))
            .await
            .is_err()
        {
            tracing::warn!(pty = %self.opts.id, "a pty shell did not exit after SIGKILL");
        }
    }

    /// One SIGKILL pass over the session's live members; returns how many were signalled.
    /// Synchronous, so `Drop` of the runtime can use it.
    pub(crate) fn kill_members_now(&self) -> usize {
        let sid = self.sid.load(Ordering::Acquire);
        if sid <= 0 || self.session_gone.load(Ordering::Acquire) {
            return 0;
        }
        let members = session_members(sid);
        if members.is_empty() {
            if self.leader_reaped.load(Ordering::Acquire) {
                self.session_gone.store(true, Ordering::Release);
            }
            return 0;
        }
        for pid in &members {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        members.len()
    }
}

/// Reads the master until the terminal hangs up (EIO once no process holds the slave).
async fn read_output(
    session: Arc<PtySession>,
    master: Arc<AsyncFd<PtyMaster>>,
    done: watch::Sender<bool>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let mut guard = match master.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::debug!(error = %e, "pty readiness failed");
                break;
            }
        };
        match guard
            .try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from))
        {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => session.publish(&buf[..n]),
            Ok(Err(e)) => {
                if e.raw_os_error() != Some(Errno::EIO as i32) {
                    tracing::debug!(error = %e, "reading a pty failed");
                }
                break;
            }
            Err(_would_block) => continue,
        }
    }
    done.send_replace(true);
}

impl PtySession {
    fn publish(&self, chunk: &[u8]) {
        let mut history = lock(&self.history);
        history.extend(chunk.iter().copied());
        let excess = history.len().saturating_sub(HISTORY_LIMIT);
        history.drain(..excess);
        // No receivers is normal: nobody attached.
        let _ = self.output.send(Bytes::copy_from_slice(chunk));
    }
}

/// A pty pair: the master (non-blocking, close-on-exec) and the slave (close-on-exec; the
/// child gets it on its stdio, where `dup2` clears the flag).
fn open_pty(cols: u16, rows: u16) -> Result<(PtyMaster, OwnedFd), ApiError> {
    let err = |e: Errno| ApiError::daemon_internal("opening a pseudo-terminal", e);
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(err)?;
    grantpt(&master).map_err(err)?;
    unlockpt(&master).map_err(err)?;
    let name = ptsname_r(&master).map_err(err)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    let flags = fcntl(&master, FcntlArg::F_GETFL).map_err(err)?;
    fcntl(
        &master,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(err)?;
    set_size(&master, cols, rows)
        .map_err(|e| ApiError::daemon_internal("sizing the terminal", e))?;
    Ok((master, slave))
}

fn set_size(master: &PtyMaster, cols: u16, rows: u16) -> std::io::Result<()> {
    let size = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the fd is a live pty master owned by `master`; TIOCSWINSZ reads one `winsize`
    // from the pointer, which points at a local that outlives the call.
    let rc = unsafe {
        nix::libc::ioctl(
            master.as_raw_fd(),
            nix::libc::TIOCSWINSZ,
            &size as *const nix::libc::winsize,
        )
    };
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Pids of live (non-zombie) processes in kernel session `sid`.
pub(crate) fn session_members(sid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp session ...`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(state), Some(session)) = (fields.first(), fields.get(3)) else {
            continue;
        };
        if *state == "Z" || *state == "X" {
            continue;
        }
        if session.parse::<i32>().ok() == Some(sid) {
            out.push(pid);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons_follow_the_wire_names() {
        let ok = PtyExit::from_status(std::process::ExitStatus::from_raw(0));
        assert_eq!(
            ok,
            PtyExit {
                code: 0,
                reason: None
            }
        );
        let three = PtyExit::from_status(std::process::ExitStatus::from_raw(3 << 8));
        assert_eq!(three.code, 3);
        assert_eq!(three.reason.as_deref(), Some("non-zero exit"));
        let killed = PtyExit::from_status(std::process::ExitStatus::from_raw(9));
        assert_eq!(killed.code, 137);
        assert_eq!(killed.reason.as_deref(), Some("SIGKILL"));
        let int = PtyExit::from_status(std::process::ExitStatus::from_raw(2));
        assert_eq!(int.reason.as_deref(), Some("Ctrl+C"));
    }

    #[test]
    fn our_own_session_is_found() {
        let sid = nix::unistd::getsid(None).unwrap().as_raw();
        assert!(session_members(sid).contains(&(std::process::id() as i32)));
    }
}
