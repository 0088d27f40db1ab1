//! The Daytona provider against the official TypeScript SDK (`@daytonaio/sdk`, pinned in
//! `tests/ts-sdk`), both talking to one `daytona-emulator` in a process of its own:
//!
//! 1. command round trips, streamed and one-shot, interleaved batch by batch: wall p50/p99 and
//!    client CPU per command;
//! 2. create → first command output;
//! 3. 64 and 256 sandboxes at once: wall time, errors, client memory per live sandbox;
//! 4. log demuxer throughput, and a 200 MB upload and download with the client's peak memory;
//! 5. the local provider's ratios (`support/local.rs`, re-run here).
//!
//! Writes the `daytona` and `local` sections of `BENCHMARKS.md` and the latency plot
//! `benches/daytona-latency.svg`. Reproduce with `cargo bench --bench daytona`; `BENCH_QUICK=1`
//! runs every path with tiny counts in seconds and writes nothing (for CI; nothing is judged).
//! `BENCH_SCALE_CONCURRENCY` bounds the scale runs' operations in flight (default 32);
//! `BENCH_PLOT_OUT=<file>` also writes the plot there (in quick runs too, for a look at it).
//!
//! Needs `node` and `npm` (the SDK is installed with `npm ci` when missing). Figures that need
//! a clean process (the emulator, the scale and transfer runs) come from this same executable
//! started again in a child role, so nothing else has to be built or found.

mod support;

#[path = "support/daytona/mod.rs"]
mod dt;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use dt::create_first::CreateFirst;
use dt::demux::{Consumer, DemuxFigure, FRAMES, Mix};
use dt::emulator::{EmulatorProcess, Isolation};
use dt::node::NodeWorker;
use dt::round_trip::{Flow, FlowSamples};
use dt::scale::{Plan, ScaleResult};
use dt::transfer::Transfers;
use support::local::LocalRatios;
use support::stats::{median_dur, median_f64, quantile_dur};

const REPRODUCE: &str = "cargo bench --bench daytona";
const PLOT: &str = "benches/daytona-latency.svg";
/// What the round trips are measured again with before every toolbox request: a daemon that
/// far away, as a cloud sandbox is.
const FAR_DELAY: Duration = Duration::from_millis(5);

struct Sizes {
    round_trip: dt::round_trip::Sizes,
    /// The round trips again against an emulator that confines commands with bubblewrap.
    round_trip_bwrap: dt::round_trip::Sizes,
    /// The round trips again with [`FAR_DELAY`] added to every toolbox request.
    round_trip_far: dt::round_trip::Sizes,
    create_rounds: usize,
    scale: Vec<Plan>,
    demux_bytes: usize,
    demux_reps: usize,
    transfer_bytes: u64,
    transfer_rounds: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        let concurrency = std::env::var("BENCH_SCALE_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&c| c > 0)
            .unwrap_or(32);
        if quick {
            Sizes {
                round_trip: dt::round_trip::Sizes {
                    rounds: 2,
                    batch: 3,
                    warmup: 1,
                    counted: 2,
                },
                round_trip_bwrap: dt::round_trip::Sizes {
                    rounds: 1,
                    batch: 2,
                    warmup: 1,
                    counted: 1,
                },
                round_trip_far: dt::round_trip::Sizes {
                    rounds: 1,
                    batch: 2,
                    warmup: 1,
                    counted: 1,
                },
                create_rounds: 1,
                scale: vec![Plan {
                    sandboxes: 6,
                    concurrency: concurrency.min(3),
                    commands: 2,
                }],
                demux_bytes: 4 << 20,
                demux_reps: 1,
                transfer_bytes: 4 << 20,
                transfer_rounds: 1,
            }
        } else {
            Sizes {
                round_trip: dt::round_trip::Sizes {
                    rounds: 10,
                    batch: 20,
                    warmup: 10,
                    counted: 10,
                },
                round_trip_bwrap: dt::round_trip::Sizes {
                    rounds: 5,
                    batch: 20,
                    warmup: 5,
                    counted: 5,
                },
                round_trip_far: dt::round_trip::Sizes {
                    rounds: 4,
                    batch: 10,
                    warmup: 3,
                    counted: 3,
                },
                create_rounds: 15,
                scale: [64, 256]
                    .into_iter()
                    .map(|sandboxes| Plan {
                        sandboxes,
                        concurrency,
                        commands: 10,
                    })
                    .collect(),
                demux_bytes: 200 << 20,
                demux_reps: 5,
                transfer_bytes: 200 << 20,
                transfer_rounds: 3,
            }
        }
    }
}

