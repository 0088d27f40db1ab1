//! Preview links: run a web server in a Daytona sandbox and reach it from here through the
//! sandbox's preview URL.
//!
//! ```sh
//! cargo run --example preview                    # offline (in-process emulator)
//! DAYTONA_API_KEY=… cargo run --example preview  # on Daytona Cloud
//! ```
//!
//! 1. A page is written into the sandbox and `python3 -m http.server` is started on it as a
//!    background process (`processes().spawn`).
//! 2. The port's preview link (URL and access token) is fetched from the API, and the URL is
//!    polled until the server answers: bounded attempts with a short sleep, failing with the
//!    server's own output when it never comes up (or exits early).
//! 3. The page is fetched through the preview URL with the token header, and again through a
//!    signed preview URL, which needs no header.
//! 4. The server is killed and the sandbox destroyed, on every exit path, Ctrl-C included.
//!
//! Flags: `--port N` (default 8000 on Daytona; a free local port on the emulator, whose sandbox
//! processes share this machine's network), `--emulator` (use the emulator even when
//! `DAYTONA_API_KEY` is set).

use std::error::Error;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use workspace_daytona::{DaytonaSandbox, PreviewLink};
use workspace_sandbox::{
    ExecuteCommandOptions, OutputOffsets, ProcessId, ProcessState, SpawnOptions, WorkspaceSandbox,
};

#[path = "support/daytona_target.rs"]
mod daytona_target;

use daytona_target::DaytonaTarget;

type BoxError = Box<dyn Error + Send + Sync>;

/// The port on Daytona when `--port` is not given.
const DEFAULT_PORT: u16 = 8000;
/// Readiness polling: this many attempts, this far apart (about 15 s in all).
const READY_ATTEMPTS: u32 = 60;
const READY_INTERVAL: Duration = Duration::from_millis(250);
/// Bound on each HTTP request to the preview URL.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the signed preview URL stays valid.
const SIGNED_URL_LIFETIME: Duration = Duration::from_secs(120);

struct Cli {
    port: Option<u16>,
    emulator: bool,
}

fn parse_cli() -> Result<Cli, String> {
    let mut cli = Cli {
        port: None,
        emulator: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let p = args.next().ok_or("--port needs a value")?;
                let port = p.parse::<u16>().ok().filter(|p| *p > 0).ok_or(format!(
                    "--port must be a port number in 1..=65535, got {p:?}"
                ))?;
                cli.port = Some(port);
            }
            "--emulator" => cli.emulator = true,
            "-h" | "--help" => return Err("usage: preview [--port N] [--emulator]".into()),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(cli)
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
    let sandbox = match target.builder().label("example", "preview").build() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: could not configure a Daytona sandbox: {e}");
            target.shutdown().await;
            return ExitCode::FAILURE;
        }
    };

    // The server's id once spawned, so that it is killed however `run` ends.
    let server = Mutex::new(None::<ProcessId>);
    let outcome = tokio::select! {
        r = run(&cli, &target, &sandbox, &server) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted by Ctrl-C".into()),
    };
    let spawned = server.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let (Some(id), Some(processes)) = (spawned, sandbox.processes()) {
        match processes.kill(&id).await {
            Ok(info) => println!("\nserver {id} stopped ({})", state_text(info.state)),
            Err(e) => eprintln!("warning: killing the server {id} failed: {e}"),
        }
    }
    let destroyed = match sandbox.destroy().await {
        Ok(()) => {
            println!("sandbox {} destroyed", sandbox.id());
            true
        }
        Err(e) => {
            eprintln!("warning: destroying sandbox {} failed: {e}", sandbox.id());
            false
        }
    };
    target.shutdown().await;
    match outcome {
        Ok(()) if destroyed => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    cli: &Cli,
    target: &DaytonaTarget,
    sandbox: &DaytonaSandbox,
    server: &Mutex<Option<ProcessId>>,
) -> Result<(), BoxError> {
    sandbox.start().await?;
    println!(
        "sandbox {} (Daytona id {})",
        sandbox.id(),
        sandbox.daytona_id().unwrap_or_default()
    );
    let (port, bind) = match (cli.port, target.is_emulator()) {
        (Some(port), emulated) => (port, bind_address(emulated)),
        (None, true) => (free_local_port()?, bind_address(true)),
        (None, false) => (DEFAULT_PORT, bind_address(false)),
    };

    // 1. A page, and a server for it in the background.
    let site = format!("{}/site", work_dir(sandbox).await?);
    let marker = format!("served from sandbox {}", sandbox.id());
    let page = format!(
        "<!doctype html>\n<title>preview</title>\n<h1>Hello through the preview link</h1>\n\
         <p>{marker}</p>\n"
    );
    let fs = sandbox.filesystem().ok_or("the sandbox has no file API")?;
    fs.write_file(&format!("{site}/index.html"), page.as_bytes())
        .await?;
    let processes = sandbox
        .processes()
        .ok_or("the sandbox has no process API")?;
    let args: Vec<String> = [
        "-u",
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        bind,
        "--directory",
        &site,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let info = processes
        .spawn("python3", &args, SpawnOptions::new().cwd(site.clone()))
        .await?;
    *server.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.id.clone());
    println!("started `{}` as process {}", info.command, info.id);

    // 2. The preview link, polled until the server answers through it.
    let link = sandbox.daytona()?.get_preview_link(port).await?;
    println!("preview URL: {}", link.url);
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    wait_until_up(&http, &link, sandbox, &info.id).await?;

    // 3. The page, through the preview URL with its token.
    let (name, value) = link.auth_header();
    let response = http.get(&link.url).header(name, value).send().await?;
    let status = response.status();
    let body = response.text().await?;
    println!("GET {} → {status}", link.url);
    for line in body.lines() {
        println!("  | {line}");
    }
    if !status.is_success() || !body.contains(&marker) {
        return Err(format!("expected the page ({marker:?}), got {status}: {body}").into());
    }

    // And through a signed URL: the token is in the URL, no header needed.
    let signed = sandbox
        .daytona()?
        .get_signed_preview_url(port, Some(SIGNED_URL_LIFETIME))
        .await?;
    let response = http.get(&signed.url).send().await?;
    let status = response.status();
    let body = response.text().await?;
    // The signed URL grants access by itself, so it is not printed.
    println!(
        "GET <signed preview URL, valid {}s> → {status}",
        SIGNED_URL_LIFETIME.as_secs()
    );
    if !status.is_success() || !body.contains(&marker) {
        return Err(format!("the signed preview URL answered {status}: {body}").into());
    }
    println!("  the same page, without a token header");
    Ok(())
}

