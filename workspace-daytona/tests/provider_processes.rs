//! DaytonaSandbox background processes against the emulator: addressed by id from another
//! handle after the spawning one is gone, stdin through the relay, kill releasing the session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_support;

use std::time::{Duration, Instant};

use provider_support::{builder_for, emulator, eventually};
use workspace_core::{
    OutputOffsets, ProcessId, ProcessState, SandboxError, SpawnOptions, WorkspaceSandbox,
};

#[tokio::test]
async fn processes_outlive_their_handle_and_are_found_by_id() {
    let emu = emulator().await;
    let url = emu.api_url();
    let first = builder_for(&url).build().unwrap();
    let pm = first.processes().unwrap();
    let spawned = pm
        .spawn(
            r#"echo ready; read line; echo "got:$line"; cat >&2"#,
            &[],
            SpawnOptions::new().with_stdin().env("PROC_SECRET", "s-77"),
        )
        .await
        .unwrap();
    assert_eq!(spawned.state, ProcessState::Running);
    assert!(spawned.id.0.starts_with("ws-proc-"), "{}", spawned.id);
    let daytona_id = first.daytona_id().unwrap();
    drop(first);

    // Another handle, as a restarted program would make it.
    let second = builder_for(&url).id(daytona_id.clone()).build().unwrap();
    let pm = second.processes().unwrap();
    let info = pm.get(&spawned.id).await.unwrap();
    assert_eq!(info.state, ProcessState::Running);
    assert_eq!(
        info.command,
        r#"echo ready; read line; echo "got:$line"; cat >&2"#
    );
    assert!((chrono::Utc::now() - info.started_at).num_seconds() < 60);
    let listed = pm.list().await.unwrap();
    assert!(listed.iter().any(|p| p.id == spawned.id), "{listed:?}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let first_out = loop {
        let out = pm
            .output(&spawned.id, OutputOffsets::default())
            .await
            .unwrap();
        if out.stdout_text() == "ready\n" || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(first_out.stdout_text(), "ready\n");
    assert_eq!(first_out.next.stdout, 6);

    // The stored text shows the relay, so this handle may write to it.
    pm.write_stdin(&spawned.id, b"hello\n").await.unwrap();
    pm.write_stdin(&spawned.id, &[0xff, 0x00, b'z'])
        .await
        .unwrap();
    pm.close_stdin(&spawned.id).await.unwrap();
    let done = pm
        .wait(&spawned.id, Some(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(done.state, ProcessState::Exited(0));
    let out = pm.output(&spawned.id, first_out.next).await.unwrap();
    assert_eq!(out.stdout_text(), "got:hello\n");
    assert_eq!(
        out.stderr.len(),
        3,
        "binary stdin came through: {:?}",
        out.stderr
    );
    let err = pm.write_stdin(&spawned.id, b"late").await.unwrap_err();
    assert!(
        matches!(err, SandboxError::InvalidArgument { .. }),
        "{err:?}"
    );

    // Kill releases the session; the handle still answers for the process.
    let killed = pm.kill(&spawned.id).await.unwrap();
    assert_eq!(
        killed.state,
        ProcessState::Exited(0),
        "it had exited by itself"
    );
    assert!(
        eventually(Duration::from_secs(5), || {
            provider_support::runtime_load(&emu, &daytona_id).0 == 0
        })
        .await
    );
    assert_eq!(
        pm.get(&spawned.id).await.unwrap().state,
        ProcessState::Exited(0)
    );
    let kept = pm
        .output(&spawned.id, OutputOffsets::default())
        .await
        .unwrap();
    assert_eq!(kept.stdout_text(), "ready\ngot:hello\n");

    second.destroy().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn processes_refuse_what_they_cannot_do() {
    let emu = emulator().await;
    let sb = builder_for(&emu.api_url()).build().unwrap();
    let pm = sb.processes().unwrap();
    let p = pm
        .spawn("sleep 30", &[], SpawnOptions::new())
        .await
        .unwrap();
    let err = pm.write_stdin(&p.id, b"x").await.unwrap_err();
    assert!(
        matches!(err, SandboxError::InvalidArgument { .. }),
        "{err:?}"
    );
    let killed = pm.kill(&p.id).await.unwrap();
    assert_eq!(
        killed.state,
        ProcessState::Exited(workspace_core::EXIT_KILLED)
    );
    for bad in ["nope", "ws-cmd-1-2:x", "ws-proc-1-2:missing"] {
        let err = pm.get(&ProcessId::from(bad)).await.unwrap_err();
        assert!(
            matches!(err, SandboxError::NotFound { .. }),
            "{bad}: {err:?}"
        );
    }
    let err = pm
        .spawn("true", &[], SpawnOptions::new().cwd("relative"))
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::InvalidArgument { ref field, .. } if field == "cwd"));
    sb.destroy().await.unwrap();
    emu.shutdown().await;
}
