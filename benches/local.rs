//! LocalSandbox against raw `tokio::process`, measured interleaved in one run (the measurements
//! live in `support/local.rs`, which `benches/daytona.rs` re-runs too).
//!
//! Writes its sections of `BENCHMARKS.md` (between the `local` and `local-search` markers;
//! the second compares `grep` with ripgrep). Reproduce with
//! `cargo bench --bench local` (`-- search` for the grep comparison alone); `BENCH_QUICK=1` runs a short smoke version that writes nothing.

mod support;
// Only this bench measures search, so the module is not part of the shared `support`.
#[path = "support/search.rs"]
mod search;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; `search` alone runs only the grep comparison.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let only_search = std::env::args().any(|a| a == "search");
    if !only_search {
        local_sections(quick).await?;
    }
    let (section, ratio) = search::measure(quick).await?;
    match ratio.vs_rg {
        Some(r) => println!("grep {r:.2}× rg\n"),
        None => println!("grep: rg not installed, not compared\n"),
    }
    support::report::publish("local-search", &section, quick)?;
    Ok(())
}

async fn local_sections(quick: bool) -> Result<(), Box<dyn std::error::Error>> {
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
