//! OS isolation for the commands of a [`crate::LocalSandbox`]: what a caller asks for
//! ([`Isolation`]), what a sandbox ends up with ([`IsolationTier`]), and the bubblewrap
//! confinement behind the strongest tier.
//!
//! ## The bubblewrap tier (Linux)
//!
//! When a sandbox starts, one long-lived `bwrap` process (the *holder*, see the private
//! `namespace` module) creates the sandbox's namespaces: its own user, PID, IPC and UTS
//! namespaces, and its own network namespace (only a loopback device) unless the network is
//! allowed. Every command and background process then enters that namespace set with `nsenter`
//! in a new session, so commands of one sandbox see each other's processes (a server started in
//! the background answers a later `curl localhost`), but no process of the host, and no host
//! network service. Stopping or destroying the sandbox kills the holder, and the kernel kills
//! everything left in its PID namespace with it — daemons that left their process group with
//! `setsid` included. The holder runs with `--die-with-parent`, from a thread of its own, so a
//! crash of this process takes the sandbox down too.
//!
//! Its mount namespace sees the host read-only, with these exceptions:
//! - the sandbox root (at its host path, so the file API and commands agree on every path) and
//!   the configured writable paths are writable; configured readable paths are re-exposed
//!   read-only where a mask would hide them;
//! - `/tmp`, `/var/tmp` and `/run` are private and empty (host sockets under `/run`, the
//!   docker socket among them, are out of reach); `/dev` holds only `null`, `zero`, `full`,
//!   `random`, `urandom`, `tty` and a private `shm` (no pseudo-terminals); `/proc` shows the
//!   sandbox's own processes;
//! - home directories (`$HOME`, the user's passwd home, `/root`, `/home`) are empty, so
//!   `~/.ssh`, `~/.aws` and `~/.config` cannot be read unless explicitly allowed;
//! - when this process runs as root, commands run as uid/gid 1000 inside (root's files appear
//!   owned by it), so they hold no capability, and `/etc/shadow`, `/etc/gshadow` and
//!   `/etc/ssh` are hidden. Other files that only root may read stay readable: run as a
//!   normal user for a stronger boundary.
//!
//! A one-time probe per `bwrap`/`nsenter` pair ([`probe`]) runs the real thing (a holder and
//! one command in it), because inside many containers `bwrap` exists but cannot create
//! namespaces. Its outcome is cached for the life of the process.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use workspace_core::{Result, SandboxError};

use crate::host::FALLBACK_PATH;

/// The program looked up on `PATH` for the bubblewrap tier unless
/// [`crate::LocalSandboxBuilder::bwrap_path`] names another.
pub const DEFAULT_BWRAP: &str = "bwrap";
/// The program that enters a sandbox's namespaces (util-linux).
pub const NSENTER: &str = "nsenter";
/// The uid and gid commands run as inside the sandbox when this process runs as root.
pub const ROOT_MAPPED_ID: u32 = 1000;

/// How strictly a [`crate::LocalSandbox`] isolates its commands from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// No isolation: commands run directly on the host as the current user, with the whole
    /// filesystem and the network as that user has them.
    None,
    /// The strongest tier this host supports, else none (with a one-time `tracing` warning and
    /// the reason in `get_info`). The default.
    #[default]
    Auto,
    /// The strongest tier this host supports; building fails with
    /// [`SandboxError::IsolationUnavailable`] when there is none. Never runs unconfined.
    Required,
}

impl Isolation {
    /// Read a setting from its name: `none`, `auto` or `required` (any case).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(Isolation::None),
            "auto" => Ok(Isolation::Auto),
            "required" => Ok(Isolation::Required),
            other => Err(SandboxError::invalid(
                "isolation",
                format!("expected none, auto or required, got {other:?}"),
            )),
        }
    }
}

/// The isolation a sandbox actually has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IsolationTier {
    /// Commands run on the host unconfined.
    None,
    /// Commands run in the sandbox's bubblewrap namespaces (see the [module docs](self)).
    Bubblewrap,
}

