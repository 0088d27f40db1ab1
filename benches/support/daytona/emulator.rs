//! The emulator, in a process of its own: this bench executable started in the `emulator` role
//! serves `daytona_emulator` (the same server as the `daytona-emulator` binary) until its stdin
//! closes, so it also goes away when the bench dies.
//!
//! How it confines sandbox commands is chosen per run ([`Isolation`]): with bubblewrap, every
//! command pays a fresh set of namespaces and mounts on the server (several milliseconds, the
//! same for every client), which Daytona's daemon, running commands inside an already isolated
//! container, does not.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::child::ROLE_VAR;
use super::{API_KEY, Result};

/// The public URL the `emulator` role hands out, when set.
const PUBLIC_URL_VAR: &str = "DAYTONA_EMULATOR_PUBLIC_URL";

/// How long a clean shutdown (which kills every sandbox process) may take.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// How the emulator runs sandbox commands (`DAYTONA_EMULATOR_ISOLATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Plain host processes: a command costs the server what a daemon's fork and exec cost.
    Host,
    /// Each command in a fresh bubblewrap namespace set.
    Bubblewrap,
}

impl Isolation {
    fn env_value(self) -> &'static str {
        match self {
            Isolation::Host => "host",
            Isolation::Bubblewrap => "bwrap",
        }
    }

    /// Whether bubblewrap can make a namespace here (it cannot in some containers).
    pub async fn bubblewrap_works() -> bool {
        tokio::process::Command::new("bwrap")
            .args([
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "true",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }
}

/// A running emulator process.
pub struct EmulatorProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Kept open so the child never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    base_url: String,
}

impl EmulatorProcess {
    /// Starts one and waits for its base URL.
    pub async fn spawn(isolation: Isolation) -> Result<Self> {
        Self::spawn_with(isolation, None).await
    }

    /// Starts one whose URLs name `public_url` (a proxy in front of it); its
    /// [`base_url`](Self::base_url) stays its own listen address.
    pub async fn spawn_behind(isolation: Isolation, public_url: &str) -> Result<Self> {
        Self::spawn_with(isolation, Some(public_url)).await
    }

    async fn spawn_with(isolation: Isolation, public_url: Option<&str>) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let mut command = tokio::process::Command::new(exe);
        if let Some(url) = public_url {
            command.env(PUBLIC_URL_VAR, url);
        }
        let mut child = command
            .env(ROLE_VAR, "emulator")
            .env("DAYTONA_EMULATOR_ISOLATION", isolation.env_value())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or("the emulator child has no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut first))
            .await
            .map_err(|_| "the emulator did not print its URL within 30 s")??;
        let base_url = first.trim().to_string();
        if !base_url.starts_with("http://") {
            return Err(format!("the emulator printed {first:?} instead of its URL").into());
        }
        Ok(EmulatorProcess {
            child,
            stdin,
            _stdout: stdout,
            base_url,
        })
    }

    /// `<base>/api`, what clients are configured with.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url)
    }

    /// `<base>`, for the `/_emulator` control routes.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The emulator process id, for reading its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Closes its stdin (it then shuts down, killing every sandbox process) and waits.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        match tokio::time::timeout(STOP_WAIT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    return Err(format!("the emulator exited with {status}").into());
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                Err(format!("the emulator did not stop within {STOP_WAIT:?}").into())
            }
        }
    }
}

/// The `emulator` role: serve until stdin closes.
pub fn serve() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench emulator: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut builder = daytona_emulator::Emulator::builder().api_key(API_KEY);
        if let Some(url) = std::env::var(PUBLIC_URL_VAR).ok().filter(|u| !u.is_empty()) {
            builder = builder.public_url(url);
        }
        let handle = match builder.start().await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("bench emulator: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Its own address: with a public URL, the parent points the proxy here.
        println!("{}", handle.listen_url());
        // Wait for the parent to close our stdin (or to die).
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// A delay before every toolbox request of an emulator (its WebSocket upgrades included): a
/// daemon that far away. Installed through the emulator's fault API; `remove` takes it off.
pub struct ToolboxDelay {
    http: reqwest::Client,
    url: String,
}

impl ToolboxDelay {
    /// Delay every `/toolbox/**` request of the emulator at `base_url` by `delay`.
    pub async fn install(base_url: &str, delay: Duration) -> Result<Self> {
        let http = reqwest::Client::new();
        let rule = daytona_emulator::FaultRule::delay("/toolbox/**", delay);
        let answer: serde_json::Value = http
            .post(format!("{base_url}/_emulator/faults"))
            .json(&rule)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = answer
            .get("id")
            .and_then(serde_json::Value::as_u64)
            .ok_or("the fault API answered without an id")?;
        Ok(ToolboxDelay {
            http,
            url: format!("{base_url}/_emulator/faults/{id}"),
        })
    }

    /// Take the delay off.
    pub async fn remove(self) -> Result<()> {
        self.http
            .delete(&self.url)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}
