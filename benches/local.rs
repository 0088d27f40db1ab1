//! LocalSandbox against raw `tokio::process`, measured interleaved in one run.
//!
//! - spawn overhead: `execute_command("true")` vs `sh -c true` with piped output;
//! - streaming: 200 MB of stdout delivered to an `on_stdout` callback vs read from the raw pipe.
//!
//! Writes its section of `BENCHMARKS.md` (between the `local` markers). Reproduce with
//! `cargo bench --bench local`; `BENCH_QUICK=1` runs a short smoke version that writes nothing.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use workspace_sandbox::{ExecuteCommandOptions, LocalSandbox, WorkspaceSandbox};

const REPRODUCE: &str = "cargo bench --bench local";

struct Sizes {
    spawn_rounds: usize,
    stream_rounds: usize,
    stream_bytes: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; ignore arguments.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
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
    let sandbox = LocalSandbox::builder().build()?;
    sandbox.start().await?;

    // Warm up both paths (page cache, first-spawn costs).
    for _ in 0..5 {
        raw_spawn().await?;
        sandbox_spawn(&sandbox).await?;
    }

    let mut raw = Vec::with_capacity(sizes.spawn_rounds);
    let mut ours = Vec::with_capacity(sizes.spawn_rounds);
    for i in 0..sizes.spawn_rounds {
        // Alternate which goes first so drift on a noisy machine hits both equally.
        if i % 2 == 0 {
            raw.push(raw_spawn().await?);
            ours.push(sandbox_spawn(&sandbox).await?);
        } else {
            ours.push(sandbox_spawn(&sandbox).await?);
            raw.push(raw_spawn().await?);
        }
    }

    let mut raw_tp = Vec::new();
    let mut ours_tp = Vec::new();
    for i in 0..sizes.stream_rounds {
        if i % 2 == 0 {
            raw_tp.push(raw_stream(sizes.stream_bytes).await?);
            ours_tp.push(sandbox_stream(&sandbox, sizes.stream_bytes).await?);
        } else {
            ours_tp.push(sandbox_stream(&sandbox, sizes.stream_bytes).await?);
            raw_tp.push(raw_stream(sizes.stream_bytes).await?);
        }
    }
    sandbox.destroy().await?;

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
         starts from a minimal one, which makes its `execve` cheaper.\n",
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
    println!("{section}");
    if quick {
        println!("(BENCH_QUICK: figures not written)");
    } else {
        write_section(Path::new("BENCHMARKS.md"), "local", &section)?;
        println!("wrote BENCHMARKS.md");
    }
    Ok(())
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

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn median_dur(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p99_dur(sorted: &[Duration]) -> Duration {
    let i = ((sorted.len() as f64) * 0.99).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn round_us(d: Duration) -> Duration {
    Duration::from_micros(d.as_micros() as u64)
}

fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {kernel}")
}

/// Replace (or append) the section between `<!-- name:start -->` and `<!-- name:end -->`.
fn write_section(path: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nEvery figure below is a ratio against a reference measured in the same run, \
         interleaved, on the machine named in its section.\n"
            .to_string()
    });
    let block = format!("{start}\n{body}{end}");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &old[..a], block, &old[b + end.len()..]),
        _ => format!("{}\n{}\n", old.trim_end(), block),
    };
    std::fs::write(path, new)
}
