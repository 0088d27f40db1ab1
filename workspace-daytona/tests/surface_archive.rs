//! Archive and recover against the emulator with slow transitions: both wait for their target
//! state, within a timeout.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use daytona_emulator::Emulator;
use workspace_daytona::api::sandbox::SandboxState;
use workspace_daytona::{CreateSandboxParams, DaytonaClient, DaytonaError, ExecuteOptions};

async fn slow_emulator(delay: Duration) -> (daytona_emulator::EmulatorHandle, DaytonaClient) {
    let emu = Emulator::builder()
        .api_key(API_KEY)
        .transition_delay(delay)
        .start()
        .await
        .unwrap();
    let client = client(&emu);
    (emu, client)
}

#[tokio::test]
async fn archive_waits_for_archived_and_start_brings_files_back() {
    let (_emu, client) = slow_emulator(Duration::from_millis(300)).await;
    let mut sandbox = client.create(CreateSandboxParams::new(), T).await.unwrap();
    let home = sandbox.user_home_dir().await.unwrap();
    sandbox
        .fs()
        .upload_bytes(b"kept".to_vec(), &format!("{home}/kept.txt"))
        .await
        .unwrap();

    // Only a stopped sandbox can be archived.
    let err = sandbox.archive(T).await.unwrap_err();
    assert!(
        matches!(err, DaytonaError::BadRequest(_) | DaytonaError::Conflict(_)),
        "{err:?}"
    );

    sandbox.stop(T).await.unwrap();
    sandbox.archive(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Archived));

    sandbox.start(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    let out = sandbox
        .process()
        .execute(&format!("cat {home}/kept.txt"), &ExecuteOptions::new())
        .await
        .unwrap();
    assert_eq!(out.result, "kept");
}

#[tokio::test]
async fn recover_waits_for_started_and_refuses_the_unrecoverable() {
    let (emu, client) = slow_emulator(Duration::from_millis(300)).await;
    let mut sandbox = client.create(CreateSandboxParams::new(), T).await.unwrap();

    emu.fail_sandbox(sandbox.id(), "the disk filled up", true)
        .await
        .unwrap();
    sandbox.refresh().await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Error));
    assert_eq!(
        sandbox.data().error_reason.as_deref(),
        Some("the disk filled up")
    );
    sandbox.recover(T).await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    let out = sandbox
        .process()
        .execute("echo alive", &ExecuteOptions::new())
        .await
        .unwrap();
    assert_eq!(out.result.trim(), "alive");

    emu.fail_sandbox(sandbox.id(), "the host burned down", false)
        .await
        .unwrap();
    let err = sandbox.recover(T).await.unwrap_err();
    assert!(matches!(err, DaytonaError::BadRequest(_)), "{err:?}");
    assert!(err.to_string().contains("not recoverable"), "{err}");
}

#[tokio::test]
async fn archive_and_recover_time_out_while_the_transition_runs() {
    let (emu, client) = slow_emulator(Duration::from_secs(3)).await;
    let mut sandbox = client
        .create(CreateSandboxParams::new(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    sandbox.stop(Some(Duration::from_secs(60))).await.unwrap();
    let err = sandbox
        .archive(Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DaytonaError::WaitTimeout {
                target: "archived",
                ..
            }
        ),
        "{err:?}"
    );
    // The archive goes on without the client; waiting again sees it finish.
    tokio::time::sleep(Duration::from_secs(4)).await;
    sandbox.refresh().await.unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Archived));

    let mut other = client
        .create(CreateSandboxParams::new(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    emu.fail_sandbox(other.id(), "transient", true)
        .await
        .unwrap();
    let err = other
        .recover(Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DaytonaError::WaitTimeout {
                target: "started",
                ..
            }
        ),
        "{err:?}"
    );
}
