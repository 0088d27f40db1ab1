//! Command round trips on one started sandbox, four flows interleaved batch by batch:
//!
//! - `DaytonaSandbox::execute_command` with `on_stdout`/`on_stderr` callbacks (the subject);
//! - the TypeScript SDK doing the same thing the way its users do: session create, async
//!   exec, log follow with callbacks, exit code from `getSessionCommand`, session delete;
//! - the TypeScript SDK's one-shot `process.executeCommand` (output not split, not streamed);
//! - the Rust client's one-shot `Process::execute`, the like-for-like of the previous one.
//!
//! Each flow's wall time per command, and the CPU time its client process spent per command
//! (Rust: `getrusage` around the batch; Node: `process.cpuUsage()` around the batch).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use workspace_core::{ExecuteCommandOptions, WorkspaceSandbox};
use workspace_daytona::{DaytonaSandbox, ExecuteOptions, Sandbox};

use super::node::{Batch, NodeWorker};
use super::usage::cpu_time;
use super::{API_KEY, Result};

/// What every flow runs.
pub const COMMAND: &str = "echo rt";
const EXPECTED: &str = "rt\n";
/// After a Rust batch, time for the last command's session delete (sent in the background,
/// off the caller's path) to finish, so its CPU is counted in the batch.
const SETTLE: Duration = Duration::from_millis(30);

/// The flows compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `DaytonaSandbox::execute_command`, streamed.
    RustProvider,
    /// The same with `resident_shell(false)`: a session (the spare) and a log WebSocket per
    /// command, the path before the resident shell.
    RustProviderPerCommand,
    /// The TypeScript SDK's streamed session flow.
    TsSession,
    /// The TypeScript SDK's `executeCommand`.
    TsOneShot,
    /// The Rust client's `Process::execute`.
    RustOneShot,
}

impl Flow {
    /// Every flow, in table order.
    pub const ALL: [Flow; 5] = [
        Flow::RustProvider,
        Flow::RustProviderPerCommand,
        Flow::TsSession,
        Flow::TsOneShot,
        Flow::RustOneShot,
    ];

    /// How tables and the plot name it.
    pub fn label(self) -> &'static str {
        match self {
            Flow::RustProvider => "Rust `DaytonaSandbox::execute_command` (streamed)",
            Flow::RustProviderPerCommand => {
                "Rust `execute_command`, `resident_shell(false)` (streamed)"
            }
            Flow::TsSession => "TS SDK session flow (streamed)",
            Flow::TsOneShot => "TS SDK `executeCommand` (one-shot)",
            Flow::RustOneShot => "Rust client `Process::execute` (one-shot)",
        }
    }

    /// A label without markdown, for the plot.
    pub fn plain_label(self) -> String {
        self.label().replace('`', "")
    }
}

/// Everything measured of one flow.
#[derive(Debug, Clone)]
pub struct FlowSamples {
    /// Which flow.
    pub flow: Flow,
    /// Every command's wall time.
    pub latencies: Vec<Duration>,
    /// Client CPU time over all its batches.
    pub cpu: Duration,
    /// Server (emulator and its shells) CPU time over all its batches.
    pub server_cpu: Duration,
    /// HTTP requests (WebSocket upgrades included) the server saw per command.
    pub requests_per_command: f64,
    /// New connections per command, where a proxy counted them.
    pub connections_per_command: Option<f64>,
}

impl FlowSamples {
    /// Client CPU time per command.
    pub fn cpu_per_command(&self) -> Duration {
        self.cpu / self.latencies.len().max(1) as u32
    }

    /// Server CPU time per command.
    pub fn server_cpu_per_command(&self) -> Duration {
        self.server_cpu / self.latencies.len().max(1) as u32
    }
}

/// How many commands.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Interleaved rounds; each runs one batch of every flow.
    pub rounds: usize,
    /// Commands per batch.
    pub batch: usize,
    /// Untimed commands per flow first (connection pools, Node's JIT).
    pub warmup: usize,
    /// Commands per flow whose requests are counted (untimed).
    pub counted: usize,
}

struct Subjects<'a> {
    provider: &'a DaytonaSandbox,
    per_command: &'a DaytonaSandbox,
    oneshot: &'a Sandbox,
    node: &'a mut NodeWorker,
}

impl Subjects<'_> {
    async fn batch(&mut self, flow: Flow, n: usize) -> Result<Batch> {
        match flow {
            Flow::RustProvider => rust_batch(n, || provider_once(self.provider)).await,
            Flow::RustProviderPerCommand => rust_batch(n, || provider_once(self.per_command)).await,
            Flow::RustOneShot => rust_batch(n, || oneshot_once(self.oneshot)).await,
            Flow::TsSession => self.node.batch("flow", n, COMMAND).await,
            Flow::TsOneShot => self.node.batch("oneshot", n, COMMAND).await,
        }
    }
}

/// Where the flows run.
pub struct Target<'a> {
    /// The base URL clients use (the emulator's own, or a proxy in front of it).
    pub client_url: &'a str,
    /// The emulator's own base URL, for its `/_emulator` routes.
    pub control_url: &'a str,
    /// The emulator's process, for its CPU time.
    pub server_pid: Option<u32>,
    /// Connections opened so far, where a proxy counts them.
    pub connections: Option<&'a (dyn Fn() -> u64 + Sync)>,
}

