//! Many sandboxes at once, in a child process of its own so that its peak memory (`VmHWM`,
//! which cannot be reset) is this measurement's alone: N `DaytonaSandbox` handles sharing one
//! client, started with bounded concurrency, each running a few commands, all kept alive, then
//! destroyed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use workspace_core::{ExecuteCommandOptions, WorkspaceSandbox};
use workspace_daytona::{DaytonaClient, DaytonaConfig, DaytonaSandbox};

use super::child::{self, API_URL_VAR};
use super::usage::{hwm_kib, rss_kib};
use super::{API_KEY, Result};

/// Error messages kept for the report.
const ERROR_SAMPLES: usize = 5;

/// One scale run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Sandboxes.
    pub sandboxes: usize,
    /// At most this many starts (and then command sequences, and destroys) in flight.
    pub concurrency: usize,
    /// Commands each sandbox runs, one after another.
    pub commands: usize,
}

/// What a scale run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleResult {
    /// Sandboxes.
    pub sandboxes: usize,
    /// Bound on operations in flight.
    pub concurrency: usize,
    /// Commands per sandbox.
    pub commands: usize,
    /// Create, commands and destroy of all of them.
    pub wall_ms: f64,
    /// Create and commands (until all N are up and done).
    pub up_ms: f64,
    /// Failed starts, commands (wrong output included) and destroys.
    pub errors: usize,
    /// The first few failures.
    pub error_samples: Vec<String>,
    /// Resident memory with the client warmed up and no handle alive, KiB.
    pub baseline_kib: u64,
    /// Resident memory with all N handles alive and started, KiB.
    pub live_kib: u64,
    /// Peak resident memory of the whole child, KiB.
    pub peak_kib: u64,
}

impl ScaleResult {
    /// (RSS with N live handles − baseline) / N, KiB.
    pub fn per_handle_kib(&self) -> f64 {
        self.live_kib.saturating_sub(self.baseline_kib) as f64 / self.sandboxes.max(1) as f64
    }
}

/// Runs `plan` in a child process against the emulator at `api_url`.
pub async fn measure(api_url: &str, plan: Plan) -> Result<ScaleResult> {
    child::run(
        "scale",
        &[
            (API_URL_VAR, api_url.to_string()),
            ("DAYTONA_BENCH_SANDBOXES", plan.sandboxes.to_string()),
            ("DAYTONA_BENCH_CONCURRENCY", plan.concurrency.to_string()),
            ("DAYTONA_BENCH_COMMANDS", plan.commands.to_string()),
        ],
    )
    .await
}

/// The `scale` role.
pub fn child_main() -> Result<()> {
    let number = |name: &str| -> Result<usize> {
        let v = child::setting(name)?;
        v.parse()
            .map_err(|_| format!("{name}={v:?} is not a number").into())
    };
    let plan = Plan {
        sandboxes: number("DAYTONA_BENCH_SANDBOXES")?,
        concurrency: number("DAYTONA_BENCH_CONCURRENCY")?.max(1),
        commands: number("DAYTONA_BENCH_COMMANDS")?,
    };
    let api_url = child::setting(API_URL_VAR)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(&api_url, plan))?;
    child::answer(&result)
}

struct Failures(Mutex<(usize, Vec<String>)>);

impl Failures {
    fn note(&self, what: String) {
        let mut f = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f.0 += 1;
        if f.1.len() < ERROR_SAMPLES {
            f.1.push(what);
        }
    }
}

async fn run(api_url: &str, plan: Plan) -> Result<ScaleResult> {
    let client = DaytonaClient::new(DaytonaConfig::with_api_key(API_KEY).api_url(api_url)?)?;
    let build = |i: usize| {
        DaytonaSandbox::builder()
            .client(client.clone())
            .label("bench", "scale")
            .label("index", i.to_string())
            .build()
    };
    // Warm up: the pool, the runtime's threads, lazily built statics.
    let warm = build(usize::MAX)?;
    warm.start().await?;
    warm.execute_command("true", &[], ExecuteCommandOptions::new())
        .await?;
    warm.destroy().await?;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline_kib = rss_kib();

    let handles = (0..plan.sandboxes)
        .map(build)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let failures = Failures(Mutex::new((0, Vec::new())));
    let t0 = Instant::now();
    futures::stream::iter(handles.iter().enumerate())
        .for_each_concurrent(plan.concurrency, |(i, sb)| {
            let failures = &failures;
            async move {
                if let Err(e) = sb.start().await {
                    failures.note(format!("start {i}: {e}"));
                    return;
                }
                for j in 0..plan.commands {
                    let word = format!("s{i}c{j}");
                    match sb
                        .execute_command(
                            "echo",
                            std::slice::from_ref(&word),
                            ExecuteCommandOptions::new(),
                        )
                        .await
                    {
                        Ok(r) if r.exit_code == 0 && r.stdout == format!("{word}\n") => {}
                        Ok(r) => failures.note(format!(
                            "command {i}/{j}: exit {} stdout {:?} stderr {:?}",
                            r.exit_code, r.stdout, r.stderr
                        )),
                        Err(e) => failures.note(format!("command {i}/{j}: {e}")),
                    }
                }
            }
        })
        .await;
    let up = t0.elapsed();
    let live_kib = rss_kib();
    futures::stream::iter(handles.iter().enumerate())
        .for_each_concurrent(plan.concurrency, |(i, sb)| {
            let failures = &failures;
            async move {
                if let Err(e) = sb.destroy().await {
                    failures.note(format!("destroy {i}: {e}"));
                }
            }
        })
        .await;
    let wall = t0.elapsed();
    let (errors, error_samples) = failures.0.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(ScaleResult {
        sandboxes: plan.sandboxes,
        concurrency: plan.concurrency,
        commands: plan.commands,
        wall_ms: wall.as_secs_f64() * 1000.0,
        up_ms: up.as_secs_f64() * 1000.0,
        errors,
        error_samples,
        baseline_kib,
        live_kib,
        peak_kib: hwm_kib(),
    })
}
