//! PTYs against the emulator: a real terminal over WebSocket, resize and kill over REST, exit
//! codes only from the daemon, dropped sockets reported as errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use daytona_emulator::{FaultAction, FaultRule};
use futures::StreamExt;
use workspace_daytona::{DaytonaError, PtyOptions};

const WAIT: Duration = Duration::from_secs(30);

async fn output_until(pty: &mut workspace_daytona::PtyHandle, needle: &str) -> String {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(chunk) = pty.next().await {
            seen.extend_from_slice(&chunk);
            if String::from_utf8_lossy(&seen).contains(needle) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen)));
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn echo_then_exit_code_comes_from_the_daemon() {
    let (emu, _client, sandbox) = setup().await;
    let mut pty = sandbox
        .process()
        .create_pty(&PtyOptions::new().id("shell-1"))
        .await
        .unwrap();
    assert_eq!(pty.session_id(), "shell-1");
    pty.send_input("echo hi; exit 3\n").await.unwrap();
    let (output, exit) = tokio::time::timeout(WAIT, pty.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&output);
    assert!(text.contains("hi"), "{text:?}");
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.success());
    assert!(pty.is_finished());
    assert_eq!(pty.exit_status(), Some(&exit));

    // The client used the one-round-trip route and offered the exit-control subprotocol.
    let upgrade = hits(&emu, "GET", "/process/pty/create-connect")
        .pop()
        .expect("create-connect was used");
    assert!(
        upgrade
            .query
            .as_deref()
            .unwrap_or("")
            .contains("id=shell-1")
    );
    assert_eq!(
        upgrade.header("sec-websocket-protocol"),
        Some("X-Daytona-Pty-Exit-Control")
    );
}

#[tokio::test]
async fn tty_is_a_terminal_and_resize_reaches_stty() {
    let (_emu, _client, sandbox) = setup().await;
    let process = sandbox.process();
    let mut pty = process
        .create_pty(&PtyOptions::new().size(80, 24))
        .await
        .unwrap();
    pty.send_input("tty; stty size\n").await.unwrap();
    let before = output_until(&mut pty, "24 80").await;
    assert!(
        before.contains("/dev/"),
        "tty should name a terminal: {before:?}"
    );
    assert!(!before.contains("not a tty"), "{before:?}");

    let info = pty.resize(132, 43).await.unwrap();
    assert_eq!((info.cols, info.rows), (132, 43));
    let listed = process.get_pty(pty.session_id()).await.unwrap();
    assert_eq!((listed.cols, listed.rows), (132, 43));
    assert!(listed.active);

    pty.send_input("stty size\n").await.unwrap();
    output_until(&mut pty, "43 132").await;
    pty.send_input("exit\n").await.unwrap();
    let exit = tokio::time::timeout(WAIT, pty.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.exit_code, 0);
    assert!(exit.success());
}

#[tokio::test]
async fn environment_reaches_the_shell_and_stays_out_of_urls() {
    let (emu, _client, sandbox) = setup().await;
    let options = PtyOptions::new()
        .env("PTY_GREETING", "bonjour-s3cret")
        .cwd("/tmp");
    assert!(!format!("{options:?}").contains("bonjour-s3cret"));
    let mut pty = sandbox.process().create_pty(&options).await.unwrap();
    pty.send_input("echo \"[$PTY_GREETING]\"; pwd; exit 0\n")
        .await
        .unwrap();
    let (output, exit) = pty.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&output);
    assert!(text.contains("[bonjour-s3cret]"), "{text:?}");
    assert!(text.contains("/tmp"), "{text:?}");
    assert_eq!(exit.exit_code, 0);
    for r in emu.requests() {
        assert!(
            !r.query.as_deref().unwrap_or("").contains("bonjour"),
            "env value leaked into {r:?}"
        );
    }
}

