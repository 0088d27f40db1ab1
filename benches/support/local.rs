//! LocalSandbox against raw `tokio::process`, measured interleaved in one run.
//!
//! - spawn overhead: `execute_command("true")` vs `sh -c true` with piped output;
//! - streaming: 200 MB of stdout delivered to an `on_stdout` callback vs read from the raw pipe;
//! - isolation (where bubblewrap works): an isolated `true` round trip vs a raw
//!   `bwrap … sh -c true` with the same namespaces and a comparable mount set, isolated vs
//!   unisolated streaming, and the one-time probe.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use workspace_sandbox::local::{Isolation, isolation};
use workspace_sandbox::{ExecuteCommandOptions, LocalSandbox, WorkspaceSandbox};

use super::report::machine_line;
use super::stats::{mb_per_s, median_dur, median_f64, p99_dur, round_us};

/// The command that reproduces the local section on its own.
pub const REPRODUCE: &str = "cargo bench --bench local";

struct Sizes {
    spawn_rounds: usize,
    stream_rounds: usize,
    stream_bytes: u64,
}

/// The local figures as comparable numbers, for other sections to quote.
#[derive(Debug, Clone, Copy)]
pub struct LocalRatios {
    /// `LocalSandbox` spawn median over the raw spawn median (lower is better).
    pub spawn: f64,
    /// `LocalSandbox` streaming throughput over the raw pipe's (higher is better).
    pub stream: f64,
    /// Isolated `true` round trip over a raw `bwrap … true` (lower is better), when measured.
    pub isolated_spawn: Option<f64>,
}

