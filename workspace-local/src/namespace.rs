//! The namespaces of one isolated sandbox: the `bwrap` *holder* process that creates and keeps
//! them, and how a command enters them.
//!
//! Why one namespace set per sandbox rather than one `bwrap` per command: commands of one
//! sandbox must see each other (a background server, then `curl localhost` from a command; a
//! `/proc` scan for a process another command started), and `bwrap` cannot join an existing
//! network namespace. So the holder creates them once per start, and each command enters them
//! with `nsenter` (`setns` into the holder's user, mount, PID, IPC, UTS and, when the network is
//! off, network namespaces), which also costs a fraction of a fresh `bwrap` (see
//! BENCHMARKS.md).
//!
//! The holder's program is a shell waiting on a pipe only this process holds: it ends when the
//! pipe closes (this process died) or when [`Holder::kill`] kills its group; either way `bwrap`
//! (with `--die-with-parent`) takes the PID namespace and so every process in it down. It is
//! spawned from a thread of its own that waits for it, because the parent-death signal follows
//! the spawning *thread*: a runtime's worker thread that exits would kill the sandbox.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use workspace_core::command::shell_quote;

use crate::group::ProcessGroup;
use crate::host::FALLBACK_PATH;
use crate::isolation::{Confinement, Tools};
use crate::runner::ProcessSpec;

/// How long a holder may take to report its namespaces.
const HOLDER_START: Duration = Duration::from_secs(10);
/// How long [`Holder::kill`] waits for the holder to be reaped.
const HOLDER_EXIT: Duration = Duration::from_secs(5);
/// The holder's program: say it runs (bwrap reports its pid before the mount namespace is
/// complete, so an early `nsenter` would find a half-built tree), let go of our pipes, then
/// wait for end-of-file on stdin.
const HOLDER_SCRIPT: &str = "echo ws-holder-ready; exec >/dev/null 2>&1; read -r _";
/// What [`HOLDER_SCRIPT`] prints once the sandbox's filesystem is in place.
const READY: &[u8] = b"ws-holder-ready";
/// The shell the holder runs (always present where bwrap is).
const HOLDER_SHELL: &str = "/bin/sh";

/// A running holder: the namespaces of one sandbox start.
pub(crate) struct Holder {
    group: Arc<ProcessGroup>,
    /// Host pid of bwrap's init process (pid 1 of the sandbox): the `nsenter` target.
    target: u32,
    network: bool,
    /// Closing it ends the holder.
    stdin: Mutex<Option<ChildStdin>>,
    /// True once the holder has been reaped.
    exited: watch::Receiver<bool>,
}

