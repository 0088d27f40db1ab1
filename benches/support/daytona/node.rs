//! The official TypeScript SDK's side: `tests/ts-sdk/bench.mjs`, one long-lived `node` process
//! that answers one JSON line per request, so Node's start-up is never timed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::{API_KEY, Result};

/// One request may take this long at most (a batch of commands, a create).
const ANSWER_WAIT: Duration = Duration::from_secs(300);

/// The directory of the pinned SDK and the worker script.
pub fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts-sdk")
}

/// Installs the pinned SDK (`npm ci`) unless it is there.
async fn ensure_node_modules(dir: &Path) -> Result<()> {
    if dir
        .join("node_modules/@daytonaio/sdk/package.json")
        .is_file()
    {
        return Ok(());
    }
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .await
        .map_err(|e| format!("npm is needed to install the TypeScript SDK: {e}"))?;
    if !status.success() {
        return Err(format!("npm ci failed in {}", dir.display()).into());
    }
    Ok(())
}

/// Wall time of each command of a batch and the CPU time the batch cost its client process.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Each command's wall time, in order.
    pub latencies: Vec<Duration>,
    /// User plus system CPU time of the client process over the whole batch.
    pub cpu: Duration,
}

#[derive(Deserialize)]
struct BatchAnswer {
    lat_ms: Vec<f64>,
    cpu_us: u64,
}

#[derive(Deserialize)]
struct FirstAnswer {
    first_ms: f64,
}

/// The running worker.
pub struct NodeWorker {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl NodeWorker {
    /// Starts `node bench.mjs` against `api_url` (installing the SDK first if needed).
    pub async fn spawn(api_url: &str) -> Result<Self> {
        let dir = sdk_dir();
        ensure_node_modules(&dir).await?;
        let mut child = tokio::process::Command::new("node")
            .arg("bench.mjs")
            .current_dir(&dir)
            // Only what the worker needs: no host DAYTONA_* setting may leak into the SDK.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("DAYTONA_API_URL", api_url)
            .env("DAYTONA_API_KEY", API_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("node is needed for the TypeScript SDK side: {e}"))?;
        let stdin = child.stdin.take().ok_or("node has no stdin")?;
        let stdout = child.stdout.take().ok_or("node has no stdout")?;
        Ok(NodeWorker {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Sends one request and returns its answer; `{"ok":false}` is an error.
    pub async fn request(&mut self, request: Value) -> Result<Value> {
        let mut line = serde_json::to_string(&request)?;
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = tokio::time::timeout(ANSWER_WAIT, self.lines.next_line())
            .await
            .map_err(|_| format!("node did not answer {request} within {ANSWER_WAIT:?}"))??
            .ok_or("node exited")?;
        let value: Value = serde_json::from_str(&answer)
            .map_err(|e| format!("node answered {answer:?}, not JSON: {e}"))?;
        if value.get("ok") != Some(&Value::Bool(true)) {
            let error = value.get("error").and_then(Value::as_str).unwrap_or("?");
            return Err(format!("the TypeScript SDK failed {request}: {error}").into());
        }
        Ok(value)
    }

    /// Creates the sandbox that batches run in.
    pub async fn setup(&mut self) -> Result<()> {
        self.request(json!({"op": "setup"})).await.map(drop)
    }

    /// `n` commands through `op` (`flow` or `oneshot`).
    pub async fn batch(&mut self, op: &str, n: usize, command: &str) -> Result<Batch> {
        let answer = self
            .request(json!({"op": op, "n": n, "command": command}))
            .await?;
        let parsed: BatchAnswer = serde_json::from_value(answer)?;
        if parsed.lat_ms.len() != n {
            return Err(format!("node timed {} commands, not {n}", parsed.lat_ms.len()).into());
        }
        Ok(Batch {
            latencies: parsed
                .lat_ms
                .iter()
                .map(|ms| Duration::from_secs_f64(ms / 1000.0))
                .collect(),
            cpu: Duration::from_micros(parsed.cpu_us),
        })
    }

    /// Creates a sandbox, runs `command` in it through the session flow and deletes it: the
    /// time from the create call to the first stdout callback.
    pub async fn create_first(&mut self, command: &str) -> Result<Duration> {
        let answer = self
            .request(json!({"op": "create_first", "command": command}))
            .await?;
        let parsed: FirstAnswer = serde_json::from_value(answer)?;
        Ok(Duration::from_secs_f64(parsed.first_ms / 1000.0))
    }

    /// Deletes the batch sandbox and ends the worker.
    pub async fn quit(mut self) -> Result<()> {
        self.request(json!({"op": "teardown"})).await?;
        self.request(json!({"op": "quit"})).await?;
        drop(self.stdin);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .map_err(|_| "node did not exit after quit")??;
        if !status.success() {
            return Err(format!("node exited with {status}").into());
        }
        Ok(())
    }
}