/// Runs the local measurements (short ones with `quick`) and returns the `local` section of
/// `BENCHMARKS.md` with the ratios in it.
pub async fn measure(quick: bool) -> Result<(String, LocalRatios), Box<dyn std::error::Error>> {
    let sizes = if quick {
        Sizes {
            spawn_rounds: 20,
            stream_rounds: 2,
            stream_bytes: 20 << 20,
        }
    } else {
        Sizes {
            spawn_rounds: 300,
            stream_rounds: 7,
            stream_bytes: 200 << 20,
        }
    };
    // The unisolated provider is what the first table compares with raw processes.
    let sandbox = LocalSandbox::builder().isolation(Isolation::None).build()?;
    sandbox.start().await?;
    let iso = Isolated::new().await?;

    // Warm up every path (page cache, first-spawn costs).
    for _ in 0..5 {
        raw_spawn().await?;
        sandbox_spawn(&sandbox).await?;
        if let Some(iso) = &iso {
            sandbox_spawn(&iso.sandbox).await?;
            raw_bwrap_spawn(&iso.raw_args).await?;
        }
    }

    let mut raw = Vec::with_capacity(sizes.spawn_rounds);
    let mut ours = Vec::with_capacity(sizes.spawn_rounds);
    let mut iso_spawn = Vec::with_capacity(sizes.spawn_rounds);
    let mut bwrap_spawn = Vec::with_capacity(sizes.spawn_rounds);
    for i in 0..sizes.spawn_rounds {
        // Alternate which goes first so drift on a noisy machine hits both equally.
        if i % 2 == 0 {
            raw.push(raw_spawn().await?);
            ours.push(sandbox_spawn(&sandbox).await?);
        } else {
            ours.push(sandbox_spawn(&sandbox).await?);
            raw.push(raw_spawn().await?);
        }
        if let Some(iso) = &iso {
            if i % 2 == 0 {
                bwrap_spawn.push(raw_bwrap_spawn(&iso.raw_args).await?);
                iso_spawn.push(sandbox_spawn(&iso.sandbox).await?);
            } else {
                iso_spawn.push(sandbox_spawn(&iso.sandbox).await?);
                bwrap_spawn.push(raw_bwrap_spawn(&iso.raw_args).await?);
            }
        }
    }

    let mut raw_tp = Vec::new();
    let mut ours_tp = Vec::new();
    let mut iso_tp = Vec::new();
    for i in 0..sizes.stream_rounds {
        // Odd rounds run the three in reverse order, so drift hits each alike.
        if i % 2 == 0 {
            raw_tp.push(raw_stream(sizes.stream_bytes).await?);
        }
        if let (Some(iso), 1) = (&iso, i % 2) {
            iso_tp.push(sandbox_stream(&iso.sandbox, sizes.stream_bytes).await?);
        }
        ours_tp.push(sandbox_stream(&sandbox, sizes.stream_bytes).await?);
        if let (Some(iso), 0) = (&iso, i % 2) {
            iso_tp.push(sandbox_stream(&iso.sandbox, sizes.stream_bytes).await?);
        }
        if i % 2 == 1 {
            raw_tp.push(raw_stream(sizes.stream_bytes).await?);
        }
    }
    sandbox.destroy().await?;
    let iso_section = match iso {
        Some(iso) => {
            // The probe bypasses the cache here; a sandbox pays it once per process.
            let mut probes: Vec<Duration> = (0..if quick { 2 } else { 7 })
                .map(|_| isolation::probe(None).took)
                .collect();
            let started = Instant::now();
            let fresh = LocalSandbox::builder()
                .isolation(Isolation::Required)
                .build()?;
            fresh.start().await?;
            let start_cost = started.elapsed();
            fresh.destroy().await?;
            iso.sandbox.destroy().await?;
            let iso_med = median_dur(&mut iso_spawn);
            let bwrap_med = median_dur(&mut bwrap_spawn);
            let ratio = iso_med.as_secs_f64() / bwrap_med.as_secs_f64();
            let iso_mbs = median_f64(&mut iso_tp);
            let unisolated_mbs = median_f64(&mut ours_tp.clone());
            IsoFigures {
                spawn_ratio: Some(ratio),
                text: format!(
                    "\n### Isolation (bubblewrap)\n\n\
                     | measure | reference | isolated `LocalSandbox` | ratio | target |\n\
                     |---|---|---|---|---|\n\
                     | `true` round trip, median | raw `bwrap … sh -c true`: {bm:?} | {im:?} | **{ratio:.2}×** time | ≤ 1.3× |\n\
                     | `true` round trip, p99 | {bp:?} | {ip:?} | {p99r:.2}× | |\n\
                     | stream stdout, median | unisolated: {um:.0} MB/s | {ism:.0} MB/s | **{sr:.2}×** throughput | |\n\
                     | probe (once per process), median | | {probe:?} | | |\n\
                     | first start of a sandbox (namespaces made) | | {start:?} | | |\n\n\
                     The raw reference starts a fresh `bwrap` with the sandbox's own namespaces and \
                     mount set (`isolation::bwrap_args`) per command, as a bwrap-per-command \
                     design would. The sandbox makes its namespaces once per \
                     start (a holder process) and each command enters them with `nsenter` in a \
                     new session, so a command costs an `nsenter` and a shell, not a namespace \
                     and mount setup. The probe runs once per process and `bwrap` setting, \
                     and is cached.\n",
                    bm = round_us(bwrap_med),
                    im = round_us(iso_med),
                    bp = round_us(p99_dur(&bwrap_spawn)),
                    ip = round_us(p99_dur(&iso_spawn)),
                    p99r = p99_dur(&iso_spawn).as_secs_f64() / p99_dur(&bwrap_spawn).as_secs_f64(),
                    um = unisolated_mbs,
                    ism = iso_mbs,
                    sr = iso_mbs / unisolated_mbs,
                    probe = round_us(median_dur(&mut probes)),
                    start = round_us(start_cost),
                ),
            }
        }
        None => IsoFigures {
            spawn_ratio: None,
            text: format!(
                "\n### Isolation (bubblewrap)\n\nNot measured: {}\n",
                isolation::probe(None).reason.unwrap_or_default()
            ),
        },
    };

    let raw_spawn_med = median_dur(&mut raw);
    let ours_spawn_med = median_dur(&mut ours);
    let raw_spawn_p99 = p99_dur(&raw);
    let ours_spawn_p99 = p99_dur(&ours);
    let spawn_ratio = ours_spawn_med.as_secs_f64() / raw_spawn_med.as_secs_f64();
    let raw_mbs = median_f64(&mut raw_tp);
    let ours_mbs = median_f64(&mut ours_tp);
    let stream_ratio = ours_mbs / raw_mbs;

    let section = format!(
        "## Local provider\n\n\
         Reproduce: `{REPRODUCE}` (release build; {spawn} interleaved spawn pairs, {stream} \
         interleaved streaming pairs of {mb} MB).\n\n\
         Machine: {machine}\n\n\
         | measure | raw `tokio::process` | `LocalSandbox` | ratio | target |\n\
         |---|---|---|---|---|\n\
         | spawn `true`, median | {rs:?} | {os:?} | **{spawn_ratio:.2}×** time | ≤ 1.2× |\n\
         | spawn `true`, p99 | {rp:?} | {op:?} | {p99_ratio:.2}× | |\n\
         | stream stdout, median | {raw_mbs:.0} MB/s | {ours_mbs:.0} MB/s | **{stream_ratio:.2}×** throughput | ≥ 0.5× |\n\n\
         Raw spawn is `sh -c true` with stdout and stderr piped and collected (`Command::output`), \
         run in a spawned task as the sandbox's readers are; the sandbox adds its own process group, a minimal environment, a reader task per pipe, \
         the output caps and the drop guard. Raw streaming reads the pipe in 64 KiB chunks and \
         discards them; the sandbox decodes each chunk as UTF-8, hands it to an `on_stdout` \
         callback and keeps head and tail within its 1 MiB cap. A spawn ratio below 1× is real, not \
         noise: the raw command inherits this process's whole environment, while the sandbox \
         starts from a minimal one, which makes its `execve` cheaper. This table uses \
         `Isolation::None`; the isolated provider is measured below. `cargo bench --bench daytona` \
         re-runs these measurements too.\n{iso}",
        iso = iso_section.text,
        spawn = sizes.spawn_rounds,
        stream = sizes.stream_rounds,
        mb = sizes.stream_bytes >> 20,
        machine = machine_line(),
        rs = round_us(raw_spawn_med),
        os = round_us(ours_spawn_med),
        rp = round_us(raw_spawn_p99),
        op = round_us(ours_spawn_p99),
        p99_ratio = ours_spawn_p99.as_secs_f64() / raw_spawn_p99.as_secs_f64(),
    );
    Ok((
        section,
        LocalRatios {
            spawn: spawn_ratio,
            stream: stream_ratio,
            isolated_spawn: iso_section.spawn_ratio,
        },
    ))
}