/// Poll the preview URL until the server answers. Any status counts as the server's answer,
/// except the gateway errors a preview proxy gives while nothing listens on the port yet.
async fn wait_until_up(
    http: &reqwest::Client,
    link: &PreviewLink,
    sandbox: &DaytonaSandbox,
    server: &ProcessId,
) -> Result<(), BoxError> {
    let processes = sandbox
        .processes()
        .ok_or("the sandbox has no process API")?;
    let (name, value) = link.auth_header();
    let mut last = String::from("no answer yet");
    for attempt in 1..=READY_ATTEMPTS {
        match http.get(&link.url).header(name, value).send().await {
            Ok(r) if !is_gateway_error(r.status()) => {
                println!(
                    "server is up after {attempt} attempt(s) (HTTP {})",
                    r.status()
                );
                return Ok(());
            }
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        // A server that died (port taken, no python3) will never come up: say why now.
        let output = processes.output(server, OutputOffsets::default()).await?;
        if let ProcessState::Exited(code) = output.state {
            return Err(format!(
                "the server exited with code {code} before answering:\n{}{}",
                output.stdout_text(),
                output.stderr_text()
            )
            .into());
        }
        tokio::time::sleep(READY_INTERVAL).await;
    }
    let output = processes.output(server, OutputOffsets::default()).await?;
    Err(format!(
        "the server did not answer through {} after {READY_ATTEMPTS} attempts {:?} apart \
         (last: {last}); its output so far:\n{}{}",
        link.url,
        READY_INTERVAL,
        output.stdout_text(),
        output.stderr_text()
    )
    .into())
}

fn is_gateway_error(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Where the server listens. Daytona's proxy reaches the sandbox over its network interface,
/// so all interfaces there; the emulator's sandbox processes share this machine's network, so
/// loopback only, to keep the server off the LAN.
fn bind_address(emulated: bool) -> &'static str {
    if emulated { "127.0.0.1" } else { "0.0.0.0" }
}

/// A port nothing on this machine listens on right now (the emulator's sandbox processes share
/// its ports, so a fixed one could be taken).
fn free_local_port() -> Result<u16, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The sandbox's working directory, as its shell sees it.
async fn work_dir(sandbox: &DaytonaSandbox) -> Result<String, BoxError> {
    let result = sandbox
        .execute_command(
            "pwd",
            &[],
            ExecuteCommandOptions::new().timeout(Duration::from_secs(30)),
        )
        .await?;
    let dir = result.stdout.trim();
    if !result.success || !dir.starts_with('/') {
        return Err(format!(
            "`pwd` failed (exit {}): {}{}",
            result.exit_code, result.stdout, result.stderr
        )
        .into());
    }
    Ok(dir.to_string())
}

fn state_text(state: ProcessState) -> String {
    match state {
        ProcessState::Running => "still running".into(),
        ProcessState::Exited(code) => format!("exit code {code}"),
    }
}
