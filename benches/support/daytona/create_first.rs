//! From nothing to a command's first output: create a sandbox, run `echo` in it with a stdout
//! callback, and time the first callback; the sandbox is deleted after each round (untimed).
//! Rust: a fresh `DaytonaSandbox` (sharing one client, as the TypeScript `Daytona` object is
//! shared), whose first `execute_command` creates the sandbox. TypeScript: `daytona.create`,
//! then the session flow with callbacks.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use workspace_core::{ExecuteCommandOptions, WorkspaceSandbox};
use workspace_daytona::{DaytonaClient, DaytonaConfig, DaytonaSandbox};

use super::node::NodeWorker;
use super::round_trip::COMMAND;
use super::{API_KEY, Result};

/// Both sides' times, one per round.
#[derive(Debug, Clone, Default)]
pub struct CreateFirst {
    /// `DaytonaSandbox`.
    pub rust: Vec<Duration>,
    /// The TypeScript SDK.
    pub ts: Vec<Duration>,
}

/// `rounds` interleaved rounds (after one untimed round each).
pub async fn measure(api_url: &str, node: &mut NodeWorker, rounds: usize) -> Result<CreateFirst> {
    let client = DaytonaClient::new(DaytonaConfig::with_api_key(API_KEY).api_url(api_url)?)?;
    rust_once(&client).await?;
    node.create_first(COMMAND).await?;
    let mut out = CreateFirst::default();
    for round in 0..rounds {
        if round % 2 == 0 {
            out.rust.push(rust_once(&client).await?);
            out.ts.push(node.create_first(COMMAND).await?);
        } else {
            out.ts.push(node.create_first(COMMAND).await?);
            out.rust.push(rust_once(&client).await?);
        }
    }
    Ok(out)
}

async fn rust_once(client: &DaytonaClient) -> Result<Duration> {
    let first: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let mark = first.clone();
    let t0 = Instant::now();
    let sandbox = DaytonaSandbox::builder()
        .client(client.clone())
        .label("bench", "create-first")
        .build()?;
    let result = sandbox
        .execute_command(
            COMMAND,
            &[],
            ExecuteCommandOptions::new().on_stdout(move |_| {
                mark.get_or_init(Instant::now);
            }),
        )
        .await;
    let destroyed = sandbox.destroy().await;
    let result = result?;
    destroyed?;
    if result.exit_code != 0 {
        return Err(format!("the first command exited with {}", result.exit_code).into());
    }
    let at = first.get().ok_or("no stdout callback arrived")?;
    Ok(at.duration_since(t0))
}
