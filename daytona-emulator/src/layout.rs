//! A sandbox's directory on the host, the mapping between sandbox paths and host paths, and how
//! a command line becomes a local process.
//!
//! Each sandbox owns one host directory:
//!
//! ```text
//! <dir>/home        the user's home and work dir   (sandbox path /home/daytona)
//! <dir>/tmp         its /tmp                         (sandbox path /tmp)
//! <dir>/workspace   its /workspace                   (sandbox path /workspace)
//! <dir>/daemon      the emulated daemon's own state: session logs, scripts (not a sandbox path)
//! ```
//!
//! ## Isolation modes
//!
//! - [`Isolation::Bubblewrap`] (when `bwrap` works on this machine): every command runs in a
//!   bubblewrap mount namespace where the host's root entries are bound read-only and the three
//!   directories above are bound writable at their sandbox paths, so `/tmp/x` names the same
//!   file for a command and for the file API. The host pid namespace is kept on purpose (no
//!   `--unshare-pid`): the emulator kills a command's whole process group from outside, and
//!   leak checks find processes by host pid. The network is not unshared either (preview
//!   servers must be reachable). `--die-with-parent` makes a command die with the emulator
//!   thread that started it, so a crashed emulator leaves nothing behind. This is confinement
//!   of *paths*, not security isolation.
//! - [`Isolation::Host`] (no working `bwrap`, or `DAYTONA_EMULATOR_ISOLATION=host`): commands
//!   are plain host processes started in the host path of the home dir; sandbox paths *are*
//!   host paths, and only the sandbox's own three directories are accepted by the file API.
//!   `/user-home-dir` and `/work-dir` then report the host path.
//!
//! ## Path confinement
//!
//! [`SandboxLayout::resolve`] maps a sandbox path to a host path: relative paths resolve
//! against the home dir, `..` is applied lexically, and every symlink on the way is followed
//! *in sandbox path space* (an absolute link target means a sandbox path, as it would for a
//! process in the namespace). Whatever ends outside the sandbox's own directories is refused
//! with a daemon error, before anything on the host is touched. The check and the later use are
//! two steps, so a process inside the sandbox racing to swap a directory for a symlink could
//! still win; the emulator is a test tool, not a security boundary.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::http::StatusCode;
use daytona_api::toolbox::codes;
use workspace_local::runner::ProcessSpec;

use crate::error::ApiError;

/// In-namespace path where the daemon state dir is bound in bubblewrap mode.
const STATE_MOUNT: &str = "/.daytona-emulator";
/// Environment variable that forces an isolation mode: `host` or `bwrap`.
pub const ISOLATION_ENV: &str = "DAYTONA_EMULATOR_ISOLATION";
/// `PATH` given to every command.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Symlinks followed while resolving one path before giving up, as Linux does.
const MAX_SYMLINK_HOPS: usize = 40;
/// Longest script passed as a `-c` argument; longer ones go through a file (the kernel caps
/// one argument at 128 KiB).
const MAX_INLINE_SCRIPT: usize = 64 * 1024;

/// How commands of a sandbox are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// In a bubblewrap mount namespace; sandbox paths are `/home/daytona`, `/tmp`, `/workspace`.
    Bubblewrap,
    /// Plain host processes; sandbox paths are the host paths of the sandbox's directories.
    Host,
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isolation::Bubblewrap => "bubblewrap",
            Isolation::Host => "host",
        })
    }
}

/// The isolation this machine supports, probed once per process: bubblewrap when a real
/// `bwrap` run with this module's mount set succeeds, else host (with a warning).
/// `DAYTONA_EMULATOR_ISOLATION=host|bwrap` overrides the probe.
pub fn detect_isolation() -> Isolation {
    static DETECTED: OnceLock<Isolation> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        match std::env::var(ISOLATION_ENV).ok().as_deref() {
            Some("host") => {
                tracing::info!("{ISOLATION_ENV}=host: sandbox commands run as plain host processes");
                return Isolation::Host;
            }
            Some("bwrap") | Some("bubblewrap") => return Isolation::Bubblewrap,
            _ => {}
        }
        match probe_bwrap() {
            Ok(()) => Isolation::Bubblewrap,
            Err(why) => {
                tracing::warn!(
                    reason = %why,
                    "bubblewrap is not usable: sandbox commands run as plain host processes, \
                     sandbox paths are host paths (install the `bubblewrap` package to confine them)"
                );
                Isolation::Host
            }
        }
    })
}

