//! An agent-style session on the local machine: write a script, run it with streamed output,
//! read what it produced, then show what a model would be told about the sandbox.
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;
use std::time::Duration;

use workspace_sandbox::{ExecuteCommandOptions, LocalSandbox, WorkspaceSandbox};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh temporary root that the sandbox owns and removes on destroy.
    let sandbox: Arc<dyn WorkspaceSandbox> = Arc::new(LocalSandbox::builder().build()?);
    let outcome = sandbox.start().await?;
    println!("started {} ({outcome:?})", sandbox.id());

    let result = run(sandbox.as_ref()).await;
    // Clean up on every path, then report the first error if there was one.
    sandbox.destroy().await?;
    result?;
    println!("destroyed; status is now {}", sandbox.status());
    Ok(())
}

async fn run(sandbox: &dyn WorkspaceSandbox) -> Result<(), Box<dyn std::error::Error>> {
    let fs = sandbox
        .filesystem()
        .ok_or("this provider has no file API")?;

    // 1. The "model" writes a script.
    fs.write_file(
        "count.sh",
        b"#!/bin/sh\nfor i in 1 2 3; do echo \"line $i\"; sleep 0.2; done\necho done >&2\necho 3 > result.txt\n",
    )
    .await?;

    // 2. It runs it, watching the output live.
    // Commands start in the sandbox's working directory, where the file API's relative paths point.
    let opts = ExecuteCommandOptions::new()
        .timeout(Duration::from_secs(30))
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

    // 4. What the sandbox is, and what a model would be told.
    let info = sandbox.get_info().await?;
    println!("info: {}", serde_json::to_string_pretty(&info)?);
    println!("instructions: {}", sandbox.get_instructions());
    Ok(())
}