/// Runs the comparison against the emulator at `base_url` (its process is `server_pid`).
pub async fn measure(
    base_url: &str,
    server_pid: Option<u32>,
    node: &mut NodeWorker,
    sizes: Sizes,
) -> Result<Vec<FlowSamples>> {
    let target = Target {
        client_url: base_url,
        control_url: base_url,
        server_pid,
        connections: None,
    };
    measure_at(&target, node, sizes).await
}

/// [`measure`] with clients and control at addresses of their own, counting connections.
pub async fn measure_at(
    target: &Target<'_>,
    node: &mut NodeWorker,
    sizes: Sizes,
) -> Result<Vec<FlowSamples>> {
    let base_url = target.client_url;
    let server_pid = target.server_pid;
    let provider = DaytonaSandbox::builder()
        .api_url(format!("{base_url}/api"))
        .api_key(API_KEY)
        .label("bench", "round-trip")
        .build()?;
    provider.start().await?;
    // A second handle on the same sandbox, with a session per command.
    let per_command = DaytonaSandbox::builder()
        .api_url(format!("{base_url}/api"))
        .api_key(API_KEY)
        .id(provider.daytona_id().unwrap_or_default())
        .resident_shell(false)
        .build()?;
    per_command.start().await?;
    let oneshot = provider.daytona()?;
    node.setup().await?;
    let mut subjects = Subjects {
        provider: &provider,
        per_command: &per_command,
        oneshot: &oneshot,
        node,
    };

    for flow in Flow::ALL {
        subjects.batch(flow, sizes.warmup).await?;
    }

    let mut samples: Vec<FlowSamples> = Flow::ALL
        .iter()
        .map(|&flow| FlowSamples {
            flow,
            latencies: Vec::new(),
            cpu: Duration::ZERO,
            server_cpu: Duration::ZERO,
            requests_per_command: 0.0,
            connections_per_command: None,
        })
        .collect();
    for round in 0..sizes.rounds {
        // Rotate who goes first, so drift on a noisy machine hits every flow alike.
        for k in 0..Flow::ALL.len() {
            let i = (round + k) % Flow::ALL.len();
            let server0 = server_pid.map(server_cpu_time);
            let batch = subjects.batch(Flow::ALL[i], sizes.batch).await?;
            if let (Some(pid), Some(before)) = (server_pid, server0) {
                samples[i].server_cpu += server_cpu_time(pid).saturating_sub(before);
            }
            samples[i].latencies.extend(batch.latencies);
            samples[i].cpu += batch.cpu;
        }
    }

    let http = reqwest::Client::new();
    for s in &mut samples {
        let opened = target.connections.map(|count| count());
        s.requests_per_command = count_requests(
            &http,
            target.control_url,
            &mut subjects,
            s.flow,
            sizes.counted,
        )
        .await?;
        if let (Some(count), Some(before)) = (target.connections, opened) {
            let made = count().saturating_sub(before);
            s.connections_per_command = Some(made as f64 / sizes.counted.max(1) as f64);
        }
    }

    provider.destroy().await?;
    Ok(samples)
}

/// Requests the server saw per command of `flow`, over `n` untimed commands.
async fn count_requests(
    http: &reqwest::Client,
    base_url: &str,
    subjects: &mut Subjects<'_>,
    flow: Flow,
    n: usize,
) -> Result<f64> {
    let log = format!("{base_url}/_emulator/requests");
    http.delete(&log).send().await?.error_for_status()?;
    subjects.batch(flow, n).await?;
    // Background session deletes land shortly after the last command.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let records: Vec<serde_json::Value> = http
        .get(&log)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(records.len() as f64 / n.max(1) as f64)
}

/// User+system CPU of the server process and its reaped children (the sandbox shells), from
/// `/proc/<pid>/stat` (in USER_HZ = 100 ticks per second on Linux).
fn server_cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime is the 14th field overall.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

async fn rust_batch<F, Fut>(n: usize, mut once: F) -> Result<Batch>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let cpu0 = cpu_time();
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        once().await?;
        latencies.push(t.elapsed());
    }
    tokio::time::sleep(SETTLE).await;
    Ok(Batch {
        latencies,
        cpu: cpu_time().saturating_sub(cpu0),
    })
}

async fn provider_once(sb: &DaytonaSandbox) -> Result<()> {
    let streamed = Arc::new(Mutex::new(String::new()));
    let sink = streamed.clone();
    let errors = Arc::new(Mutex::new(String::new()));
    let err_sink = errors.clone();
    let r = sb
        .execute_command(
            COMMAND,
            &[],
            ExecuteCommandOptions::new()
                .on_stdout(move |t| sink.lock().unwrap_or_else(|p| p.into_inner()).push_str(t))
                .on_stderr(move |t| {
                    err_sink
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_str(t)
                }),
        )
        .await?;
    let streamed = streamed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if r.exit_code != 0 || r.stdout != EXPECTED || streamed != EXPECTED {
        return Err(format!(
            "execute_command gave exit {} stdout {:?} streamed {streamed:?} stderr {:?}",
            r.exit_code, r.stdout, r.stderr
        )
        .into());
    }
    Ok(())
}

async fn oneshot_once(sb: &Sandbox) -> Result<()> {
    let r = sb
        .process()
        .execute(COMMAND, &ExecuteOptions::new())
        .await?;
    if r.exit_code != 0 || r.result != EXPECTED {
        return Err(format!("execute gave exit {} result {:?}", r.exit_code, r.result).into());
    }
    Ok(())
}
