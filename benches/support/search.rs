//! `grep` on the local provider against ripgrep, interleaved in one run over one generated tree
//! of 10,000 files.
//!
//! Both find every matching line of a regex and hand it to the caller: ripgrep as a process
//! whose stdout is read through a pipe (not `/dev/null`, which makes it stop at the first
//! match), the sandbox's [`SandboxFilesystem::grep`] as the values its caller gets. Both honour
//! `.gitignore` without a git repository and search hidden files (`--hidden
//! --no-require-git -g '!.git'` for ripgrep). Without `rg` on `PATH` the comparison is skipped
//! with a note and only the sandbox is timed.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use workspace_sandbox::local::Isolation;
use workspace_sandbox::{GrepRequest, LocalSandbox, SandboxFilesystem, WorkspaceSandbox};

use crate::support::report::machine_line;
use crate::support::stats::{median_dur, round_us};

/// What is searched for: a regex that matches a few lines per file in a tenth of the files.
const PATTERN: &str = r"fn handle_\w+\(";

/// The grep figure, for the summary line.
#[derive(Debug, Clone, Copy)]
pub struct SearchRatio {
    /// Sandbox median over ripgrep's (lower is better), when `rg` is installed.
    pub vs_rg: Option<f64>,
}

/// Write `files` files in 100 directories, ~2 KiB each, a tenth holding matches, plus an
/// ignored directory the search must skip.
fn make_tree(root: &Path, files: usize) -> std::io::Result<()> {
    std::fs::write(root.join(".gitignore"), "ignored/\n")?;
    std::fs::create_dir_all(root.join("ignored"))?;
    std::fs::write(root.join("ignored/skip.rs"), "fn handle_ignored() {}\n")?;
    for i in 0..files {
        let dir = root.join(format!("pkg{:03}", i % 100));
        std::fs::create_dir_all(&dir)?;
        let mut text = String::with_capacity(2200);
        for line in 0..60 {
            if i % 10 == 0 && line % 20 == 5 {
                text.push_str(&format!("pub fn handle_request_{line}(req: Request) {{\n"));
            } else {
                text.push_str(&format!(
                    "    let value_{line} = compute({i}, {line}); // filler\n"
                ));
            }
        }
        std::fs::write(dir.join(format!("mod{i:05}.rs")), text)?;
    }
    Ok(())
}

fn rg_available() -> bool {
    std::process::Command::new("rg")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One ripgrep run: its time and the matching lines it printed.
async fn rg(root: &Path) -> Result<(Duration, usize), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let out = tokio::process::Command::new("rg")
        .args([
            "-n",
            "--no-heading",
            "--hidden",
            "--no-require-git",
            "-g",
            "!.git",
        ])
        .arg(PATTERN)
        .arg(root)
        .stdin(Stdio::null())
        .output()
        .await?;
    let took = started.elapsed();
    Ok((
        took,
        out.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
    ))
}

/// One sandbox grep: its time and the matching lines it returned.
async fn ours(
    fs: &dyn SandboxFilesystem,
    request: &GrepRequest,
) -> Result<(Duration, usize), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let result = fs.grep(request).await?;
    let took = started.elapsed();
    Ok((took, result.files.iter().map(|f| f.lines.len()).sum()))
}

/// Runs the comparison and returns the `local-search` section of `BENCHMARKS.md`.
pub async fn measure(quick: bool) -> Result<(String, SearchRatio), Box<dyn std::error::Error>> {
    let (files, rounds) = if quick { (1000, 2) } else { (10_000, 15) };
    let tree = tempfile::tempdir()?;
    make_tree(tree.path(), files)?;
    let sandbox = LocalSandbox::builder()
        .isolation(Isolation::None)
        .root(tree.path())
        .build()?;
    sandbox.start().await?;
    let fs = sandbox
        .filesystem()
        .ok_or("the local sandbox has a filesystem")?;
    let request = GrepRequest::new(PATTERN).max_lines(usize::MAX);
    let with_rg = rg_available();
    if !with_rg {
        println!("note: `rg` (ripgrep) is not installed: the grep comparison is skipped");
    }

    // Warm the page cache and both paths.
    let (_, expected) = ours(fs, &request).await?;
    if with_rg {
        let (_, got) = rg(tree.path()).await?;
        if got != expected {
            return Err(format!("rg found {got} lines, the sandbox {expected}").into());
        }
    }
    let mut rg_times = Vec::new();
    let mut our_times = Vec::new();
    for i in 0..rounds {
        if with_rg && i % 2 == 0 {
            rg_times.push(rg(tree.path()).await?.0);
        }
        our_times.push(ours(fs, &request).await?.0);
        if with_rg && i % 2 == 1 {
            rg_times.push(rg(tree.path()).await?.0);
        }
    }
    sandbox.destroy().await?;

    let ours_med = median_dur(&mut our_times);
    let rg_med = (!rg_times.is_empty()).then(|| median_dur(&mut rg_times));
    let ratio = rg_med.map(|r| ours_med.as_secs_f64() / r.as_secs_f64());
    let mut s = String::new();
    s.push_str("## Local provider: grep\n\n");
    s.push_str(&format!(
        "Reproduce: `cargo bench --bench local -- search` (release build; {rounds} interleaved pairs over \
         {files} files of ~2 KiB in 100 directories, `{PATTERN}` matching {expected} lines).\n\n"
    ));
    s.push_str(&format!("Machine: {}\n\n", machine_line()));
    s.push_str("| measure | `rg` (ripgrep) | `LocalSandbox` grep | ratio | target |\n");
    s.push_str("|---|---|---|---|---|\n");
    match (rg_med, ratio) {
        (Some(r), Some(x)) => s.push_str(&format!(
            "| every matching line, median | {:?} | {:?} | **{x:.2}×** time | ≤ 1.5× |\n",
            round_us(r),
            round_us(ours_med)
        )),
        _ => s.push_str(&format!(
            "| every matching line, median | not installed | {:?} | | ≤ 1.5× |\n",
            round_us(ours_med)
        )),
    }
    s.push_str(
        "\nBoth search hidden files, skip `.git` and honour `.gitignore` (an ignored directory \
         is in the tree). ripgrep runs as a process whose output is read through a pipe; the \
         sandbox's `filesystem().grep()` walks in parallel with the `ignore` crate and searches \
         each file with `grep-searcher`, returning every line as values. ripgrep's figure \
         includes starting its process (about a millisecond here); the sandbox's includes the \
         blocking-pool hop and sorting the results by path, which ripgrep does not do.\n",
    );
    Ok((s, SearchRatio { vs_rg: ratio }))
}
