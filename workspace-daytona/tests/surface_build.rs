//! Sandboxes built from an image: the build log reaches the callback line by line while the
//! sandbox is built, and a failed build is a typed `build_failed` error with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use daytona_emulator::Emulator;
use workspace_daytona::api::sandbox::SandboxState;
use workspace_daytona::{CreateSandboxParams, DaytonaClient, DaytonaError, ExecuteOptions};

async fn building_emulator() -> (daytona_emulator::EmulatorHandle, DaytonaClient) {
    let emu = Emulator::builder()
        .api_key(API_KEY)
        .build_step_delay(Duration::from_millis(150))
        .start()
        .await
        .unwrap();
    let client = client(&emu);
    (emu, client)
}

#[tokio::test]
async fn image_build_log_reaches_the_callback() {
    let (emu, client) = building_emulator().await;
    let mut lines: Vec<String> = Vec::new();
    let sandbox = client
        .create_with_build_logs(
            CreateSandboxParams::new().image("python:3.12-slim"),
            T,
            |line| lines.push(line.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    assert!(
        lines.iter().any(|l| l.contains("FROM python:3.12-slim")),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains('\n')), "{lines:#?}");
    // The log came from the URL the API handed out, followed live.
    assert_eq!(hits(&emu, "GET", "/build-logs-url").len(), 1);
    let out = sandbox
        .process()
        .execute("echo built", &ExecuteOptions::new())
        .await
        .unwrap();
    assert_eq!(out.result.trim(), "built");

    // Without a callback a build is simply waited for.
    let mut quiet = client
        .create(CreateSandboxParams::new().image("alpine:3.20"), T)
        .await
        .unwrap();
    assert_eq!(quiet.state(), Some(&SandboxState::Started));
    assert_eq!(hits(&emu, "GET", "/build-logs-url").len(), 1);
    // A finished build's log can still be read whole afterwards.
    let mut later = Vec::new();
    quiet
        .follow_build_logs(T, |line| later.push(line.to_string()))
        .await
        .unwrap();
    assert!(
        later.iter().any(|l| l.contains("FROM alpine:3.20")),
        "{later:#?}"
    );
    assert_eq!(quiet.state(), Some(&SandboxState::Started));
}

#[tokio::test]
async fn dockerfile_build_applies_env_and_logs_every_step() {
    let (emu, client) = building_emulator().await;
    let mut lines: Vec<String> = Vec::new();
    let sandbox = client
        .create_from_dockerfile(
            CreateSandboxParams::new(),
            "FROM python:3.12-slim\nENV BUILT_WITH=dockerfile\nRUN pip install nothing\n",
            T,
            |line| lines.push(line.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(sandbox.state(), Some(&SandboxState::Started));
    for step in [
        "FROM python:3.12-slim",
        "ENV BUILT_WITH=dockerfile",
        "RUN pip install",
    ] {
        assert!(lines.iter().any(|l| l.contains(step)), "{step}: {lines:#?}");
    }
    let body = hits(&emu, "POST", "/api/sandbox")
        .pop()
        .unwrap()
        .body
        .unwrap();
    assert!(
        body["buildInfo"]["dockerfileContent"]
            .as_str()
            .unwrap()
            .starts_with("FROM python:3.12-slim\n")
    );
    let out = sandbox
        .process()
        .execute("echo $BUILT_WITH", &ExecuteOptions::new())
        .await
        .unwrap();
    assert_eq!(out.result.trim(), "dockerfile");
}

#[tokio::test]
async fn a_failed_build_is_build_failed_with_its_reason() {
    let (emu, client) = building_emulator().await;
    let mut lines: Vec<String> = Vec::new();
    let err = client
        .create_from_dockerfile(
            CreateSandboxParams::new().name("doomed-build"),
            "FROM python:3.12-slim\nRUN exit 7\n",
            T,
            |line| lines.push(line.to_string()),
        )
        .await
        .unwrap_err();
    match &err {
        DaytonaError::SandboxFailed { state, reason, .. } => {
            assert_eq!(state, "build_failed");
            let reason = reason.as_deref().unwrap_or_default();
            assert!(!reason.is_empty(), "the server's reason is kept");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        lines.iter().any(|l| l.contains("RUN exit 7")),
        "the log up to the failing step arrives: {lines:#?}"
    );
    // The failed sandbox still exists, for inspection or deletion.
    let failed = emu.sandbox("doomed-build").unwrap();
    assert_eq!(failed.state, Some(SandboxState::BuildFailed));

    // Without a log callback the failure is the same typed error.
    let err = client
        .create_from_dockerfile(
            CreateSandboxParams::new(),
            "FROM alpine\nRUN false",
            T,
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::SandboxFailed { ref state, .. } if state == "build_failed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_build_input_is_refused_before_sending() {
    let (emu, client) = building_emulator().await;
    for (params, dockerfile, field) in [
        (CreateSandboxParams::new(), " \n", "dockerfile"),
        (
            CreateSandboxParams::new().image("alpine"),
            "FROM alpine",
            "dockerfile",
        ),
        (
            CreateSandboxParams::new().snapshot("s"),
            "FROM alpine",
            "dockerfile",
        ),
    ] {
        let err = client
            .create_from_dockerfile(params, dockerfile, T, |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(err, DaytonaError::InvalidArgument { field: ref f, .. } if f == field),
            "{err:?}"
        );
    }
    let err = client
        .create_with_build_logs(CreateSandboxParams::new().image("alpine\nRUN x"), T, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::InvalidArgument { .. }),
        "{err:?}"
    );
    assert!(hits(&emu, "POST", "/api/sandbox").is_empty());
}