/// The isolated sandbox and the raw `bwrap` line it is compared with.
struct Isolated {
    sandbox: LocalSandbox,
    raw_args: Vec<String>,
}

struct IsoFigures {
    spawn_ratio: Option<f64>,
    text: String,
}

impl Isolated {
    /// `None` where bubblewrap does not work on this host.
    async fn new() -> Result<Option<Isolated>, Box<dyn std::error::Error>> {
        if isolation::probe(None).reason.is_some() {
            return Ok(None);
        }
        let sandbox = LocalSandbox::builder()
            .isolation(Isolation::Required)
            .build()?;
        sandbox.start().await?;
        // The very mount set and namespaces the sandbox's holder gets, made per command.
        let root = sandbox.root().canonicalize()?;
        let mut raw_args: Vec<String> = isolation::bwrap_args(&root, false)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        raw_args.extend(["--", "sh", "-c", "true"].map(String::from));
        Ok(Some(Isolated { sandbox, raw_args }))
    }
}

/// One raw `bwrap … sh -c true` with piped, collected output, on a worker thread.
async fn raw_bwrap_spawn(args: &[String]) -> std::io::Result<Duration> {
    let args = args.to_vec();
    tokio::spawn(async move {
        let t = Instant::now();
        let out = tokio::process::Command::new("bwrap")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .await?;
        assert!(out.status.success(), "{out:?}");
        Ok(t.elapsed())
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn raw_spawn() -> std::io::Result<Duration> {
    // On a worker thread, like the sandbox's own reader tasks, so the two compare like for like.
    tokio::spawn(raw_spawn_inner())
        .await
        .map_err(std::io::Error::other)?
}

async fn raw_spawn_inner() -> std::io::Result<Duration> {
    let t = Instant::now();
    let out = tokio::process::Command::new("sh")
        .args(["-c", "true"])
        .stdin(Stdio::null())
        .output()
        .await?;
    assert!(out.status.success());
    Ok(t.elapsed())
}

async fn sandbox_spawn(sb: &LocalSandbox) -> workspace_sandbox::Result<Duration> {
    let t = Instant::now();
    let r = sb
        .execute_command("true", &[], ExecuteCommandOptions::new())
        .await?;
    assert_eq!(r.exit_code, 0);
    Ok(t.elapsed())
}

/// MB/s reading `bytes` of stdout from the raw pipe, on a worker thread.
async fn raw_stream(bytes: u64) -> std::io::Result<f64> {
    tokio::spawn(raw_stream_inner(bytes))
        .await
        .map_err(std::io::Error::other)?
}

async fn raw_stream_inner(bytes: u64) -> std::io::Result<f64> {
    let t = Instant::now();
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", &format!("head -c {bytes} /dev/zero")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    child.wait().await?;
    assert_eq!(total, bytes);
    Ok(mb_per_s(bytes, t.elapsed()))
}

/// MB/s of `bytes` of stdout delivered to a streaming callback.
async fn sandbox_stream(sb: &LocalSandbox, bytes: u64) -> workspace_sandbox::Result<f64> {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let t = Instant::now();
    let r = sb
        .execute_command(
            &format!("head -c {bytes} /dev/zero"),
            &[],
            ExecuteCommandOptions::new().on_stdout(move |chunk| {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }),
        )
        .await?;
    let elapsed = t.elapsed();
    assert_eq!(r.exit_code, 0);
    assert_eq!(seen.load(Ordering::Relaxed), bytes);
    assert_eq!(r.stdout.len() as u64 + r.stdout_dropped_bytes, bytes);
    Ok(mb_per_s(bytes, elapsed))
}
