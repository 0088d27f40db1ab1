//! Multishot: several agents attempt the same task, each in a Daytona sandbox of its own; the
//! best attempt wins and its workspace is carried into a fresh sandbox for the next round.
//!
//! ```sh
//! cargo run --example multishot                  # 3 agents, offline (in-process emulator)
//! cargo run --example multishot -- --agents 4
//! DAYTONA_API_KEY=… cargo run --example multishot   # on Daytona Cloud
//! ```
//!
//! The flow:
//!
//! 1. N sandboxes (`--agents N`, default 3) are created in parallel, each labelled with its
//!    agent id.
//! 2. Every agent does the task: it writes its own candidate `sum_to.sh` (the sum 1 + … + N;
//!    the candidates stand in for what different model runs would write, so the example is
//!    deterministic and offline) beside a shared `test.sh`, then runs the test. All tests run
//!    at once and their output is streamed live, each line prefixed with the agent's id.
//! 3. The winner: a passing test first (exit code 0), then the shortest test time.
//! 4. The winner's project is packed with `tar` inside its sandbox, downloaded to a local file
//!    (streamed to disk), uploaded into a fresh sandbox (streamed from disk) and unpacked there,
//!    and the test is run again to show the next round starts from the winning code.
//!
//! Every sandbox is destroyed at the end, also when something fails or on Ctrl-C; the emulator,
//! when used, is shut down after them. Without `DAYTONA_API_KEY` (or with `--emulator`) it runs
//! on a Daytona emulator started in this process.

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{join_all, try_join_all};
use workspace_daytona::DaytonaSandbox;
use workspace_sandbox::{ExecuteCommandOptions, WorkspaceSandbox};

#[path = "support/daytona_target.rs"]
mod daytona_target;

use daytona_target::DaytonaTarget;

type BoxError = Box<dyn Error + Send + Sync>;

/// Most agents accepted: each is a sandbox, and cloud organizations have quotas.
const MAX_AGENTS: usize = 10;
/// Bound on every command the example runs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Where `tar` leaves the archive inside a sandbox.
const ARCHIVE_PATH: &str = "/tmp/project.tar.gz";
/// The project directory, under each sandbox's working directory.
const PROJECT_DIR: &str = "project";

/// The test every agent's project carries: it checks `sum_to.sh` on small and large inputs and
/// prints one line per case as it goes, so the output streams.
const TEST_SCRIPT: &str = r#"#!/bin/sh
# Checks sum_to.sh: `sh sum_to.sh N` must print 1 + 2 + ... + N.
failed=0
for case in 0:0 1:1 10:55 100:5050 1000:500500 200000:20000100000; do
  n=${case%%:*}
  want=${case#*:}
  got=$(sh sum_to.sh "$n")
  if [ "$got" = "$want" ]; then
    echo "ok    sum_to $n = $got"
  else
    echo "FAIL  sum_to $n: want $want, got $got"
    failed=1
  fi
done
if [ "$failed" -eq 0 ]; then echo "all cases pass"; fi
exit "$failed"
"#;

/// What the agents come up with, one per agent in turn.
const CANDIDATES: &[(&str, &str)] = &[
    (
        "a loop that stops one short",
        "#!/bin/sh\nn=$1\ni=1\ntotal=0\nwhile [ \"$i\" -lt \"$n\" ]; do\n  total=$((total + i))\n  i=$((i + 1))\ndone\necho \"$total\"\n",
    ),
    (
        "a loop",
        "#!/bin/sh\nn=$1\ni=1\ntotal=0\nwhile [ \"$i\" -le \"$n\" ]; do\n  total=$((total + i))\n  i=$((i + 1))\ndone\necho \"$total\"\n",
    ),
    (
        "Gauss's formula",
        "#!/bin/sh\nn=$1\necho $((n * (n + 1) / 2))\n",
    ),
    (
        "seq and awk",
        "#!/bin/sh\nseq \"$1\" | awk '{ s += $1 } END { printf \"%.0f\\n\", s }'\n",
    ),
];

struct Cli {
    agents: usize,
    emulator: bool,
}

fn parse_cli() -> Result<Cli, String> {
    let mut cli = Cli {
        agents: 3,
        emulator: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--agents" => {
                let n = args.next().ok_or("--agents needs a value")?;
                cli.agents = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_AGENTS).contains(n))
                    .ok_or(format!(
                        "--agents must be a number in 1..={MAX_AGENTS}, got {n:?}"
                    ))?;
            }
            "--emulator" => cli.emulator = true,
            "-h" | "--help" => return Err("usage: multishot [--agents N] [--emulator]".into()),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(cli)
}

