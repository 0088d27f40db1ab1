//! Snapshots against the emulator: create (from an image, and built from a Dockerfile with its
//! log), get, list, activate, delete; a sandbox created from one.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures::TryStreamExt;
use workspace_daytona::api::snapshot::SnapshotState;
use workspace_daytona::{
    CreateSandboxParams, CreateSnapshotParams, DaytonaError, ExecuteOptions, Resources,
};

#[tokio::test]
async fn snapshot_crud() {
    let emu = emulator().await;
    let client = client(&emu);
    let snapshots = client.snapshots();

    let made = snapshots
        .create(
            &CreateSnapshotParams::from_image("py-small", "python:3.12-slim").resources(
                Resources {
                    cpu: Some(1),
                    memory: Some(2),
                    disk: Some(5),
                    gpu: None,
                },
            ),
            T,
        )
        .await
        .unwrap();
    assert_eq!(made.name, "py-small");
    assert_eq!(made.state, SnapshotState::Active);
    let body = hits(&emu, "POST", "/api/snapshots")
        .pop()
        .unwrap()
        .body
        .unwrap();
    assert_eq!(body["imageName"], "python:3.12-slim");
    assert_eq!(body["memory"], 2);

    assert_eq!(snapshots.get("py-small").await.unwrap().id, made.id);
    assert_eq!(snapshots.get(&made.id).await.unwrap().name, "py-small");

    let err = snapshots
        .create(&CreateSnapshotParams::from_image("py-small", "alpine"), T)
        .await
        .unwrap_err();
    assert!(matches!(err, DaytonaError::Conflict(_)), "{err:?}");

    snapshots
        .create(&CreateSnapshotParams::from_image("second", "alpine:3"), T)
        .await
        .unwrap();
    let page = snapshots.list(1, 1).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.total >= 2 && page.total_pages >= 2, "{page:?}");
    let all: Vec<_> = snapshots.list_all().try_collect().await.unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"py-small") && names.contains(&"second"),
        "{names:?}"
    );

    // A sandbox made from the snapshot.
    let sandbox = client
        .create(CreateSandboxParams::new().snapshot("py-small"), T)
        .await
        .unwrap();
    assert_eq!(sandbox.data().snapshot.as_deref(), Some("py-small"));
    let out = sandbox
        .process()
        .execute("echo from-snapshot", &ExecuteOptions::new())
        .await
        .unwrap();
    assert_eq!(out.result.trim(), "from-snapshot");

    // Activating an active snapshot is refused or a no-op, never a panic.
    match snapshots.activate("second").await {
        Ok(s) => assert_eq!(s.state, SnapshotState::Active),
        Err(e) => assert!(matches!(e, DaytonaError::BadRequest(_)), "{e:?}"),
    }

    snapshots.delete("second").await.unwrap();
    let err = snapshots.get("second").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    let err = snapshots.delete("second").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    for err in [
        snapshots
            .create(&CreateSnapshotParams::from_image("", "alpine"), T)
            .await
            .unwrap_err(),
        snapshots.get(" ").await.unwrap_err(),
        snapshots.list(0, 10).await.unwrap_err(),
    ] {
        assert!(
            matches!(err, DaytonaError::InvalidArgument { .. }),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn dockerfile_snapshot_streams_its_build_log() {
    let emu = emulator().await;
    let client = client(&emu);
    let mut lines = Vec::new();
    let made = client
        .snapshots()
        .create_with_build_logs(
            &CreateSnapshotParams::from_dockerfile(
                "built",
                "FROM python:3.12-slim\nRUN echo building\n",
            ),
            T,
            |line| lines.push(line.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(made.state, SnapshotState::Active);
    assert!(!lines.is_empty(), "no build log lines");
    assert!(
        lines.iter().any(|l| l.contains("FROM python:3.12-slim")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_failed_snapshot_build_is_a_typed_error_with_its_reason() {
    let emu = emulator().await;
    let client = client(&emu);
    let mut lines = Vec::new();
    let err = client
        .snapshots()
        .create_with_build_logs(
            &CreateSnapshotParams::from_dockerfile("broken", "FROM alpine\nRUN exit 3\n"),
            T,
            |line| lines.push(line.to_string()),
        )
        .await
        .unwrap_err();
    match &err {
        DaytonaError::ResourceFailed {
            kind,
            id,
            state,
            reason,
        } => {
            assert_eq!(*kind, "snapshot");
            assert_eq!(id, "broken");
            assert_eq!(state, "build_failed");
            assert!(reason.as_deref().is_some_and(|r| !r.is_empty()), "{err:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(lines.iter().any(|l| l.contains("RUN exit 3")), "{lines:#?}");
    // It converts into the core error type with the state as its code.
    let core: workspace_core::SandboxError = err.into();
    assert!(
        matches!(core, workspace_core::SandboxError::Provider { code: Some(ref c), .. } if c == "build_failed"),
        "{core:?}"
    );
    // The failed snapshot is still listed, for inspection.
    let failed = client.snapshots().get("broken").await.unwrap();
    assert_eq!(failed.state, SnapshotState::BuildFailed);
}
