//! `daytona-emulator`: run the emulator as a process (for the TypeScript SDK or manual use).
//! Prints the base URL as the first stdout line once connections are accepted; logs go to
//! stderr (`RUST_LOG` filters them, default `info`). Stops on SIGINT or SIGTERM, killing every
//! sandbox process.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use daytona_emulator::Emulator;

const USAGE: &str = "\
daytona-emulator: a local Daytona-compatible API and toolbox server for tests.

WARNING: emulated sandboxes are NOT isolated from the host. Commands run as real local
processes with your user's rights (confined to the sandbox directories with bubblewrap when it
is available, which is path confinement, not security isolation). Never point untrusted code
or untrusted clients at it.

USAGE:
    daytona-emulator [OPTIONS]

OPTIONS:
    --listen <ADDR>          Address to listen on, host:port (port 0 = any free port)
                             [default: 127.0.0.1:0]
    --api-key <KEY>          Require 'Authorization: Bearer <KEY>' on /api and /toolbox
                             (also read from DAYTONA_EMULATOR_API_KEY)
    --public-url <URL>       The origin clients reach the emulator by (behind a proxy or port
                             forward), e.g. http://10.0.0.5:8080: every URL handed out
                             (toolbox, previews) uses it and it is printed as the base URL
                             (also read from DAYTONA_EMULATOR_PUBLIC_URL) [default: the
                             listen address]
    --tls-cert <PEM>         Serve HTTPS/WSS with this certificate chain (leaf first); needs
                             --tls-key (also DAYTONA_EMULATOR_TLS_CERT)
    --tls-key <PEM>          The certificate's private key (also DAYTONA_EMULATOR_TLS_KEY)
    --tls-self-signed        Serve HTTPS/WSS with a certificate generated at start, issued by
                             a generated CA (also DAYTONA_EMULATOR_TLS_SELF_SIGNED=1)
    --tls-ca-out <PATH>      With --tls-self-signed: write the CA (PEM) there, for clients to
                             trust (NODE_EXTRA_CA_CERTS, DAYTONA_EXTRA_CA_CERTS)
    --data-dir <DIR>         Keep sandbox directories under DIR/sandboxes/<id>
                             [default: a temporary directory removed on exit]
    --minute-ms <MS>         Real milliseconds per emulated minute for auto-stop, auto-archive,
                             auto-delete and TTL intervals [default: 60000]
    --transition-delay-ms <MS>
                             How long lifecycle transitions take [default: 0]
    --build-step-ms <MS>     How long each step of an emulated image build takes (images are
                             never pulled or built for real) [default: 200]
    -h, --help               Print this help

The first line on stdout is the base URL, e.g. http://127.0.0.1:41234 (SDK apiUrl = <base>/api).
Test control API: <base>/_emulator/ (request log, fault rules, sandbox inspection).";

struct Args {
    listen: String,
    api_key: Option<String>,
    public_url: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    tls_self_signed: bool,
    tls_ca_out: Option<String>,
    data_dir: Option<String>,
    minute_ms: Option<u64>,
    transition_delay_ms: Option<u64>,
    build_step_ms: Option<u64>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: "127.0.0.1:0".to_string(),
        api_key: std::env::var("DAYTONA_EMULATOR_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        public_url: std::env::var("DAYTONA_EMULATOR_PUBLIC_URL")
            .ok()
            .filter(|u| !u.is_empty()),
        tls_cert: env_var("DAYTONA_EMULATOR_TLS_CERT"),
        tls_key: env_var("DAYTONA_EMULATOR_TLS_KEY"),
        tls_self_signed: env_var("DAYTONA_EMULATOR_TLS_SELF_SIGNED")
            .is_some_and(|v| !matches!(v.as_str(), "0" | "false" | "no")),
        tls_ca_out: None,
        data_dir: None,
        minute_ms: None,
        transition_delay_ms: None,
        build_step_ms: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("{name} must be a whole number of milliseconds, got {v:?}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => args.listen = value("--listen")?,
            "--api-key" => args.api_key = Some(value("--api-key")?),
            "--public-url" => args.public_url = Some(value("--public-url")?),
            "--tls-cert" => args.tls_cert = Some(value("--tls-cert")?),
            "--tls-key" => args.tls_key = Some(value("--tls-key")?),
            "--tls-self-signed" => args.tls_self_signed = true,
            "--tls-ca-out" => args.tls_ca_out = Some(value("--tls-ca-out")?),
            "--data-dir" => args.data_dir = Some(value("--data-dir")?),
            "--minute-ms" => {
                args.minute_ms = Some(number("--minute-ms", value("--minute-ms")?)?);
            }
            "--transition-delay-ms" => {
                let v = value("--transition-delay-ms")?;
                args.transition_delay_ms = Some(number("--transition-delay-ms", v)?);
            }
            "--build-step-ms" => {
                let v = value("--build-step-ms")?;
                args.build_step_ms = Some(number("--build-step-ms", v)?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (&args.tls_cert, &args.tls_key) {
        (Some(_), None) => return Err("--tls-cert needs --tls-key".to_string()),
        (None, Some(_)) => return Err("--tls-key needs --tls-cert".to_string()),
        (Some(_), Some(_)) if args.tls_self_signed => {
            return Err("--tls-self-signed and --tls-cert exclude each other".to_string());
        }
        _ => {}
    }
    if args.tls_ca_out.is_some() && !args.tls_self_signed {
        return Err("--tls-ca-out needs --tls-self-signed".to_string());
    }
    Ok(Some(args))
}

/// A non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("daytona-emulator: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("daytona-emulator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut builder = Emulator::builder().bind(args.listen);
    if let Some(key) = args.api_key {
        builder = builder.api_key(key);
    }
    if let Some(url) = args.public_url {
        builder = builder.public_url(url);
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        builder = builder.tls_files(cert, key);
    } else if args.tls_self_signed {
        builder = builder.tls_self_signed();
    }
    if let Some(dir) = args.data_dir {
        builder = builder.data_dir(dir);
    }
    if let Some(ms) = args.minute_ms {
        builder = builder.auto_stop_unit(Duration::from_millis(ms));
    }
    if let Some(ms) = args.build_step_ms {
        builder = builder.build_step_delay(Duration::from_millis(ms));
    }
    if let Some(ms) = args.transition_delay_ms {
        builder = builder.transition_delay(Duration::from_millis(ms));
    }
    let handle = match builder.start().await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("daytona-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(path), Some(ca)) = (&args.tls_ca_out, handle.tls_ca_pem())
        && let Err(e) = std::fs::write(path, ca)
    {
        eprintln!("daytona-emulator: cannot write the CA to {path}: {e}");
        handle.shutdown().await;
        return ExitCode::FAILURE;
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", handle.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Whoever started us is gone; nobody can use the emulator.
        handle.shutdown().await;
        return ExitCode::FAILURE;
    }
    drop(stdout);
    wait_for_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the emulator");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