impl std::fmt::Debug for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holder")
            .field("pgid", &self.group.id())
            .field("target", &self.target)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Holder {
    /// Start a holder for `conf` and wait (blocking, bounded) until its namespaces exist.
    pub(crate) fn spawn(tools: &Tools, conf: &Confinement) -> Result<Holder, String> {
        let mut cmd = Command::new(&tools.bwrap);
        cmd.args(conf.bwrap_args())
            // bwrap closes the info fd inside the sandbox; on stderr that costs the holder
            // nothing, and bwrap's own errors arrive on the same pipe.
            .args(["--info-fd", "2", "--", HOLDER_SHELL, "-c", HOLDER_SCRIPT])
            .current_dir(&conf.root)
            .env_clear()
            .env("PATH", FALLBACK_PATH)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let bwrap = tools.bwrap.display().to_string();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (exited_tx, exited) = watch::channel(false);
        std::thread::Builder::new()
            .name("ws-isolation-holder".into())
            .spawn(move || run_holder(cmd, bwrap, started_tx, exited_tx))
            .map_err(|e| format!("starting the holder thread: {e}"))?;
        let started = match started_rx.recv_timeout(HOLDER_START) {
            Ok(r) => r?,
            Err(_) => return Err(format!("bwrap did not start within {HOLDER_START:?}")),
        };
        let Started {
            group,
            target,
            stdin,
        } = started;
        Ok(Holder {
            group,
            target,
            network: conf.network,
            stdin: Mutex::new(Some(stdin)),
            exited,
        })
    }

    /// Whether the holder (and so the sandbox's namespaces) still exists.
    pub(crate) fn is_alive(&self) -> bool {
        !*self.exited.borrow()
    }

    /// A spec that runs `<shell> -c <line>` inside the namespaces, in `cwd` (a path as the
    /// sandbox sees it), as the leader of a new session.
    pub(crate) fn enter(
        &self,
        nsenter: &Path,
        shell: &Path,
        line: &str,
        cwd: &Path,
        env: Vec<(OsString, OsString)>,
    ) -> ProcessSpec {
        let mut args: Vec<OsString> = vec![
            "--target".into(),
            self.target.to_string().into(),
            "--user".into(),
            "--mount".into(),
            "--pid".into(),
            "--ipc".into(),
            "--uts".into(),
        ];
        if !self.network {
            args.push("--net".into());
        }
        // Keep our uid/gid (mapped inside) instead of becoming the namespace's root.
        args.push("--preserve-credentials".into());
        args.push("--".into());
        args.push(shell.as_os_str().into());
        args.push("-c".into());
        // nsenter leaves us at the namespace's `/`; its own `--wd` would open the directory on
        // the host side, whose mount is not the sandbox's.
        let cwd = cwd.to_string_lossy();
        args.push(format!("cd -- {} || exit\n{line}", shell_quote(&cwd)).into());
        ProcessSpec {
            program: nsenter.as_os_str().into(),
            args,
            cwd: "/".into(),
            env,
            new_session: true,
        }
    }

    /// Kill the holder and with it every process in the sandbox; wait (bounded) until it is
    /// reaped.
    pub(crate) async fn kill(&self) {
        self.close();
        let mut exited = self.exited.clone();
        if tokio::time::timeout(HOLDER_EXIT, exited.wait_for(|e| *e))
            .await
            .is_err()
        {
            tracing::warn!(
                pgid = self.group.id(),
                "isolation holder still running after kill"
            );
        }
    }

    /// Kill without waiting.
    fn close(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.group.kill();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the holder thread hands back once the namespaces exist.
struct Started {
    group: Arc<ProcessGroup>,
    target: u32,
    stdin: ChildStdin,
}

/// The holder thread: spawn, report the namespaces (or why not), wait for the end.
fn run_holder(
    mut cmd: Command,
    bwrap: String,
    started: std::sync::mpsc::Sender<Result<Started, String>>,
    exited: watch::Sender<bool>,
) {
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = started.send(Err(format!("running {bwrap}: {e}")));
            let _ = exited.send(true);
            return;
        }
    };
    let group = Arc::new(ProcessGroup::new(child.id()));
    // Kept open while the holder runs: bwrap may still write a late error there.
    let mut stderr = child.stderr.take();
    let mut err_text = Vec::new();
    let target = stderr
        .as_mut()
        .and_then(|e| read_until(e, &mut err_text, parse_info));
    let ready = target.as_ref().is_some_and(|t| t.is_ok())
        && child
            .stdout
            .take()
            .and_then(|mut o| {
                read_until(&mut o, &mut Vec::new(), |b| {
                    contains(b, READY).then_some(())
                })
            })
            .is_some();
    let stdin = child.stdin.take();
    match (target, ready, stdin) {
        (Some(Ok(target)), true, Some(stdin)) => {
            let report = Started {
                group: group.clone(),
                target,
                stdin,
            };
            if started.send(Ok(report)).is_err() {
                // Nobody waits for it any more (the start timed out): do not leave it running.
                group.kill();
            }
        }
        (target, _, _) => {
            group.kill();
            let status = child.wait();
            group.mark_leader_reaped();
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_end(&mut err_text);
            }
            let text = String::from_utf8_lossy(&err_text);
            // What bwrap said, without its info object.
            let said = match (text.find('{'), text.find('}')) {
                (Some(a), Some(b)) if a < b => format!("{}{}", &text[..a], &text[b + 1..]),
                _ => text.to_string(),
            };
            let detail = match (target, status) {
                (Some(Err(e)), _) => e,
                _ if !said.trim().is_empty() => said.trim().to_string(),
                (_, Ok(s)) => format!("bwrap exited with {s} before the sandbox was ready"),
                (_, Err(e)) => format!("bwrap vanished before the sandbox was ready: {e}"),
            };
            let _ = started.send(Err(explain(&detail)));
            let _ = exited.send(true);
            return;
        }
    }
    let _ = child.wait();
    group.mark_leader_reaped();
    drop(stderr);
    let _ = exited.send(true);
}

