//! Shutting down — explicitly or by dropping the handle, even together with the runtime —
//! leaves no sandbox process behind and removes the temporary data directory.

#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::Duration;

use api_support::{API_KEY, pid_alive};
use daytona_emulator::{Emulator, EmulatorHandle};
use serde_json::{Value, json};

/// Creates a sandbox running `sleep 300` in a session; returns its pid and the data dir.
async fn sandbox_with_process(emu: &EmulatorHandle) -> (i32, std::path::PathBuf) {
    let http = reqwest::Client::new();
    let sb: Value = http
        .post(format!("{}/sandbox", emu.api_url()))
        .bearer_auth(API_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sb["id"].as_str().unwrap();
    let layout = emu.state().layout(id).unwrap();
    let pid_file = layout.tmp_host().join("pid");
    let pid_path = layout.to_sandbox(&pid_file).unwrap();
    let toolbox = format!("{}/toolbox/{id}", emu.base_url());
    let resp = http
        .post(format!("{toolbox}/process/session"))
        .bearer_auth(API_KEY)
        .json(&json!({"sessionId": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = http
        .post(format!("{toolbox}/process/session/s/exec"))
        .bearer_auth(API_KEY)
        .json(&json!({"command": format!("echo $$ > '{pid_path}'; exec sleep 300"), "runAsync": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for _ in 0..500 {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            assert!(pid_alive(pid));
            return (
                pid,
                layout
                    .root()
                    .parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .to_path_buf(),
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no pid");
}

async fn wait_dead(pid: i32) {
    for _ in 0..500 {
        if !pid_alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("process {pid} survived the emulator");
}

#[tokio::test]
async fn shutdown_kills_processes_and_removes_its_temp_dir() {
    let emu = Emulator::builder().api_key(API_KEY).start().await.unwrap();
    let (pid, data_dir) = sandbox_with_process(&emu).await;
    assert!(data_dir.exists());
    let addr = emu.local_addr();
    emu.shutdown().await;
    assert!(!pid_alive(pid));
    assert!(!data_dir.exists(), "the temp data dir is removed");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_given_data_dir_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::builder()
        .api_key(API_KEY)
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let (pid, data_dir) = sandbox_with_process(&emu).await;
    assert_eq!(data_dir, dir.path().canonicalize().unwrap());
    emu.shutdown().await;
    assert!(!pid_alive(pid));
    assert!(dir.path().join("sandboxes").is_dir());
}

#[tokio::test]
async fn dropping_the_handle_kills_processes() {
    let emu = Emulator::builder().api_key(API_KEY).start().await.unwrap();
    let (pid, _) = sandbox_with_process(&emu).await;
    drop(emu);
    wait_dead(pid).await;
}

#[test]
fn dropping_the_handle_and_the_runtime_together_kills_processes() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid = runtime.block_on(async {
        let emu = Emulator::builder().api_key(API_KEY).start().await.unwrap();
        let (pid, _) = sandbox_with_process(&emu).await;
        // Dropped at the end of this block, with the runtime going away right after.
        let _keep = emu;
        pid
    });
    drop(runtime);
    for _ in 0..500 {
        if !pid_alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("process {pid} survived the emulator and its runtime");
}

#[tokio::test]
async fn binds_by_host_name_and_refuses_bad_addresses() {
    let emu = Emulator::builder()
        .bind("localhost:0")
        .start()
        .await
        .unwrap();
    assert!(emu.local_addr().ip().is_loopback());
    let resp = reqwest::get(format!("{}/sandbox", emu.api_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    emu.shutdown().await;
    for bad in ["nonsense", "127.0.0.1", "256.1.1.1:80"] {
        let err = Emulator::builder().bind(bad).start().await.unwrap_err();
        assert!(
            err.to_string().contains("invalid listen address"),
            "{bad}: {err}"
        );
    }
}