impl IsolationTier {
    /// The tier's name as reported in `get_info` (`none`, `bubblewrap`).
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationTier::None => "none",
            IsolationTier::Bubblewrap => "bubblewrap",
        }
    }
}

impl fmt::Display for IsolationTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The programs the bubblewrap tier runs, found on this host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Tools {
    pub(crate) bwrap: PathBuf,
    pub(crate) nsenter: PathBuf,
}

impl Tools {
    /// Find `bwrap` (as configured, else on `PATH`) and `nsenter`; the error says which is
    /// missing and where it was looked for.
    pub(crate) fn find(bwrap: Option<&Path>) -> std::result::Result<Tools, String> {
        let bwrap = match bwrap {
            Some(p) if p.components().count() > 1 => {
                if is_executable(p) {
                    p.to_path_buf()
                } else {
                    return Err(format!("bwrap not found at {}", p.display()));
                }
            }
            Some(name) => find_on_path(name.as_os_str())
                .ok_or_else(|| format!("bwrap not found: no {} on PATH", name.display()))?,
            None => find_on_path(DEFAULT_BWRAP.as_ref()).ok_or_else(|| {
                "bwrap not found on PATH (install the bubblewrap package)".to_string()
            })?,
        };
        let nsenter = find_on_path(NSENTER.as_ref())
            .ok_or_else(|| "nsenter not found on PATH (install util-linux)".to_string())?;
        Ok(Tools { bwrap, nsenter })
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` in the directories of this process's `PATH`, then the standard system directories.
fn find_on_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(std::env::split_paths(FALLBACK_PATH))
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Where commands of a bubblewrap sandbox may write and what they may see: everything the
/// holder's command line is made from.
#[derive(Debug, Clone)]
pub(crate) struct Confinement {
    /// The sandbox root (canonical): writable, at its host path.
    pub(crate) root: PathBuf,
    /// Extra writable directories (canonical).
    pub(crate) writable: Vec<PathBuf>,
    /// Directories or files re-exposed read-only (canonical).
    pub(crate) readable: Vec<PathBuf>,
    /// Host home directories to hide (beside `/root` and `/home`).
    pub(crate) homes: Vec<PathBuf>,
    /// The network namespace is the host's.
    pub(crate) network: bool,
}

/// Directories always replaced by an empty private one.
const MASKED_DIRS: &[&str] = &["/tmp", "/var/tmp", "/run", "/var/run", "/root", "/home"];
/// Files hidden (replaced by an empty one) when commands would otherwise read them as root's.
const ROOT_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
];
/// Directories hidden for the same reason (host keys).
const ROOT_SECRET_DIRS: &[&str] = &["/etc/ssh"];

impl Confinement {
    /// The `bwrap` options (everything before `--`) that build this sandbox's namespaces.
    pub(crate) fn bwrap_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--hostname",
            "workspace-sandbox",
        ]
        .map(OsString::from)
        .to_vec();
        if !self.network {
            args.push("--unshare-net".into());
        }
        let as_root = nix::unistd::geteuid().is_root();
        if as_root {
            // Inside the user namespace uid 0 would keep every capability across exec (and
            // could remount the read-only binds writable); any other uid loses them.
            let id = ROOT_MAPPED_ID.to_string();
            args.extend(["--uid", &id, "--gid", &id].map(OsString::from));
        }
        args.extend(["--ro-bind", "/", "/"].map(OsString::from));
        args.extend(dev_args());
        args.extend(["--proc", "/proc"].map(OsString::from));

        let allowed: Vec<&PathBuf> = std::iter::once(&self.root)
            .chain(&self.writable)
            .chain(&self.readable)
            .collect();
        // A mask inside an allowed path would hide what the caller allowed.
        let hideable = |p: &Path| !allowed.iter().any(|a| p.starts_with(a));

        let mut masks: Vec<PathBuf> = MASKED_DIRS
            .iter()
            .map(PathBuf::from)
            .chain(self.homes.iter().cloned())
            .filter(|p| !p.is_symlink())
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| p.is_dir() && p != Path::new("/") && hideable(p))
            .collect();
        if as_root {
            masks.extend(
                ROOT_SECRET_DIRS
                    .iter()
                    .map(PathBuf::from)
                    .filter(|p| p.is_dir() && !p.is_symlink() && hideable(p)),
            );
        }
        masks.sort_by_key(|p| depth(p));
        masks.dedup();
        for m in &masks {
            args.push("--tmpfs".into());
            args.push(m.clone().into_os_string());
        }
        if as_root {
            for f in ROOT_SECRETS.iter().map(Path::new) {
                if f.is_file() && !f.is_symlink() && hideable(f) {
                    args.extend(["--ro-bind".into(), "/dev/null".into(), f.as_os_str().into()]);
                }
            }
        }
        if self.network {
            // resolv.conf often links into /run, which is masked: bring the file it names back.
            if let Ok(target) = std::fs::canonicalize("/etc/resolv.conf")
                && masks.iter().any(|m| target.starts_with(m))
            {
                args.extend(["--ro-bind".into(), target.clone().into(), target.into()]);
            }
        }

        // Parents before children, so a read-only path inside a writable one stays read-only.
        let mut binds: Vec<(&Path, bool)> = std::iter::once((self.root.as_path(), true))
            .chain(self.writable.iter().map(|p| (p.as_path(), true)))
            .chain(self.readable.iter().map(|p| (p.as_path(), false)))
            .collect();
        binds.sort_by_key(|(p, _)| depth(p));
        for (path, writable) in binds {
            args.push(if writable { "--bind" } else { "--ro-bind" }.into());
            args.push(path.as_os_str().into());
            args.push(path.as_os_str().into());
        }
        args.push("--chdir".into());
        args.push(self.root.clone().into_os_string());
        args
    }

    /// What the tier means for a model, for the sandbox's instructions.
    pub(crate) fn describe(&self) -> String {
        let mut writable = vec![self.root.display().to_string()];
        writable.extend(self.writable.iter().map(|p| p.display().to_string()));
        let network = if self.network {
            "The network is available."
        } else {
            "The network is disabled: there is no internet access and no way to reach services \
             on the host, so do not retry downloads (pip install, npm install, git clone, curl); \
             work with what is installed or ask the user. Servers you start inside the sandbox \
             are reachable from its other commands on localhost."
        };
        format!(
            "Commands run isolated by bubblewrap. Writable: {} and a private /tmp that is \
             emptied when the sandbox stops; the rest of the filesystem is read-only and home \
             directories are hidden. Only this sandbox's own processes are visible. {network}",
            writable.join(", ")
        )
    }
}

/// A minimal `/dev`, built by hand rather than with bwrap's `--dev`: mounting a devpts needs
/// uid 0 in the sandbox's user namespace, so for an unprivileged caller `--dev` makes bwrap
/// nest a second user namespace, and `nsenter` from outside can then enter the user namespace
/// but none of the namespaces the outer one owns. The cost: no pseudo-terminals inside.
fn dev_args() -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--tmpfs".into(), "/dev".into()];
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        let path = format!("/dev/{dev}");
        if Path::new(&path).exists() {
            args.extend(["--dev-bind".into(), path.clone().into(), path.into()]);
        }
    }
    for (target, link) in [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ] {
        args.extend(["--symlink".into(), target.into(), link.into()]);
    }
    args.extend(["--tmpfs".into(), "/dev/shm".into()]);
    args
}

fn depth(p: &Path) -> usize {
    p.components().count()
}

/// The host home directories to hide by default: `$HOME` and the passwd entry's home.
pub(crate) fn host_homes() -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::geteuid()) {
        homes.push(user.dir);
    }
    homes.retain(|h| h.is_absolute());
    homes.dedup();
    homes
}

/// The `bwrap` options (everything before `--`) a sandbox with this canonical root, the default
/// hidden homes and no extra paths starts its namespaces with. For diagnostics, and for
/// benchmarks that compare with a raw `bwrap` run over the same mount set.
pub fn bwrap_args(root: &Path, network: bool) -> Vec<OsString> {
    Confinement {
        root: root.to_path_buf(),
        writable: Vec::new(),
        readable: Vec::new(),
        homes: host_homes(),
        network,
    }
    .bwrap_args()
}

/// The outcome of one probe.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// The tier the probe found working ([`IsolationTier::None`] when none).
    pub tier: IsolationTier,
    /// Why the bubblewrap tier is unavailable, when it is.
    pub reason: Option<String>,
    /// How long the probe took (zero when it came from the cache).
    pub took: Duration,
}

type ProbeCache = Mutex<HashMap<Option<PathBuf>, std::result::Result<Tools, String>>>;

fn probe_cache() -> &'static ProbeCache {
    static CACHE: OnceLock<ProbeCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Find the tools and prove they isolate on this host, once per `bwrap` setting for the life of
/// the process; later calls return the cached outcome.
pub(crate) fn probe_tools(bwrap: Option<&Path>) -> std::result::Result<Tools, String> {
    let key = bwrap.map(Path::to_path_buf);
    // Held across the probe, so that concurrent builders probe once, not once each.
    let mut cache = probe_cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = cache.get(&key) {
        return found.clone();
    }
    let outcome = Tools::find(bwrap).and_then(|tools| {
        crate::namespace::probe(&tools)?;
        Ok(tools)
    });
    cache.insert(key, outcome.clone());
    outcome
}

/// Probe this host for the strongest isolation tier, bypassing the cache (the bubblewrap probe
/// starts a holder and runs `true` in it). For diagnostics and the benchmark of its cost;
/// sandboxes use the cached outcome.
pub fn probe(bwrap: Option<&Path>) -> ProbeReport {
    let started = Instant::now();
    let outcome = Tools::find(bwrap).and_then(|tools| crate::namespace::probe(&tools));
    ProbeReport {
        tier: if outcome.is_ok() {
            IsolationTier::Bubblewrap
        } else {
            IsolationTier::None
        },
        reason: outcome.err(),
        took: started.elapsed(),
    }
}

/// Log, once per process and reason, that `Auto` fell back to no isolation.
pub(crate) fn warn_unavailable_once(reason: &str) {
    static WARNED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let mut warned = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !warned.iter().any(|r| r == reason) {
        warned.push(reason.to_string());
        tracing::warn!(
            reason,
            "isolation unavailable: LocalSandbox commands run unconfined on the host \
             (Isolation::Required refuses instead; Isolation::None silences this)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(Isolation::parse("None").ok(), Some(Isolation::None));
        assert_eq!(Isolation::parse(" auto ").ok(), Some(Isolation::Auto));
        assert_eq!(Isolation::parse("REQUIRED").ok(), Some(Isolation::Required));
        assert!(matches!(
            Isolation::parse("strict"),
            Err(SandboxError::InvalidArgument { field, .. }) if field == "isolation"
        ));
    }

    #[test]
    fn missing_bwrap_is_named() {
        let err = Tools::find(Some(Path::new("/nonexistent/bwrap"))).expect_err("missing");
        assert_eq!(err, "bwrap not found at /nonexistent/bwrap");
        let err = Tools::find(Some(Path::new("no-such-bwrap-program"))).expect_err("missing");
        assert!(err.contains("no no-such-bwrap-program on PATH"), "{err}");
    }

    #[test]
    fn mount_set_hides_homes_and_binds_the_root_last_among_parents() {
        let conf = Confinement {
            root: PathBuf::from("/tmp"),
            writable: vec![],
            readable: vec![],
            homes: vec![],
            network: false,
        };
        let args: Vec<String> = conf
            .bwrap_args()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(line.contains("--unshare-net"), "{line}");
        assert!(line.contains("--ro-bind / /"), "{line}");
        // The root is /tmp here: masking it would hide the sandbox's own files.
        assert!(!line.contains("--tmpfs /tmp "), "{line}");
        assert!(line.ends_with("--bind /tmp /tmp --chdir /tmp"), "{line}");
        let with_net = Confinement {
            network: true,
            ..conf
        };
        let line = with_net
            .bwrap_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!line.contains("--unshare-net"), "{line}");
    }
}
