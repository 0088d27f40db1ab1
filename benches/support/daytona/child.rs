//! Figures that need a process of their own (peak memory cannot be reset, and the emulator's
//! CPU must not count as the client's) come from children: this same bench executable, started
//! again with `DAYTONA_BENCH_ROLE` set. No second build and no binary to locate: a fresh clone
//! needs only `cargo bench --bench daytona`.

use std::process::Stdio;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;

use super::Result;

/// Names the role of a child process.
pub const ROLE_VAR: &str = "DAYTONA_BENCH_ROLE";
/// The emulator's API URL, for child clients.
pub const API_URL_VAR: &str = "DAYTONA_BENCH_API_URL";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok().filter(|r| !r.is_empty())
}

/// A setting passed to a child, required.
pub fn setting(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// Runs this executable in `role` with `env`, waits for it, and parses the JSON on the last
/// line of its stdout. Its stderr goes to ours.
pub async fn run<T: DeserializeOwned>(role: &str, env: &[(&str, String)]) -> Result<T> {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.env(ROLE_VAR, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).await?;
    }
    let status = child.wait().await?;
    if !status.success() {
        return Err(format!("the {role} child failed ({status}); its output: {out}").into());
    }
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| format!("the {role} child printed nothing"))?;
    Ok(serde_json::from_str(last)
        .map_err(|e| format!("the {role} child's answer {last:?} is not what was expected: {e}"))?)
}

/// The child side of [`run`]: print the answer as the last stdout line.
pub fn answer<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
