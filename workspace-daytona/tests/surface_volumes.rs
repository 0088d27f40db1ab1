//! Volumes against the emulator: get-or-create waits until ready, a volume mounted into two
//! sandboxes shares its files, bad mount paths are refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use workspace_daytona::api::volume::VolumeState;
use workspace_daytona::{CreateSandboxParams, DaytonaError, ExecuteOptions};

#[tokio::test]
async fn get_or_create_is_idempotent_and_waits_until_ready() {
    let emu = emulator().await;
    let client = client(&emu);
    let volumes = client.volumes();

    let err = volumes.get("scratch").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    let made = volumes.get_or_create("scratch", T).await.unwrap();
    assert_eq!(made.name, "scratch");
    assert_eq!(made.state, VolumeState::Ready);
    let again = volumes.get_or_create("scratch", T).await.unwrap();
    assert_eq!(again.id, made.id);
    assert_eq!(
        hits(&emu, "POST", "/api/volumes").len(),
        1,
        "the second call must not create"
    );
    assert_eq!(volumes.get("scratch").await.unwrap().id, made.id);
    assert_eq!(volumes.get_by_id(&made.id).await.unwrap().name, "scratch");
    assert!(
        volumes
            .list(false)
            .await
            .unwrap()
            .iter()
            .any(|v| v.id == made.id)
    );

    // Racing creators end with one volume.
    let (a, b) = tokio::join!(
        volumes.get_or_create("raced", T),
        volumes.get_or_create("raced", T)
    );
    assert_eq!(a.unwrap().id, b.unwrap().id);

    let err = volumes.create("scratch").await.unwrap_err();
    assert!(matches!(err, DaytonaError::Conflict(_)), "{err:?}");

    volumes.delete(&made.id).await.unwrap();
    let gone = volumes.get_by_id(&made.id).await;
    match gone {
        Err(e) => assert!(e.is_not_found(), "{e:?}"),
        Ok(v) => assert!(
            matches!(
                v.state,
                VolumeState::PendingDelete | VolumeState::Deleting | VolumeState::Deleted
            ),
            "{v:?}"
        ),
    }
    let err = volumes.get_or_create(" ", T).await.unwrap_err();
    assert!(
        matches!(err, DaytonaError::InvalidArgument { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_volume_shares_files_between_sandboxes() {
    let emu = emulator().await;
    let client = client(&emu);
    let volume = client
        .volumes()
        .get_or_create("shared-data", T)
        .await
        .unwrap();

    let mut writer = client
        .create(
            CreateSandboxParams::new().volume(volume.id.clone(), "/workspace/shared"),
            T,
        )
        .await
        .unwrap();
    let out = writer
        .process()
        .execute(
            "echo 'written by the first sandbox' > /workspace/shared/note.txt && ls /workspace/shared",
            &ExecuteOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.result);
    let mounts = writer.data().volumes.clone().unwrap_or_default();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].mount_path, "/workspace/shared");

    // Mounted by name elsewhere in another sandbox.
    let mut reader = client
        .create(
            CreateSandboxParams::new().volume("shared-data", "/workspace/elsewhere"),
            T,
        )
        .await
        .unwrap();
    let text = reader
        .fs()
        .download_bytes("/workspace/elsewhere/note.txt")
        .await
        .unwrap();
    assert_eq!(&text[..], b"written by the first sandbox\n");

    // The volume outlives both sandboxes.
    writer.delete(T).await.unwrap();
    reader.delete(T).await.unwrap();
    let mut third = client
        .create(
            CreateSandboxParams::new().volume("shared-data", "/tmp/v"),
            T,
        )
        .await
        .unwrap();
    let out = third
        .process()
        .execute("cat /tmp/v/note.txt", &ExecuteOptions::new())
        .await
        .unwrap();
    assert_eq!(out.result, "written by the first sandbox\n");
    third.delete(T).await.unwrap();
}

#[tokio::test]
async fn mount_paths_outside_the_sandbox_are_refused() {
    let emu = emulator().await;
    let client = client(&emu);
    client.volumes().get_or_create("refused", T).await.unwrap();
    for path in ["/etc/data", "relative/data", "/workspace/../etc"] {
        let err = client
            .create(CreateSandboxParams::new().volume("refused", path), T)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DaytonaError::BadRequest(_)),
            "{path}: {err:?}"
        );
    }
    let err = client
        .create(
            CreateSandboxParams::new().volume("no-such-volume", "/workspace/x"),
            T,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::NotFound(_) | DaytonaError::BadRequest(_)),
        "{err:?}"
    );
    assert!(emu.sandboxes().is_empty(), "no sandbox may be left behind");
}
