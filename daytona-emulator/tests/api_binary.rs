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
async fn help_warns_about_isolation() {
    let out = Command::new(BIN).arg("--help").output().await.unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("NOT isolated from the host"), "{text}");
    assert!(text.contains("--listen") && text.contains("--api-key") && text.contains("--data-dir"));
}

#[tokio::test]
async fn bad_arguments_fail_with_a_message() {
    let out = Command::new(BIN).arg("--bogus").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument \"--bogus\""));

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
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen needs a value"));
}
