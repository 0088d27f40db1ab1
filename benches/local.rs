//! LocalSandbox against raw `tokio::process`, measured interleaved in one run (the measurements
//! live in `support/local.rs`, which `benches/daytona.rs` re-runs too).
//!
//! Writes its section of `BENCHMARKS.md` (between the `local` markers). Reproduce with
//! `cargo bench --bench local`; `BENCH_QUICK=1` runs a short smoke version that writes nothing.

mod support;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; ignore arguments.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let (section, ratios) = support::local::measure(quick).await?;
    println!(
        "spawn {:.2}× raw, streaming {:.2}× raw{}\n",
        ratios.spawn,
        ratios.stream,
        ratios
            .isolated_spawn
            .map(|r| format!(", isolated round trip {r:.2}× raw bwrap"))
            .unwrap_or_default()
    );
    support::report::publish("local", &section, quick)?;
    Ok(())
}