fn main() -> ExitCode {
    let outcome = match dt::child::role().as_deref() {
        Some("emulator") => return dt::emulator::serve(),
        Some("scale") => dt::scale::child_main(),
        Some("demux") => dt::demux::child_main(),
        Some(role @ ("upload" | "download")) => dt::transfer::child_main(role),
        Some(other) => Err(format!("unknown {} {other:?}", dt::child::ROLE_VAR).into()),
        // `cargo bench` passes `--bench`; ignore arguments.
        None => orchestrate(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daytona bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn orchestrate() -> dt::Result<()> {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(quick))
}

/// Round trips against `emulator`, with a Node worker of their own: each worker deletes its
/// one setup sandbox when it quits.
async fn round_trips(
    emulator: &EmulatorProcess,
    sizes: dt::round_trip::Sizes,
) -> dt::Result<Vec<FlowSamples>> {
    let mut node = NodeWorker::spawn(&emulator.api_url()).await?;
    let samples =
        dt::round_trip::measure(emulator.base_url(), emulator.pid(), &mut node, sizes).await?;
    node.quit().await?;
    Ok(samples)
}

struct Figures {
    local: LocalRatios,
    demux: Vec<DemuxFigure>,
    round_trip: Vec<FlowSamples>,
    /// `None` where bubblewrap cannot run.
    round_trip_bwrap: Option<Vec<FlowSamples>>,
    /// With [`FAR_DELAY`] per toolbox request.
    round_trip_far: Vec<FlowSamples>,
    create_first: CreateFirst,
    scale: Vec<ScaleResult>,
    transfers: Transfers,
}

async fn run(quick: bool) -> dt::Result<()> {
    let sizes = Sizes::new(quick);
    let node_version = node_version().await;

    // In-process figures first, while nothing else runs.
    println!("local provider…");
    let (local_section, local) = support::local::measure(quick)
        .await
        .map_err(|e| format!("local measurements: {e}"))?;
    println!("demuxer…");
    let demux = dt::demux::measure_in_child(sizes.demux_bytes, sizes.demux_reps).await?;

    let emulator = EmulatorProcess::spawn(Isolation::Host).await?;
    let api_url = emulator.api_url();
    let measured = async {
        println!("round trips…");
        let round_trip = round_trips(&emulator, sizes.round_trip).await?;
        println!(
            "round trips, {} ms added per toolbox request…",
            FAR_DELAY.as_millis()
        );
        let delay = dt::emulator::ToolboxDelay::install(emulator.base_url(), FAR_DELAY).await?;
        let round_trip_far = round_trips(&emulator, sizes.round_trip_far).await?;
        delay.remove().await?;
        let mut node = NodeWorker::spawn(&api_url).await?;
        println!("create → first output…");
        let create_first =
            dt::create_first::measure(&api_url, &mut node, sizes.create_rounds).await?;
        node.quit().await?;
        let mut scale = Vec::new();
        for plan in &sizes.scale {
            println!("scale: {} sandboxes…", plan.sandboxes);
            scale.push(dt::scale::measure(&api_url, *plan).await?);
        }
        println!("file transfer…");
        let transfers =
            dt::transfer::measure(&api_url, sizes.transfer_bytes, sizes.transfer_rounds).await?;
        Ok::<_, dt::BoxError>((round_trip, round_trip_far, create_first, scale, transfers))
    }
    .await;
    let stopped = emulator.stop().await;
    let (round_trip, round_trip_far, create_first, scale, transfers) = measured?;
    stopped?;

    let round_trip_bwrap = if Isolation::bubblewrap_works().await {
        println!("round trips, bubblewrap-confined emulator…");
        let emulator = EmulatorProcess::spawn(Isolation::Bubblewrap).await?;
        let measured = round_trips(&emulator, sizes.round_trip_bwrap).await;
        let stopped = emulator.stop().await;
        let samples = measured?;
        stopped?;
        Some(samples)
    } else {
        println!("bubblewrap cannot run here: no confined round trips");
        None
    };

    let figures = Figures {
        local,
        demux,
        round_trip,
        round_trip_bwrap,
        round_trip_far,
        create_first,
        scale,
        transfers,
    };
    let series: Vec<dt::plot::Series<'_>> = figures
        .round_trip
        .iter()
        .map(|s| dt::plot::Series {
            label: s.flow.plain_label(),
            samples: &s.latencies,
        })
        .collect();
    let svg = dt::plot::render_cdf(
        "Command round trip against daytona-emulator (echo, one started sandbox)",
        &series,
    )?;
    let section = render(&figures, &sizes, node_version.as_deref(), quick);
    support::report::publish("local", &local_section, quick)?;
    support::report::publish("daytona", &section, quick)?;
    if let Some(extra) = std::env::var_os("BENCH_PLOT_OUT") {
        std::fs::write(&extra, &svg)?;
        println!("wrote the plot to {}", Path::new(&extra).display());
    }
    if quick {
        println!(
            "(BENCH_QUICK: {PLOT} not written; {} bytes of SVG rendered)",
            svg.len()
        );
    } else {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(PLOT);
        std::fs::write(&path, svg)?;
        println!("wrote {}", path.display());
    }
    let errors: usize = figures.scale.iter().map(|s| s.errors).sum();
    if errors > 0 {
        return Err(format!("{errors} operations failed in the scale runs").into());
    }
    Ok(())
}

async fn node_version() -> Option<String> {
    let out = tokio::process::Command::new("node")
        .arg("--version")
        .output()
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn p50(s: &FlowSamples) -> Duration {
    let mut v = s.latencies.clone();
    median_dur(&mut v)
}

fn p99(s: &FlowSamples) -> Duration {
    let mut v = s.latencies.clone();
    v.sort();
    quantile_dur(&v, 0.99)
}

fn flow(samples: &[FlowSamples], which: Flow) -> &FlowSamples {
    // `round_trip::measure` returns every flow of `Flow::ALL`.
    samples
        .iter()
        .find(|s| s.flow == which)
        .unwrap_or(&samples[0])
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// The per-flow table and the ratios; `judged` adds the targets.
fn round_trip_table(s: &mut String, samples: &[FlowSamples], judged: bool) {
    let _ = writeln!(
        s,
        "| flow | p50 | p99 | client CPU / command | server CPU / command | requests / command |\n|---|---|---|---|---|---|"
    );
    for x in samples {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.1} |",
            x.flow.label(),
            ms(p50(x)),
            ms(p99(x)),
            us(x.cpu_per_command()),
            us(x.server_cpu_per_command()),
            x.requests_per_command
        );
    }
    let rp = flow(samples, Flow::RustProvider);
    let rn = flow(samples, Flow::RustProviderNoSpare);
    let ts = flow(samples, Flow::TsSession);
    let t1 = flow(samples, Flow::TsOneShot);
    let r1 = flow(samples, Flow::RustOneShot);
    let lat_ratio = ratio(p50(rp), p50(ts));
    let cpu_ratio = ratio(rp.cpu_per_command(), ts.cpu_per_command());
    let target = |t: &str, met: bool| {
        if judged {
            format!("{t} ({})", verdict(met))
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        s,
        "\n| ratio (Rust ÷ TypeScript) | measured | target |\n|---|---|---|\n\
         | streamed p50: `execute_command` ÷ TS session flow | **{lat_ratio:.2}×** | {} |\n\
         | streamed client CPU / command | **{cpu_ratio:.2}×** | {} |\n\
         | streamed p99 | {:.2}× | |\n\
         | streamed p50 with `spare_session(false)` ÷ TS session flow | {:.2}× | |\n\
         | one-shot p50: `Process::execute` ÷ `executeCommand` | {:.2}× | |\n\
         | one-shot client CPU / command | {:.2}× | |\n\
         | `execute_command` (streamed) p50 ÷ TS `executeCommand` (one-shot) p50 | {:.2}× | |\n",
        target("≤ 0.5×", lat_ratio <= 0.5),
        target("≤ 0.3×", cpu_ratio <= 0.3),
        ratio(p99(rp), p99(ts)),
        ratio(p50(rn), p50(ts)),
        ratio(p50(r1), p50(t1)),
        ratio(r1.cpu_per_command(), t1.cpu_per_command()),
        ratio(p50(rp), p50(t1)),
    );
}

fn render(f: &Figures, sizes: &Sizes, node: Option<&str>, quick: bool) -> String {
    let mut s = String::new();
    let rt = &sizes.round_trip;
    let per_flow = rt.rounds * rt.batch;
    let _ = writeln!(s, "## Daytona provider\n");
    let _ = writeln!(
        s,
        "Reproduce: `{REPRODUCE}` (release build; a few minutes after the build; `BENCH_QUICK=1` is a \
         smoke run of a few seconds that writes nothing). Notes on what was changed, and on \
         each missed target, follow this section.{}\n",
        if quick {
            " **QUICK RUN: tiny counts.**"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "Machine: {}\n", support::report::machine_line());
    let _ = writeln!(
        s,
        "Every client talks to one `daytona-emulator` on loopback, running in a process of its \
         own (this bench's executable in its emulator role: the same server as the \
         `daytona-emulator` binary), so client CPU and memory are the client's alone. The \
         TypeScript side is the official `@daytonaio/sdk` 0.218.0 on Node {}, in one long-lived \
         worker (`tests/ts-sdk/bench.mjs`) that takes its orders over stdin, so Node's start-up \
         is never timed. Reference and subject run interleaved and every ratio comes from the \
         same run. The emulator handles a request in well under a millisecond; what running a \
         command costs the server shows in the server CPU column. Against Daytona Cloud, \
         network latency adds the same to every flow per request on the critical path, which \
         makes requests per command the figure that carries over.\n",
        node.unwrap_or("(unknown version)")
    );

    // Round trips.
    let _ = writeln!(
        s,
        "### Command round trip\n\n`echo rt` on one started sandbox per client: {per_flow} commands per \
         flow, in batches of {} rotated across the flows (after {} untimed per flow). Client CPU \
         is user + system time of the client's whole process over its batches (Rust: \
         `getrusage`, including the last command's session delete, which runs in the \
         background; Node: `process.cpuUsage()`). Server CPU is the emulator's, with the shells \
         it ran (10 ms ticks). Requests counted in the emulator's request log over {} more \
         commands per flow; the Rust provider's four are the exec, the log stream, the session \
         delete and the next spare session's create, of which only the first two are on the \
         command's path (the `spare_session(false)` flow waits for its session create too, \
         and both flows share one sandbox). The emulator runs commands as plain host processes \
         here, so a command costs the server about what a daemon's fork and exec cost.\n",
        rt.batch, rt.warmup, rt.counted
    );
    round_trip_table(&mut s, &f.round_trip, true);
    let _ = writeln!(
        s,
        "![Cumulative distribution of round-trip latencies per flow]({PLOT})\n"
    );
    let bw = &sizes.round_trip_bwrap;
    match &f.round_trip_bwrap {
        Some(samples) => {
            let _ = writeln!(
                s,
                "#### The same against a bubblewrap-confined emulator\n\nThe emulator's default \
                 where `bwrap` works: every command starts in a fresh set of namespaces and \
                 mounts, which costs the server about ten milliseconds per command (see server \
                 CPU), the same for every client; Daytona's daemon runs commands in an already \
                 isolated container and pays nothing like it. {} commands per flow, batches of \
                 {}. The fixed server time dilutes every ratio toward 1×: a client with no cost \
                 at all could not reach 0.5× of the TypeScript flow here.\n",
                bw.rounds * bw.batch,
                bw.batch
            );
            round_trip_table(&mut s, samples, false);
        }
        None => {
            let _ = writeln!(
                s,
                "(bubblewrap cannot run on this machine: no confined round trips.)\n"
            );
        }
    }

    let far = &sizes.round_trip_far;
    let _ = writeln!(
        s,
        "#### The same with {} ms before every toolbox request\n\nThe host-mode emulator again, \
         with a delay before it handles each toolbox request (WebSocket upgrades included), \
         as a daemon that far away adds; control-plane calls are not delayed. {} commands per \
         flow, batches of {}. Each request a flow waits for costs it the delay, so the p50 \
         shows how many requests each has on its path; this is the figure that carries over \
         to Daytona Cloud.\n",
        FAR_DELAY.as_millis(),
        far.rounds * far.batch,
        far.batch
    );
    round_trip_table(&mut s, &f.round_trip_far, false);

    // Create → first output.
    let mut rust = f.create_first.rust.clone();
    let mut tsc = f.create_first.ts.clone();
    let (rm, tm) = (median_dur(&mut rust), median_dur(&mut tsc));
    let _ = writeln!(
        s,
        "### Create → first output\n\n{} interleaved rounds (after one untimed round each): from \
         the create call to the first stdout callback of `echo rt` in the new sandbox, which is \
         then deleted (untimed). Rust: a fresh `DaytonaSandbox` on a shared client, whose first \
         `execute_command` creates the sandbox; TypeScript: `daytona.create`, then the session \
         flow.\n\n\
         | | median | max | ratio |\n|---|---|---|---|\n\
         | TS SDK | {} | {} | 1× |\n\
         | `DaytonaSandbox` | {} | {} | **{:.2}×** |\n",
        rust.len(),
        ms(tm),
        ms(tsc.last().copied().unwrap_or_default()),
        ms(rm),
        ms(rust.last().copied().unwrap_or_default()),
        ratio(rm, tm),
    );

    // Scale.
    let largest = f.scale.iter().map(|r| r.sandboxes).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "### Many sandboxes at once\n\nIn a child process of its own (so its peak RSS is this \
         run's alone): N `DaytonaSandbox` handles on one shared client, started with at most \
         `concurrency` operations in flight, each running its commands one after another, all \
         kept alive, then destroyed. Per live sandbox = (RSS with all N handles alive and started \
         − RSS of the warmed-up client with none) ÷ N; the target is judged on the largest run. \
         That quotient also carries what the concurrency leaves behind whatever N is (idle pooled \
         connections, freed buffers the allocator keeps), spread over N; the marginal figure \
         below, between two sizes at the same concurrency, is what one more live sandbox costs.\n\n\
         | sandboxes | concurrency | commands each | wall (up / total) | errors | baseline RSS | RSS, all live | peak RSS | per live sandbox | target |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for r in &f.scale {
        let per = r.per_handle_kib();
        let target = if r.sandboxes == largest {
            format!(
                "0 errors, ≤ 100 KiB ({})",
                verdict(r.errors == 0 && per <= 100.0)
            )
        } else {
            format!("0 errors ({})", verdict(r.errors == 0))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} s / {:.2} s | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | **{:.1} KiB** | {target} |",
            r.sandboxes,
            r.concurrency,
            r.commands,
            r.up_ms / 1000.0,
            r.wall_ms / 1000.0,
            r.errors,
            r.baseline_kib as f64 / 1024.0,
            r.live_kib as f64 / 1024.0,
            r.peak_kib as f64 / 1024.0,
            per,
        );
    }
    if let [small, big] = f.scale.as_slice()
        && big.sandboxes > small.sandboxes
        && big.concurrency == small.concurrency
    {
        let marginal = (big.live_kib as f64 - small.live_kib as f64)
            / (big.sandboxes - small.sandboxes) as f64;
        let _ = writeln!(
            s,
            "\nMarginal: (RSS with {} live − RSS with {} live) ÷ {} = **{marginal:.1} KiB** per live sandbox.",
            big.sandboxes,
            small.sandboxes,
            big.sandboxes - small.sandboxes
        );
    }
    for r in &f.scale {
        for e in &r.error_samples {
            let _ = writeln!(s, "\n- failure ({} sandboxes): `{e}`", r.sandboxes);
        }
    }

    // Demuxer.
    let _ = writeln!(
        s,
        "\n### Log demuxer\n\nIn memory, a {} MB session log with a stdout or stderr marker on every \
         line (20–160 characters; the stream picked at random per line, the worst case), fed in \
         fixed-size frames; median of {}. Two kinds of text: mostly ASCII (like build and test \
         output: a multi-byte character on one line in 50) and UTF-8 heavy (one in about every \
         third word).\n\n\
         | consumer | mostly ASCII, 1 KiB frames | mostly ASCII, 64 KiB | UTF-8 heavy, 1 KiB | UTF-8 heavy, 64 KiB | target ≥ 500 MB/s |\n|---|---|---|---|---|---|",
        sizes.demux_bytes >> 20,
        sizes.demux_reps
    );
    for c in Consumer::ALL {
        let mut cells = Vec::new();
        for mix in Mix::ALL {
            for frame in FRAMES {
                cells.push(
                    f.demux
                        .iter()
                        .find(|d| d.consumer == c && d.frame == frame && d.mix == mix)
                        .map(|d| d.mb_per_s)
                        .unwrap_or(0.0),
                );
            }
        }
        let worst = cells.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            c.label(),
            cells
                .iter()
                .map(|v| format!("{v:.0} MB/s"))
                .collect::<Vec<_>>()
                .join(" | "),
            verdict(worst >= 500.0)
        );
    }

    // Transfers.
    let mb = sizes.transfer_bytes >> 20;
    let _ = writeln!(
        s,
        "\n### File transfer\n\nA {mb} MB file through the client (`FileSystem::upload_file`, then \
         `FileSystem::download_to_path`, checked byte for byte), {} rounds, each transfer in a \
         child process of its own whose `VmHWM` is its peak.\n\n\
         | direction | throughput (median) | client peak RSS (max) | RSS before the call | target |\n|---|---|---|---|---|",
        sizes.transfer_rounds
    );
    for (name, runs) in [
        ("upload", &f.transfers.uploads),
        ("download", &f.transfers.downloads),
    ] {
        let mut rates: Vec<f64> = runs.iter().map(|r| r.mb_per_s()).collect();
        let rate = if rates.is_empty() {
            0.0
        } else {
            median_f64(&mut rates)
        };
        let peak = runs.iter().map(|r| r.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
        let before = runs.iter().map(|r| r.before_kib).max().unwrap_or(0) as f64 / 1024.0;
        let _ = writeln!(
            s,
            "| {name} | {rate:.0} MB/s | **{peak:.1} MiB** | {before:.1} MiB | < 64 MB ({}) |",
            verdict(peak * 1024.0 * 1024.0 < 64e6)
        );
    }

    let _ = writeln!(
        s,
        "\n### Local provider (re-run)\n\nThe local section above comes from this run too: \
         spawn {:.2}× raw `tokio::process` (target ≤ 1.2×), streaming {:.2}× the raw pipe's \
         throughput (target ≥ 0.5×){}.",
        f.local.spawn,
        f.local.stream,
        f.local
            .isolated_spawn
            .map(|r| format!("; isolated round trip {r:.2}× a raw `bwrap … true` (target ≤ 1.3×)"))
            .unwrap_or_default()
    );
    s
}
