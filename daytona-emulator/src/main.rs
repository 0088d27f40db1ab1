//! `daytona-emulator`: run the emulator as a process (for the TypeScript SDK or manual use).
//! Prints the base URL as the first stdout line once connections are accepted; logs go to
//! stderr (`RUST_LOG` filters them, default `info`). Stops on SIGINT or SIGTERM, killing every
//! sandbox process.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use daytona_emulator::Emulator;
use daytona_emulator::layout::Isolation;

const ISOLATION_WARNING: &str = "\
WARNING: emulated sandboxes are NOT isolated from the host. Commands run as real local
processes with your user's rights (confined to the sandbox directories with bubblewrap when it
is available, which is path confinement, not security isolation). Never point untrusted code
or untrusted clients at it.";

const AFTER_HELP: &str = "\
Every option can also be set with its DAYTONA_EMULATOR_* environment variable; a flag on the
command line wins over the variable.

The first line on stdout is the base URL, e.g. http://127.0.0.1:41234 (SDK apiUrl = <base>/api).
Test control API: <base>/_emulator/ (request log, fault rules, sandbox inspection).";

/// A local Daytona-compatible API and toolbox server for tests.
#[derive(Debug, Parser)]
#[command(
    name = "daytona-emulator",
    version,
    before_help = ISOLATION_WARNING,
    after_help = AFTER_HELP
)]
struct Args {
    /// Address to listen on, host:port (port 0 = any free port).
    #[arg(
        long,
        env = "DAYTONA_EMULATOR_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:0"
    )]
    listen: String,

    /// Require 'Authorization: Bearer <KEY>' on /api and /toolbox [default: no auth].
    #[arg(
        long,
        env = "DAYTONA_EMULATOR_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,

    /// Keep sandbox directories under DIR/sandboxes/<id> [default: a temporary directory
    /// removed on exit].
    #[arg(long, env = "DAYTONA_EMULATOR_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Real milliseconds per emulated minute for auto-stop, auto-archive, auto-delete and TTL
    /// intervals [default: 60000].
    #[arg(long, env = "DAYTONA_EMULATOR_MINUTE_MS", value_name = "MS")]
    minute_ms: Option<u64>,

    /// How long lifecycle transitions take, in milliseconds [default: 0].
    #[arg(long, env = "DAYTONA_EMULATOR_TRANSITION_DELAY_MS", value_name = "MS")]
    transition_delay_ms: Option<u64>,

    /// How long each step of an emulated image build takes, in milliseconds (images are never
    /// pulled or built for real) [default: 200].
    #[arg(long, env = "DAYTONA_EMULATOR_BUILD_STEP_MS", value_name = "MS")]
    build_step_ms: Option<u64>,

    /// How sandbox commands are confined: 'bwrap' (a bubblewrap mount namespace; sandbox paths
    /// are /home/daytona, /tmp, /workspace), 'host' (plain processes; sandbox paths are host
    /// paths) or 'auto' (bwrap when it works here).
    #[arg(
        long,
        env = "DAYTONA_EMULATOR_ISOLATION",
        value_enum,
        value_name = "MODE",
        default_value = "auto"
    )]
    isolation: IsolationArg,

    /// The origin clients reach the emulator by (behind a proxy or port forward): every URL it
    /// hands out (toolbox proxy URL, preview and signed links, build logs) is built on it, and
    /// it is the printed base URL [default: the listen address].
    #[arg(long, env = "DAYTONA_EMULATOR_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,

    /// Serve HTTPS/WSS with this PEM certificate chain (leaf first).
    #[arg(
        long,
        env = "DAYTONA_EMULATOR_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM).
    #[arg(
        long,
        env = "DAYTONA_EMULATOR_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Serve HTTPS/WSS with a certificate generated at start, issued by a generated CA.
    #[arg(long, env = "DAYTONA_EMULATOR_TLS_SELF_SIGNED")]
    tls_self_signed: bool,

    /// With --tls-self-signed: write the generated CA (PEM) there, for clients to trust.
    #[arg(
        long,
        env = "DAYTONA_EMULATOR_TLS_CA_OUT",
        value_name = "PATH",
        requires = "tls_self_signed"
    )]
    tls_ca_out: Option<PathBuf>,
}

/// `--isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum IsolationArg {
    /// Probe: bubblewrap when a trial run works, else host.
    Auto,
    /// Plain host processes.
    Host,
    /// A bubblewrap mount namespace.
    #[value(alias = "bubblewrap")]
    Bwrap,
}

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message; `--help` and `--version` exit 0.
    let args = Args::parse();
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
    // An empty variable (`DAYTONA_EMULATOR_API_KEY=`) means no key, as it always has; the
    // builder refuses an empty key given on purpose.
    if let Some(key) = args.api_key.filter(|k| !k.is_empty()) {
        builder = builder.api_key(key);
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
    match args.isolation {
        IsolationArg::Auto => {}
        IsolationArg::Host => builder = builder.isolation(Isolation::Host),
        IsolationArg::Bwrap => builder = builder.isolation(Isolation::Bubblewrap),
    }
    if let Some(url) = args.public_url.filter(|u| !u.is_empty()) {
        builder = builder.public_url(url);
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        builder = builder.tls_files(cert, key);
    } else if args.tls_self_signed {
        builder = builder.tls_self_signed();
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
        eprintln!(
            "daytona-emulator: cannot write the CA to {}: {e}",
            path.display()
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }
}
