//! The quickstart flow on Daytona: write a script, run it with streamed output, read what it
//! produced, start a background process, then show what a model would be told.
//!
//! With `DAYTONA_API_KEY` set (and optionally `DAYTONA_API_URL`, `DAYTONA_TARGET`) it runs
//! against Daytona Cloud and deletes its sandbox at the end. Without it, it starts the
//! Daytona-compatible emulator in this process and runs against that, offline.
//!
//! Run: `cargo run --example daytona --features daytona`

use std::sync::Arc;
use std::time::Duration;

use workspace_sandbox::{
    DaytonaSandbox, ExecuteCommandOptions, OutputOffsets, SpawnOptions, WorkspaceSandbox,
};

const EMULATOR_KEY: &str = "example-key";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cloud = std::env::var("DAYTONA_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    let (sandbox, emulator) = if cloud {
        println!("DAYTONA_API_KEY is set: using Daytona Cloud");
        (DaytonaSandbox::from_env()?, None)
    } else {
        let emulator = daytona_emulator::Emulator::builder()
            .api_key(EMULATOR_KEY)
            .start()
            .await?;
        println!(
            "DAYTONA_API_KEY is not set: using an in-process Daytona emulator at {}",
            emulator.api_url()
        );
        let sandbox = DaytonaSandbox::builder()
            .api_key(EMULATOR_KEY)
            .api_url(emulator.api_url())
            .build()?;
        (sandbox, Some(emulator))
    };
    let sandbox: Arc<dyn WorkspaceSandbox> = Arc::new(sandbox);

    let outcome = sandbox.start().await?;
    println!("started {} ({outcome:?})", sandbox.id());
    let result = run(sandbox.as_ref()).await;
    // Clean up on every path, then report the first error if there was one.
    let destroyed = sandbox.destroy().await;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    result?;
    destroyed?;
    println!("destroyed; status is now {}", sandbox.status());
    Ok(())
}

async fn run(sandbox: &dyn WorkspaceSandbox) -> Result<(), Box<dyn std::error::Error>> {
    let fs = sandbox
        .filesystem()
        .ok_or("this provider has no file API")?;

    // 1. The "model" writes a script (relative paths are in the sandbox's working directory).
    fs.write_file(
        "count.sh",
        b"#!/bin/sh\nfor i in 1 2 3; do echo \"line $i\"; sleep 0.2; done\necho done >&2\necho 3 > result.txt\n",
    )
    .await?;

    // 2. It runs it, watching the output live.
    let opts = ExecuteCommandOptions::new()
        .timeout(Duration::from_secs(60))
        .env("GREETING", "kept out of Daytona's stored command text")
        .on_stdout(|chunk| print!("  [stdout] {chunk}"))
        .on_stderr(|chunk| print!("  [stderr] {chunk}"));
    let result = sandbox
        .execute_command("sh", &["count.sh".into()], opts)
        .await?;
    println!(
        "exit code {} in {:?} (timed out: {})",
        result.exit_code, result.duration, result.timed_out
    );

    // 3. It reads what the script produced.
    let produced = fs.read_file("result.txt").await?;
    println!("result.txt: {}", String::from_utf8_lossy(&produced).trim());

    // 4. A background process, read by offset while it runs.
    let pm = sandbox
        .processes()
        .ok_or("this provider has no processes")?;
    let server = pm
        .spawn(
            "for i in 1 2 3; do echo tick $i; sleep 0.3; done",
            &[],
            SpawnOptions::new(),
        )
        .await?;
    let done = pm.wait(&server.id, Some(Duration::from_secs(30))).await?;
    let out = pm.output(&server.id, OutputOffsets::default()).await?;
    println!(
        "background process {} ended {:?}: {:?}",
        done.id,
        done.state,
        out.stdout_text()
    );
    pm.kill(&server.id).await?;

    // 5. What the sandbox is, and what a model would be told.
    let info = sandbox.get_info().await?;
    println!("info: {}", serde_json::to_string_pretty(&info)?);
    println!("instructions: {}", sandbox.get_instructions());
    Ok(())
}