/// Run `true` through bwrap with the same mount set real sandboxes get.
fn probe_bwrap() -> Result<(), String> {
    let probe_dir = tempfile::Builder::new()
        .prefix("daytona-emulator-probe")
        .tempdir()
        .map_err(|e| format!("creating a probe dir: {e}"))?;
    let layout =
        SandboxLayout::create_with(probe_dir.path(), "/home/daytona", Isolation::Bubblewrap)
            .map_err(|e| format!("creating a probe layout: {e}"))?;
    let spec = layout
        .command_spec("true", None, &BTreeMap::new())
        .map_err(|e| e.message)?;
    let output = std::process::Command::new(&spec.spec.program)
        .args(&spec.spec.args)
        .current_dir(&spec.spec.cwd)
        .env_clear()
        .envs(spec.spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running bwrap: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "bwrap exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The host path of `program` as a command of a sandbox would find it on its default `PATH`
/// (the directories of the host's read-only system tree, in both isolation modes).
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    DEFAULT_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The shell commands run in: bash when installed (as the real daemon prefers zsh/bash), else sh.
fn shell_path() -> &'static Path {
    static SHELL: OnceLock<PathBuf> = OnceLock::new();
    SHELL.get_or_init(|| {
        ["/usr/bin/bash", "/bin/bash"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("/bin/sh"))
    })
}

/// One writable directory of the sandbox: where it appears and where it lives.
#[derive(Debug, Clone)]
struct Mount {
    /// Normalized absolute sandbox path, no trailing slash.
    sandbox: String,
    /// Host directory (canonical).
    host: PathBuf,
}

/// A sandbox path mapped to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPath {
    /// Host path (symlinks resolved as requested).
    pub host: PathBuf,
    /// Normalized sandbox path of the same entry.
    pub sandbox: String,
}

/// A process spec ready to run, plus the script file (if any) it reads; the file is deleted
/// when this is dropped, so keep it alive until the process has exited.
#[derive(Debug)]
pub struct PreparedCommand {
    /// What to run.
    pub spec: ProcessSpec,
    _script: Option<tempfile::TempPath>,
}

/// Extra settings for [`SandboxLayout::command_spec_with`].
#[derive(Debug, Clone, Default)]
pub struct CommandExtras {
    /// Host paths (canonical, absolute) made visible read-only at the same path inside the
    /// bubblewrap namespace, e.g. the local repository a `git clone` reads. Host mode ignores
    /// them: every host path is visible there anyway.
    pub ro_binds: Vec<PathBuf>,
    /// Bind the host's `/dev/pts` (bubblewrap only), so a terminal the emulator opened is a
    /// terminal for the command too.
    pub host_pts: bool,
}

/// Directories of one sandbox and the mapping between sandbox paths and host paths.
#[derive(Debug)]
pub struct SandboxLayout {
    root: PathBuf,
    home: PathBuf,
    tmp: PathBuf,
    workspace: PathBuf,
    state: PathBuf,
    home_path: String,
    /// The home dir as a sandbox would name it under bubblewrap (`/home/daytona`), whatever the
    /// mode: volume mount paths are written against it.
    virtual_home: String,
    user: String,
    isolation: Isolation,
    mounts: Vec<Mount>,
    /// Sandbox paths of the volumes mounted with [`SandboxLayout::add_volume`].
    volumes: Vec<String>,
}

impl SandboxLayout {
    /// Create the sandbox directory tree under `dir` (created if missing) for a sandbox whose
    /// home is `home_path` (e.g. `/home/daytona`), confined as [`detect_isolation`] says.
    pub fn create(dir: &Path, home_path: &str) -> io::Result<Self> {
        Self::create_with(dir, home_path, detect_isolation())
    }

