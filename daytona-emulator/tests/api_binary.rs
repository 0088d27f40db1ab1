//! The `daytona-emulator` binary: URL on the first stdout line, help text, argument errors,
//! clean shutdown on SIGTERM (sandbox processes killed).

#![allow(clippy::unwrap_used)]

mod api_support;

use std::process::Stdio;
use std::time::Duration;

use api_support::pid_alive;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_daytona-emulator");

#[tokio::test]
async fn prints_the_url_first_serves_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "bin-key",
            "--data-dir",
        ])
        .arg(data.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("URL printed promptly")
        .unwrap()
        .expect("a first line");
    let port = first
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("first line is not the base URL: {first:?}"));
    assert!(port > 0);

    // It accepts connections right away.
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{first}/api/sandbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let sb: Value = http
        .post(format!("{first}/api/sandbox"))
        .bearer_auth("bin-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sb["id"].as_str().unwrap();
    assert_eq!(sb["toolboxProxyUrl"], format!("{first}/toolbox"));
    assert!(data.path().join("sandboxes").join(id).is_dir());

    // Start a long-lived process in the sandbox and learn its pid.
    let toolbox = format!("{first}/toolbox/{id}");
    let resp = http
        .post(format!("{toolbox}/process/session"))
        .bearer_auth("bin-key")
        .json(&json!({"sessionId": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = http
        .post(format!("{toolbox}/process/session/s/exec"))
        .bearer_auth("bin-key")
        .header("X-Daytona-SDK-Version", "0.218.0")
        .json(&json!({"command": "sleep 300 & echo $!; wait", "runAsync": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let cmd_id = resp.json::<Value>().await.unwrap()["cmdId"]
        .as_str()
        .unwrap()
        .to_string();
    let pid = wait_for_output_pid(&http, &toolbox, &cmd_id).await;
    assert!(pid_alive(pid));

    let pid_of_child = i32::try_from(child.id().unwrap()).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid_of_child),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!pid_alive(pid), "shutdown kills sandbox processes");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("listening"), "logs go to stderr: {stderr}");
    assert!(!stderr.contains("bin-key"), "the key is never logged");
}

async fn wait_for_output_pid(http: &reqwest::Client, toolbox: &str, cmd_id: &str) -> i32 {
    for _ in 0..500 {
        let logs: Value = http
            .get(format!("{toolbox}/process/session/s/command/{cmd_id}/logs"))
            .bearer_auth("bin-key")
            .header("X-Daytona-SDK-Version", "0.218.0")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(pid) = logs["stdout"].as_str().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the command never printed its pid");
}

#[tokio::test]
async fn help_warns_about_isolation_and_names_every_variable() {
    for flag in ["--help", "-h"] {
        let out = Command::new(BIN).arg(flag).output().await.unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("NOT isolated from the host"), "{text}");
        for (option, variable) in [
            ("--listen", "DAYTONA_EMULATOR_LISTEN"),
            ("--api-key", "DAYTONA_EMULATOR_API_KEY"),
            ("--data-dir", "DAYTONA_EMULATOR_DATA_DIR"),
            ("--minute-ms", "DAYTONA_EMULATOR_MINUTE_MS"),
            (
                "--transition-delay-ms",
                "DAYTONA_EMULATOR_TRANSITION_DELAY_MS",
            ),
            ("--build-step-ms", "DAYTONA_EMULATOR_BUILD_STEP_MS"),
            ("--isolation", "DAYTONA_EMULATOR_ISOLATION"),
        ] {
            assert!(text.contains(option), "{flag}: {option} missing: {text}");
            assert!(
                text.contains(variable),
                "{flag}: {variable} missing: {text}"
            );
        }
    }
    // A key in the environment is never shown.
    let out = Command::new(BIN)
        .arg("--help")
        .env("DAYTONA_EMULATOR_API_KEY", "s3cret-key")
        .output()
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret-key"));
    let out = Command::new(BIN).arg("--version").output().await.unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn bad_arguments_fail_with_a_message() {
    let out = Command::new(BIN).arg("--bogus").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));

    let out = Command::new(BIN)
        .args(["--listen", "not-an-address"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid listen address"));
    assert!(out.stdout.is_empty(), "no URL line when it cannot start");

    let out = Command::new(BIN).arg("--listen").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a value is required for '--listen <ADDR>'")
    );

    let out = Command::new(BIN)
        .args(["--minute-ms", "soon"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid value 'soon' for '--minute-ms <MS>'")
    );

    let out = Command::new(BIN)
        .args(["--isolation", "sideways"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'sideways' for '--isolation <MODE>'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[possible values: auto, host, bwrap]"),
        "{stderr}"
    );
}

/// Starts the binary with `args` and `env`; the base URL it prints and the child.
async fn spawn(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (String, tokio::process::Child) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("URL printed promptly")
    .unwrap()
    .expect("a first line");
    (first, child)
}

/// The home dir a new sandbox of the emulator at `base` reports.
async fn sandbox_home(base: &str) -> String {
    let http = reqwest::Client::new();
    let sb: Value = http
        .post(format!("{base}/api/sandbox"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sb["id"].as_str().unwrap();
    let home: Value = http
        .get(format!("{base}/toolbox/{id}/user-home-dir"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    home["dir"].as_str().unwrap().to_string()
}

/// `--isolation host` (or its variable) runs sandbox commands as host processes, whose sandbox
/// paths are the host paths under the data dir.
#[tokio::test]
async fn isolation_comes_from_the_flag_or_its_variable() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().as_os_str();
    // The variable alone; then the flag, which wins over a variable refused on its own.
    for (args, variable) in [
        (&[][..], "host"),
        (&["--isolation", "host"][..], "sideways"),
    ] {
        let (base, mut child) = spawn(
            args,
            &[
                ("DAYTONA_EMULATOR_ISOLATION", variable.as_ref()),
                ("DAYTONA_EMULATOR_DATA_DIR", data_dir),
            ],
        )
        .await;
        let home = sandbox_home(&base).await;
        assert!(
            std::path::Path::new(&home).starts_with(data.path()),
            "{args:?} {variable}: host mode's home dir is a host path under the data dir, got {home}"
        );
        child.kill().await.unwrap();
    }
}

/// Each flag is read from its `DAYTONA_EMULATOR_*` variable; the command line wins.
#[tokio::test]
async fn variables_set_the_flags_and_the_command_line_wins() {
    let out = Command::new(BIN)
        .env("DAYTONA_EMULATOR_LISTEN", "not-an-address")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid listen address"));
    let out = Command::new(BIN)
        .env("DAYTONA_EMULATOR_BUILD_STEP_MS", "soon")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid value 'soon' for '--build-step-ms <MS>'")
    );

    let data = tempfile::tempdir().unwrap();
    let (first, mut child) = spawn(
        &["--listen", "127.0.0.1:0"],
        &[
            ("DAYTONA_EMULATOR_LISTEN", "not-an-address".as_ref()),
            ("DAYTONA_EMULATOR_API_KEY", "env-key".as_ref()),
            ("DAYTONA_EMULATOR_DATA_DIR", data.path().as_os_str()),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let anonymous = http
        .get(format!("{first}/api/sandbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "the key came from the environment");
    let sb: Value = http
        .post(format!("{first}/api/sandbox"))
        .bearer_auth("env-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sb["id"].as_str().unwrap();
    assert!(
        data.path().join("sandboxes").join(id).is_dir(),
        "the data dir came from the environment"
    );
    child.kill().await.unwrap();

    // An empty key variable means no key, as before.
    let (first, mut child) = spawn(&[], &[("DAYTONA_EMULATOR_API_KEY", "".as_ref())]).await;
    let open = http
        .get(format!("{first}/api/sandbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    child.kill().await.unwrap();
}
