//! Facts about the host a local sandbox needs: who runs commands, the environment they start
//! from, and the machine's resources.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use workspace_core::Resources;

/// `PATH` given to commands when the host has none.
pub const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user commands run as: this process's effective user.
pub fn current_user() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => std::env::var("USER").unwrap_or_else(|_| uid.to_string()),
    }
}

/// The environment every command starts from.
///
/// Minimal by default: `PATH` (the host's, or [`FALLBACK_PATH`]), `HOME` (the root), `LANG` and
/// `LC_ALL` (`C.UTF-8`), `TMPDIR` (the host's temporary directory, so scratch files do not land
/// in the workspace), `USER`, `LOGNAME` and `SHELL`. With `inherit_env`, the host environment
/// as it is at build time instead. Configured variables go on top of either.
pub fn base_env(
    inherit_env: bool,
    root: &Path,
    user: &str,
    shell: &Path,
    configured: &BTreeMap<String, String>,
) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
    if inherit_env {
        env.extend(std::env::vars_os());
    } else {
        let path = std::env::var_os("PATH")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| FALLBACK_PATH.into());
        env.insert("PATH".into(), path);
        env.insert("HOME".into(), root.as_os_str().to_owned());
        env.insert("LANG".into(), "C.UTF-8".into());
        env.insert("LC_ALL".into(), "C.UTF-8".into());
        env.insert("TMPDIR".into(), std::env::temp_dir().into_os_string());
        env.insert("USER".into(), user.into());
        env.insert("LOGNAME".into(), user.into());
        env.insert("SHELL".into(), shell.as_os_str().to_owned());
    }
    for (k, v) in configured {
        env.insert(k.into(), v.into());
    }
    env
}

/// CPU, memory and disk of the host (disk: the filesystem holding the root). Best effort.
pub fn host_resources(root: &Path) -> Resources {
    let cpu_cores = std::thread::available_parallelism()
        .ok()
        .map(|n| n.get() as f64);
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| parse_mem_total_kb(&s))
        .map(|kb| kb / 1024);
    let disk_mb = nix::sys::statvfs::statvfs(root)
        .ok()
        .and_then(|s| disk_bytes(&s))
        .map(|b| b / (1024 * 1024));
    Resources {
        cpu_cores,
        memory_mb,
        disk_mb,
    }
}

// The field types are u64 here but narrower on some 32-bit targets.
#[allow(clippy::useless_conversion)]
fn disk_bytes(s: &nix::sys::statvfs::Statvfs) -> Option<u64> {
    u64::from(s.blocks()).checked_mul(u64::from(s.fragment_size()))
}

fn parse_mem_total_kb(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parses() {
        let s = "MemFree:  10 kB\nMemTotal:       16318480 kB\n";
        assert_eq!(parse_mem_total_kb(s), Some(16318480));
        assert_eq!(parse_mem_total_kb("nothing"), None);
    }

    #[test]
    fn minimal_env_has_only_the_documented_names() {
        let configured = BTreeMap::from([("EXTRA".to_string(), "1".to_string())]);
        let env = base_env(
            false,
            Path::new("/r"),
            "u",
            Path::new("/bin/sh"),
            &configured,
        );
        let names: Vec<_> = env
            .keys()
            .map(|k| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "EXTRA", "HOME", "LANG", "LC_ALL", "LOGNAME", "PATH", "SHELL", "TMPDIR", "USER"
            ]
        );
        assert_eq!(env[&OsString::from("HOME")], "/r");
    }
}