    /// [`SandboxLayout::create`] with an explicit isolation mode.
    pub fn create_with(dir: &Path, home_path: &str, isolation: Isolation) -> io::Result<Self> {
        let home_path = normalize_absolute(home_path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("home path must be absolute and not `/`, got {home_path:?}"),
            )
        })?;
        if home_path == "/" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "home path must not be `/`",
            ));
        }
        std::fs::create_dir_all(dir)?;
        let root = dir.canonicalize()?;
        let home = root.join("home");
        let tmp = root.join("tmp");
        let workspace = root.join("workspace");
        let state = root.join("daemon");
        for d in [&home, &tmp, &workspace, &state] {
            std::fs::create_dir_all(d)?;
        }
        let user = home_path
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("daytona")
            .to_string();
        let mounts = match isolation {
            Isolation::Bubblewrap => vec![
                Mount {
                    sandbox: home_path.clone(),
                    host: home.clone(),
                },
                Mount {
                    sandbox: "/tmp".into(),
                    host: tmp.clone(),
                },
                Mount {
                    sandbox: "/workspace".into(),
                    host: workspace.clone(),
                },
            ],
            Isolation::Host => [&home, &tmp, &workspace]
                .into_iter()
                .map(|h| {
                    Ok(Mount {
                        sandbox: host_to_str(h)?,
                        host: h.clone(),
                    })
                })
                .collect::<io::Result<Vec<_>>>()?,
        };
        let virtual_home = home_path.clone();
        let home_path = match isolation {
            Isolation::Bubblewrap => home_path,
            Isolation::Host => host_to_str(&home)?,
        };
        Ok(SandboxLayout {
            root,
            home,
            tmp,
            workspace,
            state,
            home_path,
            virtual_home,
            user,
            isolation,
            mounts,
            volumes: Vec::new(),
        })
    }

    /// Mounts a volume's host directory `host_dir` at the sandbox path `mount_path`, for
    /// commands and the file API alike. Call before the layout is shared.
    ///
    /// Where a volume may go:
    /// - below the home dir, `/tmp` or `/workspace` (in both modes; in host mode the mount point
    ///   is a symlink in the sandbox's directory, and the volume's sandbox path is that host
    ///   path, as every sandbox path is in host mode);
    /// - under bubblewrap also at a new top-level directory such as `/data` (one the host's root
    ///   does not have: `/etc/x` would need a directory inside the read-only host `/etc`).
    ///
    /// Anything else (relative paths, `/`, system directories, the sandbox's own directories
    /// themselves, a path inside another volume) is a 400 naming the path.
    pub fn add_volume(&mut self, mount_path: &str, host_dir: &Path) -> Result<String, ApiError> {
        let invalid = |why: &str| {
            ApiError::bad_request(format!("Invalid volume mount path {mount_path:?}: {why}"))
        };
        if mount_path.split('/').any(|c| c == "..") {
            return Err(invalid("`..` is not allowed"));
        }
        let normalized =
            normalize_absolute(mount_path).ok_or_else(|| invalid("it must be an absolute path"))?;
        if normalized == "/" {
            return Err(invalid("a volume cannot replace /"));
        }
        if let Some(other) = self.volumes.iter().find(|v| {
            **v == normalized
                || normalized.starts_with(&format!("{v}/"))
                || v.starts_with(&format!("{normalized}/"))
        }) {
            return Err(invalid(&format!(
                "it overlaps the volume mounted at {other}"
            )));
        }
        let host_dir = host_dir.canonicalize().map_err(|e| {
            tracing::error!(dir = %host_dir.display(), error = %e, "volume directory unusable");
            ApiError::internal()
        })?;
        let roots = [
            (self.virtual_home.clone(), self.home.clone()),
            ("/tmp".to_string(), self.tmp.clone()),
            ("/workspace".to_string(), self.workspace.clone()),
        ];
        let allowed = format!(
            "volumes go below {}, /tmp or /workspace{}",
            self.virtual_home,
            match self.isolation {
                Isolation::Bubblewrap => ", or at a new top-level directory such as /data",
                Isolation::Host => " (other places need bubblewrap, which is not in use)",
            }
        );
        for (root, host_root) in &roots {
            if normalized == *root {
                return Err(invalid(&format!(
                    "{root} is one of the sandbox's own directories; {allowed}"
                )));
            }
            let Some(rest) = normalized
                .strip_prefix(root.as_str())
                .and_then(|r| r.strip_prefix('/'))
            else {
                continue;
            };
            let point = host_root.join(rest);
            let io_err = |e: io::Error| {
                tracing::error!(point = %point.display(), error = %e, "cannot prepare a volume mount point");
                ApiError::internal()
            };
            let sandbox = match self.isolation {
                Isolation::Bubblewrap => {
                    std::fs::create_dir_all(&point).map_err(io_err)?;
                    normalized.clone()
                }
                Isolation::Host => {
                    if let Some(parent) = point.parent() {
                        std::fs::create_dir_all(parent).map_err(io_err)?;
                    }
                    std::os::unix::fs::symlink(&host_dir, &point).map_err(io_err)?;
                    host_to_str(&point).map_err(io_err)?
                }
            };
            self.mounts.push(Mount {
                sandbox: sandbox.clone(),
                host: host_dir,
            });
            self.volumes.push(normalized);
            return Ok(sandbox);
        }
        if self.isolation == Isolation::Host {
            return Err(invalid(&allowed));
        }
        let top = components(&normalized).next().unwrap_or_default();
        let reserved = top == STATE_MOUNT.trim_start_matches('/')
            || ["proc", "dev"].contains(&top.as_str())
            || Path::new("/").join(&top).symlink_metadata().is_ok();
        if reserved {
            return Err(invalid(&format!(
                "/{top} is a directory of the host system; {allowed}"
            )));
        }
        self.mounts.push(Mount {
            sandbox: normalized.clone(),
            host: host_dir,
        });
        self.volumes.push(normalized.clone());
        Ok(normalized)
    }

    /// The shell commands run in (bash when installed, else sh).
    pub fn shell(&self) -> &'static Path {
        shell_path()
    }

    /// Delete the sandbox's whole directory.
    pub fn remove(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// How commands are confined.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The sandbox's host directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The home (and work) dir as a sandbox path: what `/user-home-dir` and `/work-dir` report.
    pub fn home_dir(&self) -> &str {
        &self.home_path
    }

    /// Host directory of the home dir.
    pub fn home_host(&self) -> &Path {
        &self.home
    }

    /// Host directory of the sandbox's `/tmp`.
    pub fn tmp_host(&self) -> &Path {
        &self.tmp
    }

    /// Host directory of the sandbox's `/workspace`.
    pub fn workspace_host(&self) -> &Path {
        &self.workspace
    }

    /// Host directory for the emulated daemon's own files (not reachable by sandbox paths).
    pub fn state_host(&self) -> &Path {
        &self.state
    }

    /// Where a host path under [`SandboxLayout::state_host`] appears to a command.
    pub fn state_path_for_command(&self, host: &Path) -> Option<String> {
        let rel = host.strip_prefix(&self.state).ok()?;
        let base = match self.isolation {
            Isolation::Bubblewrap => PathBuf::from(STATE_MOUNT),
            Isolation::Host => self.state.clone(),
        };
        base.join(rel).to_str().map(str::to_string)
    }

    /// Map a sandbox path to the host, following every symlink (also a final one).
    pub fn to_host(&self, sandbox_path: &str) -> Result<PathBuf, ApiError> {
        self.resolve(sandbox_path, true).map(|r| r.host)
    }

    /// Map a sandbox path to the host. With `follow_final` false a final symlink is not
    /// followed (the entry itself is meant: delete, move, lstat); parents always are.
    pub fn resolve(
        &self,
        sandbox_path: &str,
        follow_final: bool,
    ) -> Result<ResolvedPath, ApiError> {
        if sandbox_path.is_empty() {
            return Err(invalid_path("path is required"));
        }
        if sandbox_path.contains('\0') {
            return Err(invalid_path("path contains a NUL byte"));
        }
        let absolute = if sandbox_path.starts_with('/') {
            sandbox_path.to_string()
        } else {
            format!("{}/{}", self.home_path, sandbox_path)
        };
        let mut pending: VecDeque<String> = components(&absolute).collect();
        let mut current: Vec<String> = Vec::new();
        let mut hops = 0usize;
        while let Some(comp) = pending.pop_front() {
            if comp == ".." {
                current.pop();
                continue;
            }
            current.push(comp);
            if pending.is_empty() && !follow_final {
                break;
            }
            let here = join_components(&current);
            let Some(host) = self.mount_host(&here) else {
                // An ancestor of a mount (`/home`) or a path outside: nothing of ours to follow.
                continue;
            };
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(invalid_path(format!(
                    "too many levels of symbolic links: {sandbox_path}"
                )));
            }
            let target = std::fs::read_link(&host).map_err(|e| {
                ApiError::daemon(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_FILE_PATH,
                    format!("reading symlink {here}: {e}"),
                )
            })?;
            let target = target
                .to_str()
                .ok_or_else(|| invalid_path(format!("symlink {here} has a non-UTF-8 target")))?;
            current.pop();
            if target.starts_with('/') {
                current.clear();
            }
            for c in components(target).rev() {
                pending.push_front(c);
            }
        }
        let sandbox = join_components(&current);
        match self.mount_host(&sandbox) {
            Some(host) => Ok(ResolvedPath { host, sandbox }),
            None => Err(ApiError::daemon(
                StatusCode::FORBIDDEN,
                codes::FILE_ACCESS_DENIED,
                format!(
                    "access denied: {sandbox_path} is outside the sandbox's directories ({})",
                    self.mounts
                        .iter()
                        .map(|m| m.sandbox.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The sandbox path of a host path inside one of the sandbox's directories (or volumes).
    pub fn to_sandbox(&self, host: &Path) -> Option<String> {
        self.mounts
            .iter()
            .filter_map(|m| {
                let rel = host.strip_prefix(&m.host).ok()?;
                let rel = rel.to_string_lossy();
                let path = if rel.is_empty() {
                    m.sandbox.clone()
                } else {
                    format!("{}/{}", m.sandbox, rel)
                };
                Some((m.host.as_os_str().len(), path))
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, path)| path)
    }

    /// Whether commands of this sandbox fail to see the host path `path` under its own name.
    /// Under bubblewrap the host's top-level directories that the sandbox's own directories
    /// live in (`/home`, `/tmp`, `/workspace`, a volume's top directory) are replaced, as are
    /// `/proc` and `/dev`; everything else of the host is visible read-only. Host mode hides
    /// nothing.
    pub fn hides_host_path(&self, path: &Path) -> bool {
        if self.isolation == Isolation::Host {
            return false;
        }
        let Some(top) = path.to_str().and_then(|p| components(p).next()) else {
            return true;
        };
        top == "proc"
            || top == "dev"
            || top == STATE_MOUNT.trim_start_matches('/')
            || self
                .mounts
                .iter()
                .any(|m| components(&m.sandbox).next().as_deref() == Some(top.as_str()))
    }

    /// Whether `host` is one of the sandbox's own directories itself (its home, `/tmp` or
    /// `/workspace`), which must not be deleted or moved away.
    pub fn is_mount_root(&self, host: &Path) -> bool {
        self.mounts.iter().any(|m| m.host == host)
    }

    /// Host path of a normalized absolute sandbox path inside a mount. The deepest mount wins,
    /// so a volume mounted below the home dir shadows the home dir's own directory there.
    fn mount_host(&self, sandbox: &str) -> Option<PathBuf> {
        self.mounts
            .iter()
            .filter_map(|m| {
                if sandbox == m.sandbox {
                    Some((m.sandbox.len(), m.host.clone()))
                } else {
                    let rest = sandbox.strip_prefix(&m.sandbox)?.strip_prefix('/')?;
                    Some((m.sandbox.len(), m.host.join(rest)))
                }
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, host)| host)
    }

    /// The environment every command starts from: a minimal base, then `env` (sandbox env and
    /// per-request envs, later entries win). Nothing of the emulator's own environment leaks in.
    pub fn command_env(&self, env: &BTreeMap<String, String>) -> Vec<(OsString, OsString)> {
        let tmp = match self.isolation {
            Isolation::Bubblewrap => "/tmp".to_string(),
            Isolation::Host => self.tmp.to_string_lossy().into_owned(),
        };
        let mut base: BTreeMap<String, String> = BTreeMap::new();
        base.insert("PATH".into(), DEFAULT_PATH.into());
        base.insert("HOME".into(), self.home_path.clone());
        base.insert("USER".into(), self.user.clone());
        base.insert("LOGNAME".into(), self.user.clone());
        base.insert("LANG".into(), "C.UTF-8".into());
        base.insert("TMPDIR".into(), tmp);
        base.insert("SHELL".into(), shell_path().to_string_lossy().into_owned());
        for (k, v) in env {
            base.insert(k.clone(), v.clone());
        }
        base.into_iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    /// A process that runs `script` with the sandbox shell in `cwd` (a sandbox path; default
    /// the home dir) with [`SandboxLayout::command_env`]`(env)`, confined per
    /// [`SandboxLayout::isolation`]. A `cwd` outside the sandbox is refused (403); one that
    /// does not exist is left to fail at spawn time, as on the real daemon.
    pub fn command_spec(
        &self,
        script: &str,
        cwd: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<PreparedCommand, ApiError> {
        self.command_spec_with(script, cwd, env, &CommandExtras::default())
    }

    /// [`SandboxLayout::command_spec`] with [`CommandExtras`]: host paths shown read-only, the
    /// host's `/dev/pts` for terminals.
    pub fn command_spec_with(
        &self,
        script: &str,
        cwd: Option<&str>,
        env: &BTreeMap<String, String>,
        extras: &CommandExtras,
    ) -> Result<PreparedCommand, ApiError> {
        let cwd = match cwd {
            Some(c) if !c.is_empty() => self.resolve(c, true)?,
            _ => ResolvedPath {
                host: self.home.clone(),
                sandbox: self.home_path.clone(),
            },
        };
        let (script_arg, script_file) = if script.len() > MAX_INLINE_SCRIPT {
            let file = self.write_script(script)?;
            let in_sandbox = self.state_path_for_command(&file).ok_or_else(|| {
                ApiError::daemon(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL_SERVER_ERROR,
                    "script file outside the state dir",
                )
            })?;
            (format!(". {}", shell_single_quote(&in_sandbox)), Some(file))
        } else {
            (script.to_string(), None)
        };
        let env = self.command_env(env);
        let shell = shell_path();
        let spec = match self.isolation {
            Isolation::Host => ProcessSpec {
                program: shell.as_os_str().to_owned(),
                args: vec!["-c".into(), script_arg.into()],
                cwd: cwd.host,
                env,
                new_session: false,
            },
            Isolation::Bubblewrap => {
                let mut args = bwrap_root_args(&self.mounts);
                args.extend(
                    ["--dev", "/dev", "--proc", "/proc", "--die-with-parent"].map(OsString::from),
                );
                if extras.host_pts {
                    // bwrap's `--dev` brings a fresh devpts instance, where the terminal the
                    // emulator opened does not exist; `tty` would then fail inside.
                    args.extend(["--dev-bind", "/dev/pts", "/dev/pts"].map(OsString::from));
                }
                // Parents before children: a volume below the home dir is bound after the home.
                let mut mounts: Vec<&Mount> = self.mounts.iter().collect();
                mounts.sort_by_key(|m| m.sandbox.matches('/').count());
                for m in mounts {
                    args.push("--bind".into());
                    args.push(m.host.clone().into_os_string());
                    args.push(m.sandbox.clone().into());
                }
                for source in &extras.ro_binds {
                    args.push("--ro-bind".into());
                    args.push(source.clone().into_os_string());
                    args.push(source.clone().into_os_string());
                }
                args.push("--bind".into());
                args.push(self.state.clone().into_os_string());
                args.push(STATE_MOUNT.into());
                args.push("--chdir".into());
                args.push(cwd.sandbox.into());
                args.push("--".into());
                args.push(shell.as_os_str().to_owned());
                args.push("-c".into());
                args.push(script_arg.into());
                ProcessSpec {
                    program: bwrap_program().into(),
                    args,
                    cwd: self.home.clone(),
                    env,
                    new_session: false,
                }
            }
        };
        Ok(PreparedCommand {
            spec,
            _script: script_file,
        })
    }

    /// Write a long script to a file in the state dir; it is removed when the path is dropped.
    fn write_script(&self, script: &str) -> Result<tempfile::TempPath, ApiError> {
        let dir = self.state.join("scripts");
        let io_err = |e: io::Error| ApiError::daemon_internal("writing the command script", e);
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let mut file = tempfile::Builder::new()
            .prefix("cmd-")
            .suffix(".sh")
            .tempfile_in(&dir)
            .map_err(io_err)?;
        io::Write::write_all(&mut file, script.as_bytes()).map_err(io_err)?;
        Ok(file.into_temp_path())
    }
}

/// `bwrap` from the usual places, else by `PATH` lookup.
fn bwrap_program() -> &'static str {
    ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("bwrap")
}

/// Bind the host's root entries read-only, except the top-level directories our mounts live
/// under (they are created fresh in bwrap's tmpfs root, so mount points need not exist on the
/// host) and the virtual file systems bwrap sets up itself.
fn bwrap_root_args(mounts: &[Mount]) -> Vec<OsString> {
    static ROOT_ENTRIES: OnceLock<Vec<(String, Option<OsString>)>> = OnceLock::new();
    let entries = ROOT_ENTRIES.get_or_init(|| {
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir("/") else {
            return out;
        };
        for entry in dir.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = Path::new("/").join(&name);
            let link = std::fs::symlink_metadata(&path)
                .ok()
                .filter(|m| m.file_type().is_symlink())
                .and_then(|_| std::fs::read_link(&path).ok())
                .map(PathBuf::into_os_string);
            out.push((name, link));
        }
        out.sort();
        out
    });
    let mut skip: Vec<&str> = vec!["proc", "dev"];
    skip.extend(
        mounts
            .iter()
            .filter_map(|m| m.sandbox.split('/').find(|c| !c.is_empty())),
    );
    let skip_dot = STATE_MOUNT.trim_start_matches('/');
    let mut args = Vec::new();
    for (name, link) in entries {
        if skip.contains(&name.as_str()) || name == skip_dot {
            continue;
        }
        let path = format!("/{name}");
        match link {
            Some(target) => {
                args.push("--symlink".into());
                args.push(target.clone());
                args.push(path.into());
            }
            None => {
                args.push("--ro-bind".into());
                args.push(path.clone().into());
                args.push(path.into());
            }
        }
    }
    // Parents of mount points created by bwrap would be 0700; make them traversable.
    let mut made: Vec<String> = Vec::new();
    for m in mounts {
        let comps: Vec<String> = components(&m.sandbox).collect();
        for i in 1..comps.len() {
            let parent = join_components(&comps[..i]);
            if !made.contains(&parent) {
                args.extend(["--perms", "0755", "--dir"].map(OsString::from));
                args.push(parent.clone().into());
                made.push(parent);
            }
        }
    }
    args
}

/// Non-empty, non-`.` components of a `/`-separated path.
fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

fn join_components(comps: &[String]) -> String {
    if comps.is_empty() {
        "/".to_string()
    } else {
        format!("/{}", comps.join("/"))
    }
}

/// Lexically normalize an absolute path (`..` at the root stays at the root).
fn normalize_absolute(path: &str) -> Option<String> {
    if !path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for c in components(path) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    Some(join_components(&out))
}

fn host_to_str(p: &Path) -> io::Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("sandbox directory {} is not valid UTF-8", p.display()),
        )
    })
}

fn invalid_path(message: impl Into<String>) -> ApiError {
    ApiError::daemon(StatusCode::BAD_REQUEST, codes::INVALID_FILE_PATH, message)
}

/// Quote for POSIX shells: `'...'` with embedded quotes as `'\''`.
pub(crate) fn shell_single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn layout(isolation: Isolation) -> (tempfile::TempDir, SandboxLayout) {
        let dir = tempfile::tempdir().unwrap();
        let l =
            SandboxLayout::create_with(&dir.path().join("sb"), "/home/daytona", isolation).unwrap();
        (dir, l)
    }

    #[test]
    fn bubblewrap_paths_map_to_the_sandbox_dirs() {
        let (_d, l) = layout(Isolation::Bubblewrap);
        assert_eq!(l.home_dir(), "/home/daytona");
        assert_eq!(l.to_host("a.txt").unwrap(), l.home_host().join("a.txt"));
        assert_eq!(l.to_host("/tmp/x").unwrap(), l.tmp_host().join("x"));
        assert_eq!(l.to_host("/workspace").unwrap(), l.workspace_host());
        assert_eq!(
            l.to_host("/home/daytona/./d/../e").unwrap(),
            l.home_host().join("e")
        );
        assert_eq!(
            l.to_sandbox(&l.tmp_host().join("q")).as_deref(),
            Some("/tmp/q")
        );
    }

    #[test]
    fn escapes_are_refused() {
        let (_d, l) = layout(Isolation::Bubblewrap);
        for p in [
            "/etc/passwd",
            "../../etc/passwd",
            "/home/daytona/../../etc",
            "/",
            "/home",
        ] {
            let e = l.to_host(p).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{p}");
            assert_eq!(e.code.as_deref(), Some(codes::FILE_ACCESS_DENIED));
        }
        let e = l.to_host("a\0b").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(l.to_host("").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn symlinks_resolve_in_sandbox_space() {
        let (_d, l) = layout(Isolation::Bubblewrap);
        std::os::unix::fs::symlink("/etc", l.home_host().join("out")).unwrap();
        std::os::unix::fs::symlink("/tmp", l.home_host().join("t")).unwrap();
        std::os::unix::fs::symlink("../../../..", l.home_host().join("up")).unwrap();
        std::os::unix::fs::symlink("loop", l.home_host().join("loop")).unwrap();
        assert_eq!(
            l.to_host("out/passwd").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            l.to_host("up/etc").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(l.to_host("t/x").unwrap(), l.tmp_host().join("x"));
        assert_eq!(
            l.to_host("loop").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        // Not following the final link names the link itself.
        let r = l.resolve("out", false).unwrap();
        assert_eq!(r.host, l.home_host().join("out"));
    }

    #[test]
    fn host_mode_uses_host_paths() {
        let (_d, l) = layout(Isolation::Host);
        assert_eq!(l.home_dir(), l.home_host().to_str().unwrap());
        let p = format!("{}/x", l.tmp_host().display());
        assert_eq!(l.to_host(&p).unwrap(), l.tmp_host().join("x"));
        assert_eq!(
            l.to_host("/tmp/x").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(l.to_host("f").unwrap(), l.home_host().join("f"));
    }

    #[test]
    fn command_env_is_minimal_and_overridable() {
        let (_d, l) = layout(Isolation::Bubblewrap);
        let mut extra = BTreeMap::new();
        extra.insert("FOO".to_string(), "bar".to_string());
        extra.insert("LANG".to_string(), "de_DE.UTF-8".to_string());
        let env: BTreeMap<_, _> = l.command_env(&extra).into_iter().collect();
        assert_eq!(env.get(&OsString::from("HOME")).unwrap(), "/home/daytona");
        assert_eq!(env.get(&OsString::from("USER")).unwrap(), "daytona");
        assert_eq!(env.get(&OsString::from("LANG")).unwrap(), "de_DE.UTF-8");
        assert_eq!(env.get(&OsString::from("FOO")).unwrap(), "bar");
        assert!(!env.contains_key(&OsString::from("CARGO")));
    }

    #[test]
    fn long_scripts_go_through_a_file_that_is_removed_on_drop() {
        let (_d, l) = layout(Isolation::Host);
        let script = format!("echo {}", "x".repeat(MAX_INLINE_SCRIPT + 1));
        let prepared = l.command_spec(&script, None, &BTreeMap::new()).unwrap();
        let scripts = l.state_host().join("scripts");
        assert_eq!(std::fs::read_dir(&scripts).unwrap().count(), 1);
        drop(prepared);
        assert_eq!(std::fs::read_dir(&scripts).unwrap().count(), 0);
    }

    #[test]
    fn remove_deletes_everything() {
        let (_d, l) = layout(Isolation::Host);
        std::fs::write(l.home_host().join("f"), b"x").unwrap();
        l.remove().unwrap();
        assert!(!l.root().exists());
        l.remove().unwrap();
    }
}