/// Every sandbox the run created, so that all of them are destroyed however the run ends.
#[derive(Default, Clone)]
struct Sandboxes(Arc<Mutex<Vec<Arc<DaytonaSandbox>>>>);

impl Sandboxes {
    fn add(&self, sandbox: DaytonaSandbox) -> Arc<DaytonaSandbox> {
        let sandbox = Arc::new(sandbox);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sandbox.clone());
        sandbox
    }

    /// Destroy them all, in parallel; true when every destroy succeeded.
    async fn destroy_all(&self) -> bool {
        let all: Vec<_> = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        let results = join_all(all.iter().map(|s| s.destroy())).await;
        let mut ok = true;
        for (sandbox, result) in all.iter().zip(results) {
            match result {
                Ok(()) => println!("  destroyed {}", sandbox.id()),
                Err(e) => {
                    ok = false;
                    eprintln!("  warning: destroying {} failed: {e}", sandbox.id());
                }
            }
        }
        ok
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let target = tokio::select! {
        t = DaytonaTarget::from_env(cli.emulator) => t,
        _ = tokio::signal::ctrl_c() => Err("interrupted by Ctrl-C".into()),
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("running on {}", target.describe());

    let sandboxes = Sandboxes::default();
    let outcome = tokio::select! {
        r = run(&cli, &target, &sandboxes) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted by Ctrl-C".into()),
    };
    // Dropping `run` above killed whatever commands were in flight; now the sandboxes go.
    println!("\ncleaning up");
    let destroyed = sandboxes.destroy_all().await;
    target.shutdown().await;
    match outcome {
        Ok(()) if destroyed => ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!("error: some sandboxes could not be destroyed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One agent's attempt.
struct Attempt {
    agent: String,
    approach: &'static str,
    sandbox: Arc<DaytonaSandbox>,
    project: String,
    exit_code: i32,
    took: Duration,
}

async fn run(cli: &Cli, target: &DaytonaTarget, sandboxes: &Sandboxes) -> Result<(), BoxError> {
    // 1. One sandbox per agent, created in parallel.
    let run_id = format!("{:x}", std::process::id());
    let agents: Vec<String> = (1..=cli.agents).map(|i| format!("agent-{i}")).collect();
    let mut handles = Vec::new();
    for agent in &agents {
        let sandbox = target
            .builder()
            .label("agentId", agent.clone())
            .label("multishot-run", run_id.clone())
            .build()?;
        handles.push(sandboxes.add(sandbox));
    }
    println!("\ncreating {} sandboxes in parallel", handles.len());
    let started = Instant::now();
    try_join_all(handles.iter().map(|s| s.start())).await?;
    for (agent, sandbox) in agents.iter().zip(&handles) {
        let daytona_id = sandbox.daytona_id().unwrap_or_default();
        println!(
            "  {agent}: sandbox {} (Daytona id {daytona_id})",
            sandbox.id()
        );
    }
    println!("  all up in {:.1?}", started.elapsed());

    // 2. The same task in every sandbox, at once, output streamed with the agent's prefix.
    println!("\nrunning the task in every sandbox");
    let attempts = try_join_all(agents.iter().zip(&handles).enumerate().map(
        |(i, (agent, sandbox))| {
            let (approach, solution) = CANDIDATES[i % CANDIDATES.len()];
            attempt(agent.clone(), approach, solution, sandbox.clone())
        },
    ))
    .await?;

    // 3. The winner: passing first, then fastest.
    println!("\nresults");
    for a in &attempts {
        let verdict = if a.exit_code == 0 { "pass" } else { "fail" };
        println!(
            "  {:<9} {:<28} exit {:<3} {verdict}  {:>7.2?}",
            a.agent, a.approach, a.exit_code, a.took
        );
    }
    let winner = attempts
        .iter()
        .min_by_key(|a| (a.exit_code != 0, a.took))
        .ok_or("no attempts")?;
    if winner.exit_code != 0 {
        return Err("no agent's solution passed the test".into());
    }
    println!(
        "winner: {} ({}, {:.2?})",
        winner.agent, winner.approach, winner.took
    );

    // 4. Carry the winner's project into a fresh sandbox.
    let local = tempfile::tempdir()?;
    let archive = local.path().join("winner.tar.gz");
    pack_and_download(winner, &archive).await?;
    let next = sandboxes.add(
        target
            .builder()
            .label("agentId", "next-round")
            .label("multishot-run", run_id)
            .build()?,
    );
    next.start().await?;
    println!(
        "\nnext round: sandbox {} (Daytona id {})",
        next.id(),
        next.daytona_id().unwrap_or_default()
    );
    let project = upload_and_unpack(&next, &archive).await?;
    let listing = run_ok(
        next.as_ref(),
        &format!("ls -l {}", shell(&project)),
        "listing the unpacked project",
    )
    .await?;
    for line in listing.lines() {
        println!("  {line}");
    }
    let check = next
        .execute_command(
            "sh test.sh",
            &[],
            streamed("next-round")
                .cwd(project.clone())
                .timeout(COMMAND_TIMEOUT),
        )
        .await?;
    if !check.success {
        return Err(format!(
            "the winning project fails its test in the new sandbox (exit {})",
            check.exit_code
        )
        .into());
    }
    println!(
        "the new sandbox starts from {}'s passing project",
        winner.agent
    );
    Ok(())
}

/// Write the agent's project into its sandbox and run the test.
async fn attempt(
    agent: String,
    approach: &'static str,
    solution: &'static str,
    sandbox: Arc<DaytonaSandbox>,
) -> Result<Attempt, BoxError> {
    let project = format!("{}/{PROJECT_DIR}", work_dir(sandbox.as_ref()).await?);
    let fs = sandbox.filesystem().ok_or("the sandbox has no file API")?;
    fs.write_file(&format!("{project}/test.sh"), TEST_SCRIPT.as_bytes())
        .await?;
    fs.write_file(&format!("{project}/sum_to.sh"), solution.as_bytes())
        .await?;
    let notes = format!("Solution by {agent}: {approach}.\n");
    fs.write_file(&format!("{project}/NOTES.md"), notes.as_bytes())
        .await?;
    println!("[{agent}] wrote sum_to.sh ({approach}); running sh test.sh");
    let result = sandbox
        .execute_command(
            "sh test.sh",
            &[],
            streamed(&agent)
                .cwd(project.clone())
                .timeout(COMMAND_TIMEOUT),
        )
        .await?;
    println!("[{agent}] exit code {}", result.exit_code);
    Ok(Attempt {
        agent,
        approach,
        sandbox,
        project,
        exit_code: result.exit_code,
        took: result.duration,
    })
}

/// Pack the winner's project with `tar` inside its sandbox, then download the archive to
/// `local` (streamed to disk).
async fn pack_and_download(winner: &Attempt, local: &Path) -> Result<(), BoxError> {
    println!("\npacking {}'s project in its sandbox", winner.agent);
    run_ok(
        winner.sandbox.as_ref(),
        &format!("tar czf {ARCHIVE_PATH} -C {} .", shell(&winner.project)),
        "packing the project",
    )
    .await?;
    winner
        .sandbox
        .daytona()?
        .fs()
        .download_to_path(ARCHIVE_PATH, local)
        .await?;
    let bytes = std::fs::read(local)?;
    // A gzip stream starts with 1f 8b: catch a download that saved something else.
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(format!("{} is not a gzip archive", local.display()).into());
    }
    println!(
        "  downloaded {ARCHIVE_PATH} to {} ({} bytes)",
        local.display(),
        bytes.len()
    );
    Ok(())
}

/// Upload the archive into `sandbox` (streamed from disk) and unpack it into a project dir
/// under its working directory; the project dir.
async fn upload_and_unpack(sandbox: &DaytonaSandbox, local: &Path) -> Result<String, BoxError> {
    sandbox
        .daytona()?
        .fs()
        .upload_file(local, ARCHIVE_PATH)
        .await?;
    let project = format!("{}/{PROJECT_DIR}", work_dir(sandbox).await?);
    run_ok(
        sandbox,
        &format!(
            "mkdir -p {dir} && tar xzf {ARCHIVE_PATH} -C {dir}",
            dir = shell(&project)
        ),
        "unpacking the project",
    )
    .await?;
    println!("  uploaded and unpacked into {project}");
    Ok(project)
}

/// The sandbox's working directory, as its shell sees it.
async fn work_dir(sandbox: &dyn WorkspaceSandbox) -> Result<String, BoxError> {
    let dir = run_ok(sandbox, "pwd", "asking for the working directory").await?;
    let dir = dir.trim();
    if !dir.starts_with('/') {
        return Err(format!("`pwd` printed {dir:?}, not an absolute path").into());
    }
    Ok(dir.to_string())
}

/// Run a shell command line that must succeed; its stdout.
async fn run_ok(
    sandbox: &dyn WorkspaceSandbox,
    line: &str,
    what: &str,
) -> Result<String, BoxError> {
    let result = sandbox
        .execute_command(
            line,
            &[],
            ExecuteCommandOptions::new().timeout(COMMAND_TIMEOUT),
        )
        .await?;
    if !result.success {
        return Err(format!(
            "{what} failed (`{line}`, exit {}): {}",
            result.exit_code,
            result.stderr.trim()
        )
        .into());
    }
    Ok(result.stdout)
}

fn shell(s: &str) -> String {
    workspace_sandbox::shell_quote(s)
}

/// Options that print the command's output live, line by line, behind `[prefix]`.
fn streamed(prefix: &str) -> ExecuteCommandOptions {
    let out = Arc::new(LinePrinter::new(prefix, false));
    let err = Arc::new(LinePrinter::new(prefix, true));
    ExecuteCommandOptions::new()
        .on_stdout(move |chunk| out.push(chunk))
        .on_stderr(move |chunk| err.push(chunk))
}

/// Turns output chunks into whole prefixed lines, so that agents' lines never interleave
/// mid-line.
struct LinePrinter {
    prefix: String,
    stderr: bool,
    pending: Mutex<String>,
}

impl LinePrinter {
    fn new(prefix: &str, stderr: bool) -> Self {
        LinePrinter {
            prefix: prefix.to_string(),
            stderr,
            pending: Mutex::new(String::new()),
        }
    }

    fn push(&self, chunk: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.push_str(chunk);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            self.print(line.trim_end_matches(['\n', '\r']));
        }
    }

    fn print(&self, line: &str) {
        if self.stderr {
            eprintln!("[{}] {line}", self.prefix);
        } else {
            println!("[{}] {line}", self.prefix);
        }
    }
}

impl Drop for LinePrinter {
    /// Output that did not end with a newline is still shown.
    fn drop(&mut self) {
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        if !pending.is_empty() {
            let rest = std::mem::take(pending);
            self.print(&rest);
        }
    }
}