/// Read into `buf` until `done` finds what it needs there; `None` at end of file or on an error.
fn read_until<R: Read, T>(
    r: &mut R,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<T>,
) -> Option<T> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(found) = done(buf) {
            return Some(found);
        }
        match r.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        // bwrap's info is a few hundred bytes; anything this long is something else.
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `None` until `buf` holds bwrap's whole `--info-fd` object (flat, so the first `}` after the
/// first `{` ends it); then its `child-pid`, or why there is none.
fn parse_info(buf: &[u8]) -> Option<Result<u32, String>> {
    let start = buf.iter().position(|&b| b == b'{')?;
    let end = start + buf[start..].iter().position(|&b| b == b'}')?;
    Some(
        serde_json::from_slice::<serde_json::Value>(&buf[start..=end])
            .map_err(|e| format!("bwrap's info is not JSON: {e}"))
            .and_then(|v| {
                v.get("child-pid")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or_else(|| format!("bwrap's info has no child-pid: {v}"))
            }),
    )
}

/// bwrap's own message, with what it usually means on hosts where it fails.
fn explain(detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("namespace")
        || lower.contains("uid map")
        || lower.contains("operation not permitted")
    {
        format!(
            "bwrap cannot create namespaces here (user namespaces disabled or not permitted, \
             e.g. inside a container or by kernel.unprivileged_userns_clone / AppArmor): {detail}"
        )
    } else {
        format!("bwrap failed: {detail}")
    }
}

/// Prove the tools isolate on this host: a holder over a scratch root, and `true` in it.
pub(crate) fn probe(tools: &Tools) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("workspace-local-probe-")
        .tempdir()
        .map_err(|e| format!("creating a probe directory: {e}"))?;
    let root = dir
        .path()
        .canonicalize()
        .map_err(|e| format!("resolving the probe directory: {e}"))?;
    let conf = Confinement {
        root: root.clone(),
        writable: Vec::new(),
        readable: Vec::new(),
        homes: Vec::new(),
        network: false,
    };
    let holder = Holder::spawn(tools, &conf)?;
    let spec = holder.enter(
        &tools.nsenter,
        Path::new(HOLDER_SHELL),
        "true",
        &root,
        vec![("PATH".into(), FALLBACK_PATH.into())],
    );
    let out = Command::new(&spec.program)
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output();
    holder.close();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "nsenter into the sandbox failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("running {}: {e}", tools.nsenter.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_read_once_complete() {
        let info = b"{\n    \"child-pid\": 42,\n    \"pid-namespace\": 4026532178\n}";
        assert_eq!(parse_info(info), Some(Ok(42)));
        assert!(parse_info(&info[..20]).is_none());
        assert!(parse_info(b"bwrap: warning\n").is_none());
        assert!(matches!(
            parse_info(b"{\"other\": 1}"),
            Some(Err(e)) if e.contains("no child-pid")
        ));
        let mut buf = Vec::new();
        let mut input: &[u8] = b"noise ws-holder-ready\n";
        assert_eq!(
            read_until(&mut input, &mut buf, |b| contains(b, READY).then_some(())),
            Some(())
        );
        let mut empty: &[u8] = b"";
        assert_eq!(read_until(&mut empty, &mut Vec::new(), parse_info), None);
    }
}