#[tokio::test]
async fn list_get_kill_and_reattach() {
    let (_emu, _client, sandbox) = setup().await;
    let process = sandbox.process();
    let first = process
        .create_pty(&PtyOptions::new().id("keep"))
        .await
        .unwrap();
    first.disconnect().await.unwrap();

    let ids: Vec<String> = process
        .list_ptys()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(ids.contains(&"keep".to_string()), "{ids:?}");

    // The shell survived the detach; attach again and use it.
    let mut again = process.connect_pty("keep").await.unwrap();
    again.send_input("echo back; exit 5\n").await.unwrap();
    let (output, exit) = again.wait_with_output().await.unwrap();
    assert!(String::from_utf8_lossy(&output).contains("back"));
    assert_eq!(exit.exit_code, 5);

    // Killing a running shell ends its stream with the daemon's verdict, not an invented one.
    let mut victim = process
        .create_pty(&PtyOptions::new().id("victim"))
        .await
        .unwrap();
    victim.kill().await.unwrap();
    let exit = tokio::time::timeout(WAIT, victim.wait())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(exit.exit_code, 0, "{exit:?}");
    assert_eq!(exit.reason.as_deref(), Some("SIGKILL"), "{exit:?}");
    let err = process.get_pty("victim").await;
    match err {
        Err(e) => assert!(e.is_not_found(), "{e:?}"),
        Ok(info) => assert!(!info.active, "{info:?}"),
    }

    let err = process.connect_pty("no-such-pty").await.unwrap_err();
    assert!(
        err.is_not_found() || matches!(err, DaytonaError::WebSocket { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_dropped_socket_is_an_error_not_an_exit_code() {
    let (emu, _client, sandbox) = setup().await;
    // Cut the socket right after the `connected` frame, without a close frame.
    emu.add_fault(
        FaultRule::new(
            "/toolbox/*/process/pty/create-connect",
            FaultAction::DropWebSocket {
                after_frames: Some(1),
                after_bytes: None,
            },
        )
        .times(1),
    )
    .unwrap();
    let mut pty = sandbox
        .process()
        .create_pty(&PtyOptions::new().id("doomed"))
        .await
        .unwrap();
    let err = tokio::time::timeout(WAIT, pty.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DaytonaError::WebSocket { .. }), "{err:?}");
    assert!(pty.exit_status().is_none());
    // The shell itself is still there: the drop cut only the connection.
    let again = sandbox.process().connect_pty("doomed").await.unwrap();
    again.kill().await.unwrap();
}

#[tokio::test]
async fn bad_sizes_and_ids_are_refused_before_sending() {
    let (emu, _client, sandbox) = setup().await;
    let process = sandbox.process();
    emu.clear_requests();
    for (cols, rows, field) in [(0, 0, "cols"), (80, 0, "rows"), (1001, 24, "cols")] {
        let err = process
            .create_pty(&PtyOptions::new().size(cols, rows))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DaytonaError::InvalidArgument { field: ref f, .. } if f == field),
            "{cols}x{rows}: {err:?}"
        );
    }
    let err = process
        .create_pty(&PtyOptions::new().id(" "))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaytonaError::InvalidArgument { .. }),
        "{err:?}"
    );
    assert!(
        hits(&emu, "GET", "/process/pty/create-connect").is_empty(),
        "nothing should have been sent"
    );

    let pty = process.create_pty(&PtyOptions::new()).await.unwrap();
    let err = pty.resize(0, 0).await.unwrap_err();
    assert!(
        matches!(err, DaytonaError::InvalidArgument { .. }),
        "{err:?}"
    );
    assert!(hits(&emu, "POST", "/resize").is_empty());
    pty.kill().await.unwrap();
}

#[tokio::test]
async fn without_create_connect_it_creates_over_rest_then_attaches() {
    let (emu, _client, sandbox) = setup().await;
    emu.add_fault(FaultRule::status("/toolbox/*/process/pty/create-connect", 404).times(1))
        .unwrap();
    let mut pty = sandbox
        .process()
        .create_pty(
            &PtyOptions::new()
                .id("old-style")
                .env("OLD_STYLE", "yes")
                .size(90, 30),
        )
        .await
        .unwrap();
    pty.send_input("echo \"$OLD_STYLE\"; stty size; exit 2\n")
        .await
        .unwrap();
    let (output, exit) = pty.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&output);
    assert!(text.contains("yes"), "{text:?}");
    assert!(text.contains("30 90"), "{text:?}");
    assert_eq!(exit.exit_code, 2);
    let created = hits(&emu, "POST", "/process/pty").pop().unwrap();
    let body = created.body.unwrap();
    assert_eq!(body["id"], "old-style");
    assert_eq!(body["cols"], 90);
    assert_eq!(hits(&emu, "GET", "/process/pty/old-style/connect").len(), 1);
}
